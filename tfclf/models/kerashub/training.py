"""tfclf's training objects in Keras 3: the optimizer table and schedule (training/optimizers.py, built with
Keras 3's optimizer classes) and the losses (training/losses.py's TensorFlow math inside a Keras 3 loss).
The metrics need no adapter: training/metrics.py writes them once for either Keras."""
from tfclf._backend import tf  # first: selects tf-keras for the rest of tfclf before TensorFlow loads
import keras  # noqa: E402  Keras 3 (tf.keras is tf-keras)

from tfclf.training import optimizers  # noqa: E402


class Schedule(keras.optimizers.schedules.LearningRateSchedule):
    """tfclf's warm-up + decay (training/optimizers.WarmupDecay, plain TensorFlow math) as a Keras 3 schedule."""

    def __init__(self, schedule):
        self.schedule = schedule

    def __call__(self, step):
        return self.schedule(step)

    def get_config(self):
        return self.schedule.get_config()


def build_optimizer(train_config, learning_rate: float, total_steps: int, variables: list, policy: str):
    """(Keras 3 optimizer built for `variables`, tfclf schedule). AdamW skips LayerNorm and bias weights
    (matched on the variables' paths: Keras 3 names them `gamma`, `bias`)."""
    optimizer, schedule = optimizers.build(train_config, learning_rate, total_steps, keras, variables, Schedule)
    if policy == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer, schedule


class Loss(keras.losses.Loss):
    """tfclf's loss (training/losses.py: cross-entropy, focal, distillation; TensorFlow math) as a Keras 3
    loss: it returns per-example values, Keras 3 weighs and reduces them."""

    def __init__(self, loss):
        super().__init__(name=loss.name)
        self.loss = loss

    def call(self, y_true, y_pred):
        return self.loss.call(y_true, tf.cast(y_pred, tf.float32))
