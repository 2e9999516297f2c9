"""Building and fitting the model: `build` compiles the family's model with the task's objective, `fit` trains
it with backups (a killed run resumes), TensorBoard and the best checkpoint; `fit_or_resume` is the whole stage
in a run directory (trained now, or loaded when an earlier attempt had finished training).

    model, schedule = build(prepared, strategy)       # inside the strategy's scope
    fitted = fit(model, schedule, prepared, run_dir)  # model.fit with backups, TensorBoard, best checkpoint
"""
import dataclasses
import hashlib
import json
import os
import shutil

import numpy as np

from tfclf import faults, progress
from tfclf.data import pipeline
from tfclf.evaluation import plots
from tfclf.serving import saving
from tfclf.stages.preparing import Prepared
from tfclf.training import budget, distill, distribute, fit as fit_lib, hparams


@dataclasses.dataclass
class Fitted:
    history: dict
    examples_per_sec: float
    best: dict                     # the best checkpoint's record (callbacks.read_best), or {}
    precision: dict = dataclasses.field(default_factory=dict)  # the policy, and the graph rewrite if one ran
    steps: int = 0                 # optimizer steps the training took (a resumed run's included)
    stopped: str = ""              # why training ended (fit.stop_reason)


def build(prepared: Prepared, strategy):
    """The compiled model and its (head's) learning-rate schedule, under the configured precision."""
    config = prepared.config
    with fit_lib.keras_policy(config.train.mixed_precision), strategy.scope():
        build = prepared.family.build_packed if prepared.packed else prepared.family.build
        model = build(config.model, config.train, prepared.num_classes, prepared.seq_len, prepared.splits.train["text"])
        objective = prepared.task.objective(config.train, prepared.num_classes, prepared.train_targets())
        schedule = prepared.family.compile(model, prepared.schedule_config, config.train.lr, prepared.total_steps,
                                           objective)
    return model, schedule


def fit(model, schedule, prepared: Prepared, run_dir: str, verbose: bool = True) -> Fitted:
    """model.fit on the training split (length-grouped batches for tokenized families), validated on the
    validation split; with a teacher, its probabilities travel with the labels (distillation)."""
    config, splits = prepared.config, prepared.splits
    if prepared.streamed:
        return _fit_streamed(model, schedule, prepared, run_dir, verbose)
    train_labels, val_labels = (prepared.task.targets(frame, splits.class_names) for frame in (splits.train, splits.val))
    weights = prepared.task.sample_weights(train_labels, prepared.num_classes, config.train.class_weight)
    if config.train.teacher:  # the teacher (an export: it cleans its input itself) scores the raw texts once
        train_labels, val_labels = (distill.pack(labels, distill.teacher_probabilities(
            config.train.teacher, frame["raw_text"], splits.class_names))
            for labels, frame in ((train_labels, splits.train), (val_labels, splits.val)))
    return _fit(model, schedule, prepared, run_dir, verbose, train_labels, val_labels, weights)


def _fit(model, schedule, prepared: Prepared, run_dir: str, verbose: bool, train_labels, val_labels,
         sample_weights) -> Fitted:
    config, splits = prepared.config, prepared.splits
    grouped = prepared.family.tokenized and not prepared.packed  # per-batch padding pays only for token inputs
    batch, map_fn, window_fn = config.train.batch_size, prepared.input_fn(), prepared.window_fn()
    train_ds = pipeline.make_dataset(
        splits.train["text"], train_labels, batch, shuffle=True, seed=config.train.seed, map_fn=map_fn,
        sample_weights=sample_weights, lengths=prepared.lengths["train"] if grouped else None, window_fn=window_fn)
    if config.train.max_steps or prepared.adaptive:  # rounds cut epochs: the data goes on where it stopped
        train_ds = train_ds.repeat()
    done = fit_lib.backed_up_steps(os.path.join(run_dir, "backup"))
    if prepared.adaptive and done:  # a resumed run sees the batches the uninterrupted one would
        progress.say(f"resuming after step {done}: the data skips the {done} batches trained on before")
        train_ds = train_ds.skip(done)
    # With windows, the epochs' validation metrics are the windows' (the held-out reports aggregate per text).
    val_ds = pipeline.make_dataset(splits.val["text"], val_labels, batch, map_fn=map_fn,
                                   lengths=prepared.lengths["val"] if grouped else None, window_fn=window_fn)
    return _fit_datasets(model, schedule, prepared, run_dir, verbose, train_ds, val_ds)


