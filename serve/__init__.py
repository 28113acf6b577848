"""zoo.serve: TensorFlow Serving for exported models (engines, embedded server, client).

The serving side may use the core (``zoo``) for what it must, never the other way round.
"""
