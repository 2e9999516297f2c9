"""Keras callbacks of a run: NaN guard, throughput, learning-rate log, progress line, best checkpoint."""
import json
import os
import shutil
import sys
import time

import numpy as np

from tfclf import faults, files, progress
from tfclf._backend import keras, tf
from tfclf.serving import saving


class TrainingDiverged(ValueError):
    """The loss became NaN or infinite; the run's last backup is kept."""


class StopOnNonFinite(keras.callbacks.Callback):
    """Raises TrainingDiverged at the first NaN/Inf batch loss, before a bad state is backed up."""

    def __init__(self, backup_dir: str):
        super().__init__()
        self.backup_dir, self.epoch, self.backed_up = backup_dir, 0, False

    def on_epoch_begin(self, epoch, logs=None):
        self.backed_up = self.backed_up or epoch > 0  # BackupAndRestore saved every epoch before this one
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            kept = (f"the backup of epoch {self.epoch} is kept in {self.backup_dir}, and the same command resumes "
                    "from it" if self.backed_up else "no epoch had finished, so nothing was backed up; the same "
                    "command starts again from the beginning")
            raise TrainingDiverged(f"training diverged: loss is {loss} at epoch {self.epoch + 1}, batch {batch + 1}; "
                                   f"{kept}; to avoid it, lower --lr or set --clip-norm (a new config: with the "
                                   "same --out, add --overwrite)")


class EpochHistory(keras.callbacks.Callback):
    """Every epoch's logs in `path` (JSON, replaced atomically), read back at the start: a resumed fit
    continues the history of the epochs before the kill. Put it before BackupAndRestore, so an epoch
    is in the history whenever it is in the backup."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self.epochs = read_history(path)

    def on_epoch_end(self, epoch, logs=None):
        self.epochs = self.epochs[:epoch] + [{key: float(value) for key, value in (logs or {}).items()}]
        with files.atomic_write(self.path) as handle:
            json.dump(self.epochs, handle)

    @property
    def history(self) -> dict:
        """Metric name -> one value per epoch, as Keras' History."""
        keys = list(dict.fromkeys(key for row in self.epochs for key in row))
        return {key: [row.get(key, float("nan")) for row in self.epochs] for key in keys}


def read_history(path: str) -> list:
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


class PhasePoints(keras.callbacks.Callback):
    """The fault-injection points inside fit (see faults.py); put it last, after the backup."""

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            faults.reached("epoch_end")

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 1 and batch == 0:
            faults.reached("epoch_mid")
        self.steps = getattr(self, "steps", 0) + 1
        faults.reached_step(self.steps)


class Throughput(keras.callbacks.Callback):
    """Measures training examples per second, excluding validation time; `epoch_seconds` keeps each
    epoch's training time (the first one includes tracing)."""

    def __init__(self, examples_per_epoch: int):
        super().__init__()
        self.examples_per_epoch, self.epoch_seconds = examples_per_epoch, []
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_test_begin(self, logs=None):
        if self._start is not None:  # validation starts: the epoch's training part is over
            self.epoch_seconds.append(time.perf_counter() - self._start)
            self._start = None

    def on_epoch_end(self, epoch, logs=None):
        self.on_test_begin()
        logs = logs if logs is not None else {}
        logs["train_examples_per_sec"] = self.examples_per_sec

    @property
    def examples_per_sec(self) -> float:
        seconds = sum(self.epoch_seconds)
        return self.examples_per_epoch * len(self.epoch_seconds) / seconds if seconds else 0.0


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


