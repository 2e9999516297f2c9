"""Fitting a built model: seeding, precision, compile, class weights, callbacks."""
import contextlib
import os

import numpy as np

from tfclf import provenance
from tfclf._backend import keras, tf
from tfclf.training import budget, callbacks as callbacks_lib
from tfclf.training import optimizers

TrainingDiverged = callbacks_lib.TrainingDiverged


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seeds Python's `random`, NumPy and TensorFlow; optionally makes TF ops deterministic."""
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    else:  # the setting is process-wide: an earlier deterministic run in this process must not leak into this one
        from tensorflow.python.framework import config as tf_config  # no public "disable" in TF 2.20
        tf_config.disable_op_determinism()


def class_weights(label_ids, num_classes: int, mode: str):
    """'balanced': n / (k * n_c) per class, as scikit-learn's compute_class_weight (seed 001)."""
    if mode == "none":
        return None
    counts = np.bincount(np.asarray(label_ids), minlength=num_classes).astype(float)
    return {i: float(len(label_ids) / (num_classes * count)) if count else 0.0 for i, count in enumerate(counts)}


def cpu_has_bf16() -> bool:
    """Whether the running CPU reports bf16 instructions (avx512_bf16 or amx_bf16) in /proc/cpuinfo."""
    flags = provenance.cpu()["flags"]
    return "avx512_bf16" in flags or "amx_bf16" in flags


def precision_policy(enabled: bool) -> str:
    """'mixed_float16' on a GPU, 'mixed_bfloat16' on a CPU with bf16 instructions, else 'float32'."""
    if not enabled:
        return "float32"
    if tf.config.list_logical_devices("GPU"):
        return "mixed_float16"
    if cpu_has_bf16():
        return "mixed_bfloat16"
    raise ValueError("--mixed-precision: no GPU and this CPU has no bf16 instructions (avx512_bf16/amx_bf16); "
                     "drop the flag")


@contextlib.contextmanager
def keras_policy(mixed_precision: bool):
    """tf-keras' global policy for the layers built inside (`precision_policy`), float32 again on exit:
    layers keep the policy they were built with, and later builds in the process start from float32."""
    policy = precision_policy(mixed_precision)
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield policy
    finally:
        keras.mixed_precision.set_global_policy("float32")


# TensorFlow's graph rewrites that run a float32 graph's matmuls in a lower precision: the only way a policy
# reaches a TF Hub encoder, whose SavedModel graph is float32 whatever the Keras policy says.
GRAPH_REWRITES = {"mixed_bfloat16": "auto_mixed_precision_onednn_bfloat16", "mixed_float16": "auto_mixed_precision"}


@contextlib.contextmanager
def graph_mixed_precision(policy: str):
    """While active, functions TensorFlow builds run float32 ops in the policy's compute type (grappler's
    auto mixed precision: bf16 through oneDNN on CPUs, fp16 on GPUs, where Keras' loss scaling of
    mixed_float16 protects the gradients). Restored on exit: later runs in the process are untouched."""
    option = GRAPH_REWRITES.get(policy)
    if option is None:
        yield None
        return
    before = tf.config.optimizer.get_experimental_options().get(option, False)
    tf.config.optimizer.set_experimental_options({option: True})
    try:
        yield option
    finally:
        tf.config.optimizer.set_experimental_options({option: before})


def label_weights(targets, mode: str) -> np.ndarray:
    """Multi-label: per label, the (negative, positive) weights of its binary cross-entropy [labels, 2]:
    ones for 'none'; for 'balanced', each label's two outcomes weigh n / (2 n_outcome), as
    compute_class_weight on that label alone (a rare label's positives weigh more)."""
    targets = np.asarray(targets, dtype=np.float64)
    if mode == "none":
        return np.ones((targets.shape[1], 2), dtype=np.float32)
    positives = targets.sum(axis=0)
    negatives = len(targets) - positives
    return np.stack([len(targets) / (2.0 * np.maximum(negatives, 1)),
                     len(targets) / (2.0 * np.maximum(positives, 1))], axis=1).astype(np.float32)


def compile_model(model, train_config, learning_rate: float, total_steps: int, objective):
    """Compiles with the configured optimizer and the task's objective (tasks/task.Objective: the loss and
    the metrics); returns the (head's) learning-rate schedule. With `encoder_lr`, `model` must be a
    transformer.DiscriminativeModel: its encoder gets its own optimizer."""
    if train_config.encoder_lr:
        learning_rate = train_config.head_lr or learning_rate
        model.encoder_optimizer, _ = optimizers.build(train_config, train_config.encoder_lr, total_steps)
    optimizer, schedule = optimizers.build(train_config, learning_rate, total_steps)
    # Under mixed_float16, tf-keras' compile wraps the optimizer in a LossScaleOptimizer itself.
    model.compile(optimizer=optimizer, loss=objective.loss, metrics=objective.metrics(keras),
                  jit_compile=train_config.xla)
    return schedule


