"""tfclf: train, compare and ship TensorFlow text classifiers."""
__version__ = "0.1.0"
