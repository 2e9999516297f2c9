"""How long training runs: adaptive training's validation rounds and step cap, what counts as progress, the
patience callback (counted from the run's history, so it survives a resume) and why training stopped.

    >>> rows = [{"val_macro_f1": value, "val_loss": 0.1} for value in (0.964, 0.877, 0.967)]
    >>> since_best(rows, "val_macro_f1")      # 0.967 is not 0.005 above 0.964: two validations without progress
    (0, 2)
"""
import numpy as np

from tfclf._backend import keras
from tfclf.training import callbacks as callbacks_lib

# Adaptive training (--epochs 0). Its length, which the learning-rate schedule decays over: ADAPTIVE_EPOCHS data
# epochs (fine-tuning's usual 2-4; the multi-label TREC set needs 4), at least --min-steps, at most 2000 steps of
# 32 texts (64,000 texts, about an hour of MiniLM on 2 cores) for large data. Decaying over the 2000-step cap
# instead left small data training at 85-90% of the peak rate where it stopped (measured: docs/training.md).
# Validation every two validation splits' worth of training texts (scoring a text costs about a third of
# training on it, so validating takes about a sixth of the time), at least every 20 steps, at most every epoch.
ADAPTIVE_EPOCHS = 4
ADAPTIVE_MAX_STEPS = 2000
MIN_ROUND_STEPS = 20


def adaptive_steps(data_epoch_steps: int, train_config) -> int:
    """Adaptive training's step cap, over which the schedule decays: --max-steps, else ADAPTIVE_EPOCHS data epochs
    within [--min-steps, ADAPTIVE_MAX_STEPS].

        >>> from tfclf import config
        >>> train = config.from_flat({}).train
        >>> adaptive_steps(122, train), adaptive_steps(10, train), adaptive_steps(900, train)
        (488, 100, 2000)
    """
    if train_config.max_steps:
        return train_config.max_steps
    return min(ADAPTIVE_MAX_STEPS, max(train_config.min_steps, ADAPTIVE_EPOCHS * data_epoch_steps))


def validation_round(epoch_steps: int, val_texts: int, train_config) -> int:
    """Optimizer steps between the validations of adaptive training: --eval-every, else twice the validation
    texts in training steps, at least MIN_ROUND_STEPS, at most one epoch.

        >>> from tfclf import config
        >>> validation_round(122, 836, config.from_flat({}).train), validation_round(10, 100, config.from_flat({}).train)
        (53, 10)
    """
    if train_config.eval_every:
        return train_config.eval_every
    wanted = int(np.ceil(2 * val_texts / train_config.batch_size))
    return max(1, min(epoch_steps, max(MIN_ROUND_STEPS, wanted)))


# What early stopping counts as progress. A metric in [0, 1] (F1, accuracy) must rise by more than MIN_GAIN (on
# 750 validation texts, one or two texts of a rare class move macro-F1 by that much: the default SMS run crept
# 0.9709 -> 0.9771 -> 0.9774 over three validations), a loss fall by more than that share. An exact tie counts
# when the validation loss fell by TIE_LOSS_GAIN: the first steps of a multi-label run, whose F1 stays 0 until
# probabilities pass 0.5, cut the loss by far more, while a loss creeping down on a saturated F1 does not.
MIN_GAIN = 0.005
TIE_LOSS_GAIN = 0.1


def progressed(value: float, loss: float, best, best_loss: float, mode: str) -> bool:
    """`callbacks.improved` for early stopping: by more than MIN_GAIN, or a tie with a TIE_LOSS_GAIN lower loss."""
    if not np.isfinite(value):
        return False
    if best is None:
        return True
    if value == best:
        return loss < best_loss * (1.0 - TIE_LOSS_GAIN)
    return value < best * (1.0 - MIN_GAIN) if mode == "min" else value > best + MIN_GAIN


