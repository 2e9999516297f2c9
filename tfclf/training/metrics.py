"""Streaming Keras metrics on integer labels and logits, so `val_macro_f1` is in the epoch logs
(for the best-model checkpoint and early stopping) and is summed correctly across replicas.

With distillation the labels arrive packed as [label, teacher probabilities...]; `labels_of`
(data/pipeline.py) takes the first column, so the same metrics serve both cases.
"""
from tfclf._backend import keras, tf
from tfclf.data.pipeline import labels_of


class Accuracy(keras.metrics.Mean):
    def __init__(self, name="accuracy", **kwargs):
        super().__init__(name=name, **kwargs)

    def update_state(self, y_true, y_pred, sample_weight=None):
        predicted = tf.argmax(y_pred, axis=-1, output_type=tf.int32)
        correct = tf.cast(tf.equal(labels_of(y_true), predicted), self.dtype)
        return super().update_state(correct, sample_weight=None)


class MacroF1(keras.metrics.Metric):
    """Unweighted mean over classes of F1 = 2 TP / (2 TP + FP + FN), from an accumulated confusion
    matrix; a class with no true and no predicted examples counts as F1 0, as scikit-learn does."""

    def __init__(self, num_classes: int, name="macro_f1", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = num_classes
        self.confusion = self.add_weight("confusion", shape=(num_classes, num_classes), initializer="zeros",
                                         dtype=tf.float64)

    def update_state(self, y_true, y_pred, sample_weight=None):
        predicted = tf.argmax(y_pred, axis=-1, output_type=tf.int32)
        self.confusion.assign_add(tf.math.confusion_matrix(labels_of(y_true), predicted, self.num_classes,
                                                           dtype=tf.float64))

    def result(self):
        return macro_f1(self.confusion)

    def reset_state(self):
        self.confusion.assign(tf.zeros_like(self.confusion))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


def macro_f1(confusion):
    """Macro-F1 of a confusion matrix (rows: true classes); shared with the Keras 3 metric (models/kerashub.py)."""
    confusion = tf.convert_to_tensor(confusion)
    true_positive = tf.linalg.diag_part(confusion)
    denominator = tf.reduce_sum(confusion, 0) + tf.reduce_sum(confusion, 1)
    return tf.cast(tf.reduce_mean(tf.math.divide_no_nan(2.0 * true_positive, denominator)), tf.float32)