def _fit_streamed(model, schedule, prepared: Prepared, run_dir: str, verbose: bool) -> Fitted:
    """fit on streamed splits: the training split shuffled in a buffer, length-grouped for token models,
    repeated (fit counts an epoch's steps); a run resumed mid-epoch skips what its backup had seen."""
    config, corpus = prepared.config, prepared.corpus
    train, batch, map_fn = config.train, config.train.batch_size, prepared.input_fn()
    weights = fit_lib.class_weights(prepared.train_targets(), prepared.num_classes, train.class_weight)
    done = fit_lib.backed_up_step(os.path.join(run_dir, "backup"), prepared.steps_per_epoch)
    if prepared.adaptive:  # rounds are not epochs: where in its epoch of the data the backup stopped
        done = fit_lib.backed_up_steps(os.path.join(run_dir, "backup")) % prepared.data_epoch_steps
    if done:
        progress.say(f"resuming at step {done + 1} of an epoch (the last backup): the stream skips the "
                     f"{done * batch} examples that epoch had seen")
    files, stride = corpus.worker_files()
    if corpus.worker[1] > 1:
        progress.say(f"worker {corpus.worker[0]} of {corpus.worker[1]} trains on " +
                     (f"{len(files)} of {len(corpus.files)} file(s)" if stride == 1 else f"every {stride}th row of "
                      f"the {len(files)} file(s)"))
    train_ds = pipeline.stream_dataset(lambda: corpus.batches("train", shard=True), batch, train.shuffle_buffer,
                                       train.seed, map_fn, weights, prepared.family.tokenized and not prepared.packed,
                                       repeat=True, skip=done * batch)
    val_ds = pipeline.stream_dataset(lambda: corpus.batches("val", limit=config.data.max_eval_examples),
                                     prepared.scoring_batch, map_fn=map_fn)
    return _fit_datasets(model, schedule, prepared, run_dir, verbose, train_ds, val_ds)


def _fit_datasets(model, schedule, prepared: Prepared, run_dir: str, verbose: bool, train_ds, val_ds) -> Fitted:
    config = prepared.config
    hparams.write_run(config, os.path.join(run_dir, "tensorboard"))
    policy = fit_lib.precision_policy(config.train.mixed_precision)
    # A SavedModel encoder ignores the Keras policy: TensorFlow's graph rewrite lowers it, during fit only
    # (evaluation and the export stay float32, so the export reproduces the run's test probabilities).
    needs_rewrite = not prepared.packed and prepared.family.graph_precision_rewrite(config.model, config.train)
    rewritten = policy if needs_rewrite else "float32"
    with fit_lib.graph_mixed_precision(rewritten) as rewrite:
        history, throughput, best = fit_lib.fit(model, train_ds, val_ds, config.train, prepared.train_examples,
                                                prepared.steps_per_epoch, schedule, run_dir, verbose=verbose,
                                                keras_callbacks=prepared.family.keras_callbacks(),
                                                epochs=prepared.epochs, total_steps=prepared.total_steps,
                                                repeated=prepared.streamed or bool(config.train.max_steps)
                                                or prepared.adaptive)
    # A fit resumed after its last epoch trains nothing: its rate is the epochs' own, from the history.
    rate = throughput.examples_per_sec or float(np.mean(history.get("train_examples_per_sec") or [0.0]))
    steps = int(np.asarray(model.optimizer.iterations))  # restored from a backup too: the run's whole count
    rows = [dict(zip(history, values)) for values in zip(*history.values())]
    stopped = budget.stop_reason(rows, config.train, steps, prepared.total_steps, prepared.steps_per_epoch)
    return Fitted(history, rate, best or {}, {"policy": policy, "graph_rewrite": rewrite or "none"}, steps, stopped)


