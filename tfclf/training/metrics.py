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


# --- multi-label (sigmoid outputs): labels are multi-hot rows, a label is predicted when p >= 0.5 ---
MULTI_LABEL = ("micro_f1", "macro_f1", "samples_f1", "subset_accuracy", "hamming_loss")


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
    """One of MULTI_LABEL from accumulated counts (shared with the Keras 3 metric, models/kerashub.py)."""
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


class MultiLabel(keras.metrics.Metric):
    """A streaming multi-label metric (`kind`, one of MULTI_LABEL) on multi-hot labels and logits."""

    def __init__(self, num_labels: int, kind: str, name=None, **kwargs):
        super().__init__(name=name or kind, **kwargs)
        self.num_labels, self.kind = num_labels, kind
        self.counts = self.add_weight("counts", shape=(3, num_labels), initializer="zeros", dtype=tf.float64)
        self.totals = self.add_weight("totals", shape=(3,), initializer="zeros", dtype=tf.float64)

    def update_state(self, y_true, y_pred, sample_weight=None):
        counts, totals = multi_label_counts(y_true, y_pred)
        self.counts.assign_add(counts)
        self.totals.assign_add(totals)

    def result(self):
        return multi_label_result(self.kind, self.counts, self.totals)

    def reset_state(self):
        self.counts.assign(tf.zeros_like(self.counts))
        self.totals.assign(tf.zeros_like(self.totals))

    def get_config(self):
        return {**super().get_config(), "num_labels": self.num_labels, "kind": self.kind}


def multi_label_metrics(num_labels: int) -> list:
    return [MultiLabel(num_labels, kind) for kind in MULTI_LABEL]
