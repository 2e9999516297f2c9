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


class Distillation(keras.losses.Loss):
    """Knowledge distillation (Hinton et al. 2015, seed 002): per example
    alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * hard loss, where x_T is the softmax at
    temperature T. y_true packs [label, teacher probabilities...]; the teacher's probabilities are
    softened as softmax(log p / T), which equals softmax(teacher logits / T)."""

    def __init__(self, hard: keras.losses.Loss, alpha: float, temperature: float):
        super().__init__(name=f"distill_{hard.name}")
        self.hard, self.alpha, self.temperature = hard, alpha, temperature

    def call(self, y_true, y_pred):
        y_true, y_pred = tf.cast(y_true, tf.float32), tf.cast(y_pred, tf.float32)
        hard = self.hard.call(y_true[:, 0], y_pred)
        teacher = tf.nn.softmax(tf.math.log(tf.maximum(y_true[:, 1:], 1e-12)) / self.temperature, axis=-1)
        student = tf.nn.log_softmax(y_pred / self.temperature, axis=-1)
        kl = tf.reduce_sum(teacher * (tf.math.log(tf.maximum(teacher, 1e-12)) - student), axis=-1)
        return self.alpha * self.temperature ** 2 * kl + (1.0 - self.alpha) * hard


def build_training(train_config, num_classes: int) -> keras.losses.Loss:
    """The single-label loss the model is fitted with: `build`'s, inside Distillation when a teacher is given
    (the multi-label task's is `build_multi_label`)."""
    hard = build(train_config, num_classes)
    if not train_config.teacher:
        return hard
    return Distillation(hard, train_config.distill_alpha, train_config.distill_temperature)


# --- multi-label: one sigmoid per label ---

class SigmoidLoss(keras.losses.Loss):
    """Binary cross-entropy per label on logits, averaged over labels: for each label
    -(w+ y log sigmoid(z) + w- (1 - y) log sigmoid(-z)), with per-label positive / negative weights
    (`label_weights` [labels, 2]: negative, positive). With `gamma` (focal, Lin et al. 2017) each term is
    multiplied by alpha_t (1 - p_t)^gamma, alpha_t = alpha for positives, 1 - alpha for negatives.
    Label smoothing moves targets to y (1 - s) + s / 2."""

    def __init__(self, label_weights, label_smoothing: float = 0.0, gamma: float = 0.0, alpha: float = 0.25,
                 name: str = "binary_crossentropy"):
        super().__init__(name=name)
        weights = tf.constant(label_weights, tf.float32)
        self.negative_weights, self.positive_weights = weights[:, 0], weights[:, 1]
        self.label_smoothing, self.gamma, self.alpha = label_smoothing, gamma, alpha

    def call(self, y_true, y_pred):
        targets, logits = tf.cast(y_true, tf.float32), tf.cast(y_pred, tf.float32)
        smoothed = targets * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        per_label = -(self.positive_weights * smoothed * tf.math.log_sigmoid(logits)
                      + self.negative_weights * (1.0 - smoothed) * tf.math.log_sigmoid(-logits))
        if self.gamma:
            probability = tf.sigmoid(logits)
            p_t = targets * probability + (1.0 - targets) * (1.0 - probability)
            alpha_t = targets * self.alpha + (1.0 - targets) * (1.0 - self.alpha)
            per_label = alpha_t * tf.pow(1.0 - p_t, self.gamma) * per_label
        return tf.reduce_mean(per_label, axis=-1)


def build_multi_label(train_config, label_weights) -> keras.losses.Loss:
    """The multi-label counterpart of `build`: --loss crossentropy is binary cross-entropy per label, focal
    its binary focal form; `label_weights` [labels, 2] (negative, positive) from fit.label_weights."""
    if train_config.loss == "focal":
        return SigmoidLoss(label_weights, train_config.label_smoothing, train_config.focal_gamma,
                           train_config.focal_alpha, name="binary_focal")
    return SigmoidLoss(label_weights, train_config.label_smoothing)