def budget_line(prepared: Prepared) -> str:
    """The progress line that says how long training will run."""
    train = prepared.config.train
    if prepared.adaptive:
        return (f"training adaptively on {prepared.train_examples} texts ({prepared.data_epoch_steps} steps an epoch): "
                f"validating every {prepared.steps_per_epoch} steps, stopping after {train.patience} validations "
                f"without {train.monitor} improvement once past {train.min_steps} steps, or at {prepared.total_steps} "
                "steps (--epochs N trains exactly N epochs)")
    steps = f" ({prepared.total_steps} steps)" if train.max_steps else ""
    return f"training {prepared.epochs} epoch(s){steps} on {prepared.train_examples} texts"


def budget_record(prepared: Prepared) -> dict:
    """metrics.json's `training_budget`: how the run's length was decided."""
    train = prepared.config.train
    record = {"adaptive": prepared.adaptive, "steps_per_epoch": prepared.data_epoch_steps,
              "max_steps": prepared.total_steps}
    if prepared.adaptive:
        record.update({"steps_per_validation": prepared.steps_per_epoch, "min_steps": train.min_steps,
                       "patience": train.patience, "warmup_steps": int(round(prepared.schedule_config.warmup_ratio
                                                                             * prepared.total_steps))})
    return record


def save_trained(model, fitted: Fitted, run_dir: str) -> None:
    """The trained (evaluated) weights and the fit record in `<run_dir>/trained/`, written atomically: from
    here on a killed run resumes at evaluation instead of training again."""
    faults.reached("fitted")
    target, staging = os.path.join(run_dir, "trained"), os.path.join(run_dir, ".trained-tmp")
    shutil.rmtree(staging, ignore_errors=True)
    saving.save_weights(model, os.path.join(staging, "weights"))  # weights only: evaluation resumes from here
    with open(os.path.join(staging, "fit.json"), "w", encoding="utf-8") as handle:
        json.dump(dataclasses.asdict(fitted), handle)
    os.replace(staging, target)


def load_trained(model, run_dir: str):
    """The Fitted record of a run whose training had finished (its weights loaded into `model`), or None."""
    target = os.path.join(run_dir, "trained")
    if not os.path.isfile(os.path.join(target, "fit.json")):
        return None
    model.load_weights(os.path.join(target, "weights")).expect_partial()
    with open(os.path.join(target, "fit.json"), encoding="utf-8") as handle:
        return Fitted(**json.load(handle))


def fit_or_resume(run_dir: str, prepared: Prepared, strategy):
    """The trained model and its fit record: trained now, or loaded when an earlier attempt had finished
    training before it was interrupted; curves.png of the epochs."""
    config = prepared.config
    fit_lib.seed_everything(config.train.seed, config.train.deterministic)
    progress.say(f"strategy {type(strategy).__name__}: {strategy.num_replicas_in_sync} replica(s), global batch "
          f"{config.train.batch_size}, per replica {distribute.per_replica_batch(config.train.batch_size, strategy)}")
    progress.say(f"building {config.model.encoder} ({prepared.family.name} family)")
    model, schedule = build(prepared, strategy)
    fitted = load_trained(model, run_dir)
    if fitted is None:
        progress.say(budget_line(prepared))
        fitted = fit(model, schedule, prepared, run_dir)
        save_trained(model, fitted, run_dir)
        for name in ("backup", "checkpoints"):  # trained/ holds the evaluated weights: the weights are kept once
            shutil.rmtree(os.path.join(run_dir, name), ignore_errors=True)
    faults.reached("trained")
    unit = f"validation (every {prepared.steps_per_epoch} steps)" if prepared.adaptive else "epoch"
    plots.curves_plot(fitted.history, os.path.join(run_dir, "curves.png"), config.train.monitor,
                      fitted.best.get("epoch", 0), unit)
    return model, fitted


def weights_digest(model) -> str:
    """Digest of the trained parameters: equal digests mean equal models (e.g. across workers)."""
    return hashlib.sha256(b"".join(np.ascontiguousarray(w.numpy()).tobytes()
                                   for w in model.trainable_weights)).hexdigest()
