"""Optimizers and learning-rate schedules (tables + one builder, no I/O).

The schedule is linear warm-up over `warmup_ratio` of the steps, then decay to
zero at the last step (linear, as tf-models-official's `create_optimizer`, or
cosine), or constant after warm-up.
"""
import math

from tfclf._backend import keras, tf

# Weights whose names contain these are not decayed by AdamW (BERT recipe).
NO_DECAY = ["LayerNorm", "layer_norm", "layernorm", "bias"]


class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `peak`, then `decay` ('linear', 'cosine' or 'constant') to 0."""

    def __init__(self, peak: float, total_steps: int, warmup_steps: int, decay: str = "linear"):
        super().__init__()
        self.peak, self.total_steps, self.warmup_steps, self.decay = peak, total_steps, warmup_steps, decay

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warmup = tf.cast(max(self.warmup_steps, 1), tf.float32)
        decay_steps = tf.cast(max(self.total_steps - self.warmup_steps, 1), tf.float32)
        progress = tf.clip_by_value((step - self.warmup_steps) / decay_steps, 0.0, 1.0)
        if self.decay == "linear":
            after = 1.0 - progress
        elif self.decay == "cosine":
            after = 0.5 * (1.0 + tf.cos(math.pi * progress))
        else:
            after = tf.ones_like(progress)
        factor = tf.where(step < self.warmup_steps, (step + 1.0) / warmup, after)
        return self.peak * factor

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps, "decay": self.decay}


def _adamw(schedule, train_config):
    optimizer = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=train_config.weight_decay,
                                       epsilon=1e-6, **_clip(train_config))
    optimizer.exclude_from_weight_decay(var_names=NO_DECAY)
    return optimizer


def _clip(train_config) -> dict:
    return {"global_clipnorm": train_config.clip_norm} if train_config.clip_norm > 0 else {}


OPTIMIZERS = {
    "adamw": _adamw,
    "adam": lambda schedule, config: keras.optimizers.Adam(learning_rate=schedule, **_clip(config)),
    "sgd": lambda schedule, config: keras.optimizers.SGD(learning_rate=schedule, momentum=config.momentum,
                                                          **_clip(config)),
    "rmsprop": lambda schedule, config: keras.optimizers.RMSprop(learning_rate=schedule, **_clip(config)),
}


def build_schedule(train_config, learning_rate: float, total_steps: int) -> WarmupDecay:
    """The configured warm-up and decay to `learning_rate` over `total_steps` (Keras-independent TF math)."""
    return WarmupDecay(learning_rate, total_steps, int(round(train_config.warmup_ratio * total_steps)),
                       train_config.schedule)


def build(train_config, learning_rate: float, total_steps: int):
    """Returns (optimizer, schedule) for `total_steps` optimizer steps."""
    schedule = build_schedule(train_config, learning_rate, total_steps)
    return OPTIMIZERS[train_config.opt](schedule, train_config), schedule
