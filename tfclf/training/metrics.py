"""Streaming Keras metrics on logits, written once for both Kerases (tf-keras, and Keras 3 in the KerasHub
family): `val_macro_f1` is in the epoch logs (for the best-model checkpoint and early stopping) and is summed
correctly across replicas. The math is plain TensorFlow; `classes(keras)` makes the metric classes of one
Keras module, and a task picks its list (`single_label`, `multi_label`).

With distillation the labels arrive packed as [label, teacher probabilities...]; `labels_of`
(data/pipeline.py) takes the first column, so the same metrics serve both cases.
"""
import functools

from tfclf._backend import keras as tf_keras, tf
from tfclf.data.pipeline import labels_of


def single_label(num_classes: int, keras=tf_keras) -> list:
    """Accuracy and macro-F1 of the argmax (softmax outputs, integer labels)."""
    found = classes(keras)
    return [found.Accuracy(), found.MacroF1(num_classes)]


# --- multi-label (sigmoid outputs): labels are multi-hot rows, a label is predicted when p >= 0.5 ---
MULTI_LABEL = ("micro_f1", "macro_f1", "samples_f1", "subset_accuracy", "hamming_loss")


def multi_label(num_labels: int, keras=tf_keras) -> list:
    return [classes(keras).MultiLabel(num_labels, kind) for kind in MULTI_LABEL]


@functools.cache
def classes(keras):
    """The metric classes of one Keras module (`tfclf._backend.keras` or Keras 3): the same code on either's
    Metric base, whose variables (add_weight) both Kerases sum across replicas."""

    class Accuracy(keras.metrics.Mean):
        def __init__(self, name="accuracy", **kwargs):
            super().__init__(name=name, **kwargs)

        def update_state(self, y_true, y_pred, sample_weight=None):
            predicted = tf.argmax(y_pred, axis=-1, output_type=tf.int32)
            return super().update_state(tf.cast(tf.equal(labels_of(y_true), predicted), self.dtype))

    class MacroF1(keras.metrics.Metric):
        """Unweighted mean over classes of F1 = 2 TP / (2 TP + FP + FN), from an accumulated confusion
        matrix; a class with no true and no predicted examples counts as F1 0, as scikit-learn does."""

        def __init__(self, num_classes: int, name="macro_f1", **kwargs):
            super().__init__(name=name, **kwargs)
            self.num_classes = num_classes
            self.confusion = self.add_weight(name="confusion", shape=(num_classes, num_classes),
                                             initializer="zeros", dtype="float64")

        def update_state(self, y_true, y_pred, sample_weight=None):
            predicted = tf.argmax(y_pred, axis=-1, output_type=tf.int32)
            self.confusion.assign_add(tf.math.confusion_matrix(labels_of(y_true), predicted, self.num_classes,
                                                               dtype=tf.float64))

        def result(self):
            return macro_f1(self.confusion)

        def reset_state(self):
            self.confusion.assign(tf.zeros((self.num_classes, self.num_classes), tf.float64))

        def get_config(self):
            return {**super().get_config(), "num_classes": self.num_classes}

    class MultiLabel(keras.metrics.Metric):
        """A streaming multi-label metric (`kind`, one of MULTI_LABEL) on multi-hot labels and logits."""

        def __init__(self, num_labels: int, kind: str, name=None, **kwargs):
            super().__init__(name=name or kind, **kwargs)
            self.num_labels, self.kind = num_labels, kind
            self.counts = self.add_weight(name="counts", shape=(3, num_labels), initializer="zeros", dtype="float64")
            self.totals = self.add_weight(name="totals", shape=(3,), initializer="zeros", dtype="float64")

        def update_state(self, y_true, y_pred, sample_weight=None):
            counts, totals = multi_label_counts(y_true, y_pred)
            self.counts.assign_add(counts)
            self.totals.assign_add(totals)

        def result(self):
            return multi_label_result(self.kind, tf.convert_to_tensor(self.counts), tf.convert_to_tensor(self.totals))

        def reset_state(self):
            self.counts.assign(tf.zeros((3, self.num_labels), tf.float64))
            self.totals.assign(tf.zeros((3,), tf.float64))

        def get_config(self):
            return {**super().get_config(), "num_labels": self.num_labels, "kind": self.kind}

    return type("Metrics", (), {"Accuracy": Accuracy, "MacroF1": MacroF1, "MultiLabel": MultiLabel})


def macro_f1(confusion):
    """Macro-F1 of a confusion matrix (rows: true classes)."""
    confusion = tf.convert_to_tensor(confusion)
    true_positive = tf.linalg.diag_part(confusion)
    denominator = tf.reduce_sum(confusion, 0) + tf.reduce_sum(confusion, 1)
    return tf.cast(tf.reduce_mean(tf.math.divide_no_nan(2.0 * true_positive, denominator)), tf.float32)


def multi_label_counts(y_true, y_pred):
    """Per batch: [3, labels] true positives, false positives, false negatives, and [3] the sum of the texts'
    F1 (1 for a text with no true and no predicted label), exact matches and texts. y_pred are logits."""
    truth = tf.cast(tf.convert_to_tensor(y_true) >= 0.5, tf.float64)
    predicted = tf.cast(tf.cast(y_pred, tf.float32) >= 0.0, tf.float64)
    true_positive, false_positive = truth * predicted, (1.0 - truth) * predicted
    false_negative = truth * (1.0 - predicted)
    counts = tf.stack([tf.reduce_sum(true_positive, 0), tf.reduce_sum(false_positive, 0),
                       tf.reduce_sum(false_negative, 0)])
    denominator = tf.reduce_sum(2.0 * true_positive + false_positive + false_negative, 1)
    text_f1 = tf.where(denominator > 0, tf.math.divide_no_nan(2.0 * tf.reduce_sum(true_positive, 1), denominator), 1.0)
    exact = tf.cast(tf.reduce_all(tf.equal(truth, predicted), axis=1), tf.float64)
    totals = tf.stack([tf.reduce_sum(text_f1), tf.reduce_sum(exact), tf.cast(tf.shape(truth)[0], tf.float64)])
    return counts, totals


def multi_label_result(kind: str, counts, totals):
    """One of MULTI_LABEL from accumulated counts."""
    true_positive, false_positive, false_negative = counts[0], counts[1], counts[2]
    texts = totals[2]
    if kind == "micro_f1":
        tp = tf.reduce_sum(true_positive)
        value = tf.math.divide_no_nan(2.0 * tp, 2.0 * tp + tf.reduce_sum(false_positive + false_negative))
    elif kind == "macro_f1":  # a label never true nor predicted counts as 0, as scikit-learn does
        value = tf.reduce_mean(tf.math.divide_no_nan(2.0 * true_positive,
                                                     2.0 * true_positive + false_positive + false_negative))
    elif kind == "samples_f1":
        value = tf.math.divide_no_nan(totals[0], texts)
    elif kind == "subset_accuracy":
        value = tf.math.divide_no_nan(totals[1], texts)
    else:  # hamming_loss: the share of wrong (text, label) decisions
        labels = tf.cast(tf.shape(true_positive)[0], tf.float64)
        value = tf.math.divide_no_nan(tf.reduce_sum(false_positive + false_negative), texts * labels)
    return tf.cast(value, tf.float32)
