"""Data: synthetic galaxies, image folders and catalogs, stable splits, tf.data pipelines."""
