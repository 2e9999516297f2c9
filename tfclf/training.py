"""Fitting a built model: seeding, compile, callbacks, class weights, throughput, prediction."""
import json
import os
import time

import numpy as np

from tfclf import losses, optimizers
from tfclf._backend import keras, tf


class TrainingDiverged(ValueError):
    """The loss became NaN or infinite; the run's last backup is kept."""


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seeds Python's `random`, NumPy and TensorFlow; optionally makes TF ops deterministic."""
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


class StopOnNonFinite(keras.callbacks.Callback):
    """Raises TrainingDiverged at the first NaN/Inf batch loss, before a bad state is backed up."""

    def __init__(self, backup_dir: str):
        super().__init__()
        self.backup_dir, self.epoch = backup_dir, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            raise TrainingDiverged(f"training diverged: loss is {loss} at epoch {self.epoch + 1}, batch {batch + 1}; "
                                   f"lower --lr or set --clip-norm; the last good backup is kept in {self.backup_dir}")


def class_weights(label_ids, num_classes: int, mode: str):
    """'balanced': n / (k * n_c) per class, as scikit-learn's compute_class_weight (seed 001)."""
    if mode == "none":
        return None
    counts = np.bincount(np.asarray(label_ids), minlength=num_classes).astype(float)
    return {i: float(len(label_ids) / (num_classes * count)) if count else 0.0 for i, count in enumerate(counts)}


class Throughput(keras.callbacks.Callback):
    """Measures training examples per second, excluding validation time."""

    def __init__(self, examples_per_epoch: int):
        super().__init__()
        self.examples_per_epoch, self.seconds, self.epochs = examples_per_epoch, 0.0, 0
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_test_begin(self, logs=None):
        if self._start is not None:  # validation starts: the epoch's training part is over
            self.seconds += time.perf_counter() - self._start
            self.epochs += 1
            self._start = None

    def on_epoch_end(self, epoch, logs=None):
        self.on_test_begin()
        logs = logs if logs is not None else {}
        logs["train_examples_per_sec"] = self.examples_per_sec

    @property
    def examples_per_sec(self) -> float:
        return self.examples_per_epoch * self.epochs / self.seconds if self.seconds else 0.0


class LearningRateLogger(keras.callbacks.Callback):
    """Adds the learning rate to the epoch logs, and writes it to TensorBoard at every step."""

    def __init__(self, schedule, log_dir: str = None):
        super().__init__()
        self.schedule = schedule
        self.writer = tf.summary.create_file_writer(os.path.join(log_dir, "steps")) if log_dir else None

    def on_train_batch_end(self, batch, logs=None):
        if self.writer is not None:
            step = self.model.optimizer.iterations
            with self.writer.as_default():
                tf.summary.scalar("learning_rate", self.schedule(step), step=step)

    def on_train_end(self, logs=None):
        if self.writer is not None:
            self.writer.flush()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.schedule(self.model.optimizer.iterations))


def precision_policy(enabled: bool) -> str:
    """'mixed_float16' on a GPU, 'mixed_bfloat16' on a CPU with bf16 instructions, else 'float32'."""
    if not enabled:
        return "float32"
    if tf.config.list_logical_devices("GPU"):
        return "mixed_float16"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            flags = handle.read()
    except OSError:
        flags = ""
    if "avx512_bf16" in flags or "amx_bf16" in flags:
        return "mixed_bfloat16"
    raise ValueError("--mixed-precision: no GPU and this CPU has no bf16 instructions (avx512_bf16/amx_bf16); "
                     "drop the flag")


def compile_model(model, train_config, num_classes: int, learning_rate: float, total_steps: int):
    """Compiles with the configured optimizer and loss; returns the (head's) learning-rate schedule.
    With `encoder_lr`, `model` must be a transformer.DiscriminativeModel: its encoder gets its own optimizer."""
    if train_config.encoder_lr:
        learning_rate = train_config.head_lr or learning_rate
        model.encoder_optimizer, _ = optimizers.build(train_config, train_config.encoder_lr, total_steps)
    optimizer, schedule = optimizers.build(train_config, learning_rate, total_steps)
    # Under mixed_float16, tf-keras' compile wraps the optimizer in a LossScaleOptimizer itself.
    model.compile(optimizer=optimizer, loss=losses.build(train_config, num_classes),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                  jit_compile=train_config.xla)
    return schedule


def fit(model, train_dataset, val_dataset, epochs: int, num_train: int, schedule, run_dir: str,
        class_weight=None, early_stopping: int = 0, verbose: int = 2):
    """model.fit with a backup every epoch (a killed run resumes from it), NaN guard, TensorBoard,
    learning-rate logging, throughput and optional early stopping; returns (history, throughput)."""
    throughput = Throughput(num_train)
    backup_dir = os.path.join(run_dir, "backup")
    log_dir = os.path.join(run_dir, "tensorboard")
    callbacks = [StopOnNonFinite(backup_dir), keras.callbacks.BackupAndRestore(backup_dir), throughput,
                 LearningRateLogger(schedule, log_dir),
                 keras.callbacks.TensorBoard(log_dir, update_freq="epoch")]
    if early_stopping:
        callbacks.append(keras.callbacks.EarlyStopping("val_loss", patience=early_stopping,
                                                       restore_best_weights=True, verbose=1))
    history = model.fit(train_dataset, validation_data=val_dataset, epochs=epochs,
                        class_weight=class_weight, callbacks=callbacks, verbose=verbose)
    return history.history, throughput


def log_config(config, log_dir: str) -> None:
    """The full config as TensorBoard text and its scalar hyper-parameters in the HParams plugin."""
    from tensorboard.plugins.hparams import api as hparams_api
    flat = {f"{section}.{key}": value for section, values in config.to_dict().items() if isinstance(values, dict)
            for key, value in values.items()}
    scalars = {key: value for key, value in flat.items() if isinstance(value, (bool, int, float, str))}
    with tf.summary.create_file_writer(os.path.join(log_dir, "config")).as_default():
        tf.summary.text("config", "```\n" + json.dumps(config.to_dict(), indent=2) + "\n```", step=0)
        hparams_api.hparams(scalars, trial_id=config.digest())


def predict_probabilities(model, dataset) -> np.ndarray:
    logits = model.predict(dataset, verbose=0)
    return tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1).numpy()


def mean_loss(loss_fn, label_ids, probabilities) -> float:
    """The training loss on held-out data, recomputed from probabilities (logits = log p)."""
    logits = np.log(np.clip(probabilities, 1e-12, 1.0))
    return float(tf.reduce_mean(loss_fn(np.asarray(label_ids), logits)).numpy())
