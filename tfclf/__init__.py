"""tfclf: train, compare and ship TensorFlow text classifiers."""
from tfclf import _backend  # noqa: F401  must run before anything imports TensorFlow

__version__ = "0.1.0"
