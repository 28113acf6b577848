"""The embedded server: TF Serving's gRPC and REST APIs, written in Python on TensorFlow."""
