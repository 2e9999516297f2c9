"""Optimizers and learning-rate schedules (the choices + one builder, no I/O).

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


def _clip(train_config) -> dict:
    return {"global_clipnorm": train_config.clip_norm} if train_config.clip_norm > 0 else {}


# name -> (Keras module, learning rate or schedule, train config) -> optimizer; either Keras (tf-keras, Keras 3).
OPTIMIZERS = {
    "adamw": lambda keras, lr, config: keras.optimizers.AdamW(learning_rate=lr, weight_decay=config.weight_decay,
                                                               epsilon=1e-6, **_clip(config)),
    "adam": lambda keras, lr, config: keras.optimizers.Adam(learning_rate=lr, **_clip(config)),
    "sgd": lambda keras, lr, config: keras.optimizers.SGD(learning_rate=lr, momentum=config.momentum,
                                                           **_clip(config)),
    "rmsprop": lambda keras, lr, config: keras.optimizers.RMSprop(learning_rate=lr, **_clip(config)),
}


def build_schedule(train_config, learning_rate: float, total_steps: int) -> WarmupDecay:
    """The configured warm-up and decay to `learning_rate` over `total_steps` (Keras-independent TF math)."""
    return WarmupDecay(learning_rate, total_steps, int(round(train_config.warmup_ratio * total_steps)),
                       train_config.schedule)


def build(train_config, learning_rate: float, total_steps: int, keras_module=keras, variables=None, wrap=None):
    """Returns (optimizer, schedule) for `total_steps` optimizer steps, in `keras_module` (default tf-keras;
    the KerasHub family passes Keras 3, its `variables` and `wrap`, its schedule class around tfclf's)."""
    schedule = build_schedule(train_config, learning_rate, total_steps)
    optimizer = OPTIMIZERS[train_config.opt](keras_module, wrap(schedule) if wrap else schedule, train_config)
    if train_config.opt == "adamw":
        exclude_from_decay(optimizer, variables)
    return optimizer, schedule


def apply_encoder_and_head(tape, loss, encoder_variables: list, trainable_variables: list, encoder_optimizer,
                           optimizer) -> None:
    """One step with two optimizers (--encoder-lr): the encoder's variables by `encoder_optimizer`, the other
    trainable variables (the head) by `optimizer`; each clips its own gradients. Either Keras' train_step."""
    encoder_ids = {id(variable) for variable in encoder_variables}
    head_variables = [v for v in trainable_variables if id(v) not in encoder_ids]
    gradients = tape.gradient(loss, encoder_variables + head_variables)
    split = len(encoder_variables)
    encoder_optimizer.apply_gradients(zip(gradients[:split], encoder_variables))
    optimizer.apply_gradients(zip(gradients[split:], head_variables))


def exclude_from_decay(optimizer, variables=None) -> None:
    """AdamW skips LayerNorm and bias weights (BERT recipe): by name as tf-keras creates them, or, given the
    `variables` (Keras 3, whose names are short: `gamma`, `bias`), those whose paths match."""
    if variables is None:
        optimizer.exclude_from_weight_decay(var_names=NO_DECAY)
    else:
        optimizer.exclude_from_weight_decay(var_list=[v for v in variables if any(part in v.path for part in NO_DECAY)])
