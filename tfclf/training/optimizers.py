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


class FusedAdamW(keras.optimizers.AdamW):
    """tf-keras' AdamW (same hyperparameters, slots, checkpoints and math) with each weight's update one fused
    kernel: the decay is one multiply and the moments and the step are TensorFlow's `ResourceApplyAdam` (one
    multi-threaded pass over weight, m and v on a CPU; its own kernel on a GPU), the step's scalars computed
    once, not per weight. tf-keras' own update is about ten element-wise ops per weight (~45 graph ops each,
    4,700 for minilm_l6) and its "sparse" path for an embedding lookup's gradient still rewrites the whole
    table several times; here that gradient is summed into a dense one first (after clipping, as tf-keras
    clips it): one shape every step, and one pass. Measured in docs/speed.md; parity in tests/test_training.py.

        >>> optimizer = FusedAdamW(learning_rate=1e-3, weight_decay=0.01)  # as keras.optimizers.AdamW
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.jit_compile = False  # one fused kernel per weight already; XLA would compile ~100 of them first

    def _deduplicate_sparse_grad(self, grads):
        return [_dense(gradient) if isinstance(gradient, tf.IndexedSlices) else gradient for gradient in grads]

    def _apply_weight_decay(self, variables):
        pass  # in update_step, next to the moments

    def _distributed_apply_gradients_fn(self, distribution, grads_and_vars, **kwargs):
        learning_rate = tf.cast(self.learning_rate, tf.float32)
        step = tf.cast(self.iterations + 1, tf.float32)
        # Read by update_step for every weight (and every replica's copy) of this step; not a checkpointed value.
        self._step_scalars = self._no_dependency({
            "lr": learning_rate, "keep": 1.0 - learning_rate * tf.cast(self.weight_decay, tf.float32),
            "beta1_power": tf.pow(tf.cast(self.beta_1, tf.float32), step),
            "beta2_power": tf.pow(tf.cast(self.beta_2, tf.float32), step),
            "beta1": tf.constant(self.beta_1, tf.float32), "beta2": tf.constant(self.beta_2, tf.float32),
            "epsilon": tf.constant(self.epsilon, tf.float32)})
        return super()._distributed_apply_gradients_fn(distribution, grads_and_vars, **kwargs)

    def update_step(self, gradient, variable):
        scalars = {name: tf.cast(value, variable.dtype) for name, value in self._step_scalars.items()}
        if self._use_weight_decay(variable):
            variable.assign(variable * scalars["keep"])  # tf-keras: variable - variable * weight_decay * lr
        if self.amsgrad:
            return super().update_step(gradient, variable)
        index = self._index_dict[self._var_key(variable)]
        return tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=self._momentums[index].handle, v=self._velocities[index].handle,
            beta1_power=scalars["beta1_power"], beta2_power=scalars["beta2_power"], lr=scalars["lr"],
            beta1=scalars["beta1"], beta2=scalars["beta2"], epsilon=scalars["epsilon"], grad=gradient)


def _dense(gradient: tf.IndexedSlices):
    """The dense gradient of a lookup (repeated rows summed), without tf's warning about large tables."""
    if gradient.dense_shape is None:
        return tf.convert_to_tensor(gradient)
    return tf.math.unsorted_segment_sum(gradient.values, gradient.indices, gradient.dense_shape[0])


def _adamw(keras_module, learning_rate, train_config):
    """FusedAdamW in tf-keras; Keras 3's own AdamW (the KerasHub family)."""
    adamw = FusedAdamW if keras_module is keras else keras_module.optimizers.AdamW
    return adamw(learning_rate=learning_rate, weight_decay=train_config.weight_decay, epsilon=1e-6,
                 **_clip(train_config))


def _clip(train_config) -> dict:
    return {"global_clipnorm": train_config.clip_norm} if train_config.clip_norm > 0 else {}


# name -> (Keras module, learning rate or schedule, train config) -> optimizer; either Keras (tf-keras, Keras 3).
OPTIMIZERS = {
    "adamw": _adamw,
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