class Progress(keras.callbacks.Callback):
    """One progress line per epoch with examples/s and ETA, refreshed in place on a terminal
    (every `interval` seconds as new lines in a log file), then the epoch's metrics."""

    def __init__(self, epochs: int, steps: int, batch_size: int, interval: float = 30.0, stream=None,
                 adaptive: bool = False):
        super().__init__()
        self.epochs, self.steps, self.batch_size = epochs, steps, batch_size
        self.adaptive = adaptive  # adaptive training: Keras' epochs are validation rounds, their count a cap
        self.stream = stream or sys.stdout
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.interval = 0.5 if self.tty else interval
        self.first_step = None

    def _write(self, text: str, final: bool):
        if self.tty:
            self.stream.write("\r\033[K" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.start, self.last = epoch, time.perf_counter(), time.perf_counter()
        self.first_step = None  # a resumed epoch starts at its backup's step

    def on_train_begin(self, logs=None):
        self.first = True

    def on_train_batch_end(self, batch, logs=None):
        if getattr(self, "first", False):  # how long reading, scanning and building took to reach training
            self.first = False
            progress.say(f"first training step done (step {batch + 1} of {'round' if self.adaptive else 'epoch'} "
                         f"{self.epoch + 1})")
        if self.first_step is None:
            self.first_step = batch
        now = time.perf_counter()
        if now - self.last < self.interval:
            return
        self.last, done, elapsed = now, batch + 1, now - self.start
        ran = done - self.first_step
        rate = ran * self.batch_size / elapsed
        eta = (self.steps - done) * elapsed / max(ran, 1)
        metrics = "  ".join(f"{key} {value:.4f}" for key, value in (logs or {}).items())
        self._write(f"{self._label(self.epoch)}  step {done}/{self.steps}  {metrics}  "
                    f"{rate:.1f} ex/s  ETA {eta:.0f}s", final=False)

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        rate, seconds = logs.pop("train_examples_per_sec", 0.0), time.perf_counter() - self.start
        metrics = "  ".join(f"{key} {value:.4g}" for key, value in logs.items())
        self._write(f"{self._label(epoch)}  {seconds:.0f}s  {rate:.1f} train ex/s  {metrics}", final=True)

    def _label(self, epoch: int) -> str:
        """`epoch 2/5`, or in adaptive training `round 2 (at most 43)`: a round ends at a validation."""
        return f"round {epoch + 1} (at most {self.epochs})" if self.adaptive else f"epoch {epoch + 1}/{self.epochs}"


class BestCheckpoint(keras.callbacks.Callback):
    """Keeps the weights of the best epoch by `monitor` (min for losses, max otherwise; ties go to the
    lower validation loss) in
    `directory/best/`, replaced atomically; its value survives a resume (stored beside the weights)."""

    def __init__(self, directory: str, monitor: str):
        super().__init__()
        self.directory, self.monitor = directory, monitor
        self.mode = "min" if monitor.endswith("loss") else "max"
        state = read_best(directory)
        self.best = state["value"] if state else None
        self.best_loss = state.get("val_loss", float("inf")) if state else float("inf")

    def _improved(self, value: float, loss: float) -> bool:
        return improved(value, loss, self.best, self.best_loss, self.mode)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            raise ValueError(f"--monitor {self.monitor}: not among the epoch's metrics; choose one of: "
                             f"{', '.join(sorted(key for key in logs if key.startswith('val_')))}")
        value, loss = float(logs[self.monitor]), float(logs.get("val_loss", float("inf")))
        if not self._improved(value, loss):
            return
        self.best, self.best_loss = value, loss
        staging, target = os.path.join(self.directory, ".best-tmp"), os.path.join(self.directory, "best")
        shutil.rmtree(staging, ignore_errors=True)
        saving.save_weights(self.model, os.path.join(staging, "weights"))  # weights only (the backup resumes)
        with open(os.path.join(staging, "best.json"), "w", encoding="utf-8") as handle:
            json.dump({"monitor": self.monitor, "value": value, "val_loss": loss, "epoch": epoch + 1}, handle)
        old = os.path.join(self.directory, ".best-old")
        if os.path.isdir(target):
            os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)


def improved(value: float, loss: float, best, best_loss: float, mode: str) -> bool:
    """Better than `best` by the monitored metric (`mode` min or max); on a tie (small validation sets plateau
    on accuracy and F1), better by validation loss. A non-finite value never improves; the first one does."""
    if not np.isfinite(value):
        return False
    if best is None:
        return True
    if value == best:
        return loss < best_loss
    return value < best if mode == "min" else value > best


def read_best(directory: str):
    """{"monitor", "value", "epoch", "weights"} of the best checkpoint, or None (also after a kill
    between the two renames of BestCheckpoint, when only `.best-old` is complete)."""
    for name in ("best", ".best-old"):
        path = os.path.join(directory, name, "best.json")
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as handle:
                return {**json.load(handle), "weights": os.path.join(directory, name, "weights")}
    return None


class StopAtStep(keras.callbacks.Callback):
    """Ends training after `total_steps` steps (--max-steps), also within an epoch (which is then
    validated and recorded as usual)."""

    def __init__(self, total_steps: int, steps_per_epoch: int):
        super().__init__()
        self.total_steps, self.steps_per_epoch, self.epoch = total_steps, steps_per_epoch, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch * self.steps_per_epoch + batch + 1 >= self.total_steps:
            self.model.stop_training = True


def backup(keras_callbacks, backup_dir: str, every: int, steps_per_epoch: int):
    """The backup callback: at each epoch's end, and with `every` also every `every` steps, so that a run
    killed mid-epoch resumes at its last backup (tf-keras: at each epoch's end too, as the epoch's last
    step, so a resume starts the next epoch)."""
    if not every:
        return keras_callbacks.BackupAndRestore(backup_dir, delete_checkpoint=False)
    if keras_callbacks is not keras.callbacks:  # Keras 3 (the kerashub family): its own step backups
        return keras_callbacks.BackupAndRestore(backup_dir, save_freq=every, delete_checkpoint=False)

    class StepBackup(keras.callbacks.BackupAndRestore):
        def on_epoch_end(self, epoch, logs=None):
            self._batches_count = 0
            self._backup(epoch=epoch, batch=steps_per_epoch - 1)

    return StepBackup(backup_dir, save_freq=every, delete_checkpoint=False)
