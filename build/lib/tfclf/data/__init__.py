"""Data: named datasets, file readers, cleaning, validation and splits (no TensorFlow), and tf.data pipelines."""