def since_best(rows: list, monitor: str) -> tuple:
    """(index of the last row that made progress, rows after it) of epoch-log rows by `monitor` (`progressed`):
    what early stopping needs, computed from the history alone, so a resumed run (whose history.json survives)
    counts its patience exactly as the uninterrupted run.

        >>> since_best([{"val_f1": 0.5, "val_loss": 1.0}, {"val_f1": 0.7, "val_loss": 0.9},
        ...             {"val_f1": 0.7, "val_loss": 0.85}, {"val_f1": 0.703, "val_loss": 0.5}], "val_f1")
        (1, 2)
    """
    mode = "min" if monitor.endswith("loss") else "max"
    best, best_loss, best_index = None, float("inf"), -1
    for index, row in enumerate(rows):
        value, loss = float(row.get(monitor, float("nan"))), float(row.get("val_loss", float("inf")))
        if progressed(value, loss, best, best_loss, mode):
            best, best_loss, best_index = value, loss, index
    return best_index, len(rows) - 1 - best_index


class PatienceStop(keras.callbacks.Callback):
    """Early stopping that survives a resume: after `min_steps` optimizer steps, stops when `patience`
    validations in a row did not improve `monitor` (`since_best` over the run's whole history, read from
    `history`, an EpochHistory placed before this callback). `steps_per_epoch`: optimizer steps per Keras
    epoch (a data epoch, or a validation round of adaptive training)."""

    def __init__(self, history: callbacks_lib.EpochHistory, monitor: str, patience: int, min_steps: int, steps_per_epoch: int):
        super().__init__()
        self.history, self.monitor, self.patience = history, monitor, patience
        self.min_steps, self.steps_per_epoch = min_steps, steps_per_epoch

    def should_stop(self) -> bool:
        rows = self.history.epochs
        return (bool(rows) and len(rows) * self.steps_per_epoch >= self.min_steps
                and since_best(rows, self.monitor)[1] >= self.patience)

    def on_epoch_end(self, epoch, logs=None):
        if self.should_stop():
            self.model.stop_training = True


def stop_reason(history_rows: list, train_config, steps: int, total_steps: int, steps_per_epoch: int) -> str:
    """Why training ended, for metrics.json and the summary: --epochs done, the step cap, or no --monitor
    improvement for the patience (adaptive training: in validations every `steps_per_epoch` steps).

        >>> from tfclf import config
        >>> train = config.from_flat({"epochs": 0, "patience": 2, "monitor": "val_macro_f1"}).train
        >>> rows = [{"val_macro_f1": f, "val_loss": 1.0} for f in (0.5, 0.9, 0.8, 0.85)]
        >>> stop_reason(rows, train, 200, 2000, 50)
        'no val_macro_f1 gain above 0.005 in the 2 validations after step 100 (0.9000); adaptive training stops after 2 (--patience), once past 100 steps (--min-steps)'
    """
    adaptive, monitor = not train_config.epochs, train_config.monitor
    patience = train_config.early_stopping or (train_config.patience if adaptive else 0)
    best, after = since_best(history_rows, monitor) if history_rows else (-1, 0)
    if patience and history_rows and after >= patience and (not adaptive or steps >= train_config.min_steps):
        what = "validations" if adaptive else "epochs"
        rule = (f"adaptive training stops after {patience} (--patience), once past {train_config.min_steps} steps "
                "(--min-steps)" if adaptive else f"--early-stopping {patience}")
        value = float(history_rows[best][monitor])
        gain = (f"{MIN_GAIN:.0%}" if monitor.endswith("loss") else f"{MIN_GAIN:g}")
        return (f"no {monitor} gain above {gain} in the {after} {what} after step {(best + 1) * steps_per_epoch} "
                f"({value:.4f}); {rule}")
    if steps >= total_steps and (adaptive or train_config.max_steps):
        cap = (f"--max-steps {train_config.max_steps}" if train_config.max_steps else
               f"the adaptive cap of {total_steps} steps ({ADAPTIVE_EPOCHS} epochs, at least --min-steps, at most "
               f"{ADAPTIVE_MAX_STEPS}; --max-steps sets it)")
        return f"reached {cap}" + (f"; {monitor} was still improving" if adaptive and after == 0 else "")
    return f"--epochs {train_config.epochs} done"
