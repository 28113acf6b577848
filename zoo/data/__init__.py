"""Data: synthetic galaxies, image folders and catalogs, stable splits, tf.data pipelines."""

#: Images with more pixels are skipped when a data set is checked (``--max-pixels``).
MAX_PIXELS = 50_000_000