def class_sample_weights(label_ids, weights):
    """Per-example weights from a class -> weight map (what Keras' class_weight does, but usable with
    distillation's packed labels, which Keras' class_weight would misread)."""
    if weights is None:
        return None
    return np.array([weights[int(label)] for label in label_ids], dtype=np.float32)


def backed_up_steps(backup_dir: str) -> int:
    """Optimizer steps the run's backup holds (0 without one, or in a Keras 3 backup, not read here)."""
    directory = os.path.join(backup_dir, "chief")
    if not tf.train.latest_checkpoint(directory):
        return 0
    reader = tf.train.load_checkpoint(directory)
    key = "model/optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"
    return int(reader.get_tensor(key)) if reader.has_tensor(key) else 0


def backed_up_step(backup_dir: str, steps_per_epoch: int) -> int:
    """The step within its epoch at which a mid-epoch backup (--backup-every) was taken, 0 when there is none
    or it was taken at an epoch's end: the steps of that epoch the resumed fit does not repeat."""
    directory = os.path.join(backup_dir, "chief")
    if not tf.train.latest_checkpoint(directory):
        return 0
    reader = tf.train.load_checkpoint(directory)
    names = reader.get_variable_to_shape_map()
    key = next((name for name in names if name.startswith("ckpt_saved_batch")), None)
    batch = int(reader.get_tensor(key)) if key else -1
    return batch + 1 if 0 <= batch < steps_per_epoch - 1 else 0


def fit(model, train_dataset, val_dataset, train_config, num_train: int, steps_per_epoch: int, schedule,
        run_dir: str, verbose: bool = True, keras_callbacks=None, epochs: int = 0, total_steps: int = 0,
        repeated: bool = False):
    """model.fit with a backup every epoch (a killed run resumes from it), NaN guard, TensorBoard,
    learning-rate logging, throughput, a progress line, the best checkpoint by `train_config.monitor`
    and early stopping on the same metric (`--early-stopping N` epochs; adaptive training, `--epochs 0`:
    `--patience` validations after `--min-steps`). Returns (history, throughput, best) where `best`
    is read_best()'s record of the best checkpoint, whose weights the model holds when restore_best.
    `keras_callbacks`: the model's Keras' callbacks module (the family's; default tf-keras').
    `epochs` (Keras epochs: data epochs, or adaptive training's validation rounds; default
    train_config.epochs) and `total_steps` (stop there, also within an epoch); `repeated`: the training
    dataset is endless, so fit counts `steps_per_epoch` steps an epoch."""
    keras_callbacks = keras_callbacks or keras.callbacks
    epoch_count = epochs or train_config.epochs
    throughput = callbacks_lib.Throughput(min(num_train, steps_per_epoch * train_config.batch_size))
    backup_dir = os.path.join(run_dir, "backup")
    log_dir = os.path.join(run_dir, "tensorboard")
    checkpoint_dir = os.path.join(run_dir, "checkpoints")
    epochs = callbacks_lib.EpochHistory(os.path.join(run_dir, "history.json"))
    # Order matters: the logs are complete (throughput, learning rate) before the history records them,
    # and the history is written before the backup, so a backed-up epoch is always in the history.
    # The best checkpoint is written before the backup too (an epoch in the backup is never missing from it);
    # the backup is kept when fit ends (delete_checkpoint=False) and removed only once `trained/` is saved.
    callbacks = [callbacks_lib.StopOnNonFinite(backup_dir), throughput,
                 callbacks_lib.LearningRateLogger(schedule, log_dir), epochs,
                 callbacks_lib.BestCheckpoint(checkpoint_dir, train_config.monitor),
                 callbacks_lib.backup(keras_callbacks, backup_dir, train_config.backup_every, steps_per_epoch),
                 keras_callbacks.TensorBoard(log_dir, update_freq="epoch")]
    patience = train_config.early_stopping or (train_config.patience if not train_config.epochs else 0)
    if patience:  # after the history (it reads the epoch just recorded), before the backup (which then has it)
        callbacks.insert(callbacks.index(epochs) + 1, budget.PatienceStop(
            epochs, train_config.monitor, patience, 0 if train_config.epochs else train_config.min_steps,
            steps_per_epoch))
    if verbose:
        callbacks.append(callbacks_lib.Progress(epoch_count, steps_per_epoch, train_config.batch_size,
                                                  adaptive=not train_config.epochs))
    callbacks.append(callbacks_lib.PhasePoints())
    if total_steps and total_steps < epoch_count * steps_per_epoch:
        callbacks.append(callbacks_lib.StopAtStep(total_steps, steps_per_epoch))
    model.fit(train_dataset, validation_data=val_dataset, epochs=epoch_count, callbacks=callbacks, verbose=0,
              steps_per_epoch=steps_per_epoch if repeated else None,
              shuffle=False)  # the dataset shuffles itself (Keras 3 warns about the default otherwise)
    best = callbacks_lib.read_best(checkpoint_dir)
    if best and train_config.restore_best:
        model.load_weights(best["weights"]).expect_partial()
    return epochs.history, throughput, best

