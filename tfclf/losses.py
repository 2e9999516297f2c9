"""Losses on integer labels and float32 logits: a table from name to builder."""
from tfclf._backend import keras, tf


class SparseLoss(keras.losses.Loss):
    """Wraps a one-hot Keras loss so it takes integer labels (and works with label smoothing)."""

    def __init__(self, inner: keras.losses.Loss, num_classes: int, name: str):
        super().__init__(name=name)
        self.inner, self.num_classes = inner, num_classes

    def call(self, y_true, y_pred):
        one_hot = tf.one_hot(tf.cast(tf.reshape(y_true, [-1]), tf.int32), self.num_classes)
        return self.inner(one_hot, y_pred)


def crossentropy(train_config, num_classes: int) -> keras.losses.Loss:
    inner = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=train_config.label_smoothing,
                                                 reduction=keras.losses.Reduction.NONE)
    return SparseLoss(inner, num_classes, "crossentropy")


def focal(train_config, num_classes: int) -> keras.losses.Loss:
    """Focal loss (Lin et al. 2017): -alpha (1 - p_t)^gamma log p_t."""
    inner = keras.losses.CategoricalFocalCrossentropy(
        alpha=train_config.focal_alpha, gamma=train_config.focal_gamma, from_logits=True,
        label_smoothing=train_config.label_smoothing, reduction=keras.losses.Reduction.NONE)
    return SparseLoss(inner, num_classes, "focal")


LOSSES = {"crossentropy": crossentropy, "focal": focal}


def build(train_config, num_classes: int) -> keras.losses.Loss:
    return LOSSES[train_config.loss](train_config, num_classes)
