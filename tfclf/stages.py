"""The stages of a run, shared by every entry point (`run`, `bench`, `evaluate`, grid trials).

    config = resolve(config)                          # defaults filled in; handles recorded
    prepared = prepare(config)                        # data, splits, family, lengths, sequence length
    model, schedule = build(prepared, strategy)       # inside the strategy's scope
    fitted = fit(model, schedule, prepared, run_dir)  # model.fit with backups, TensorBoard, best checkpoint
    logits, targets = score_split(model, prepared, "val")  # then the task's decision, metrics, artifacts
    export_model(model, prepared, metrics, run_id, decision)  # the task's serving signature

jobs/training_run.train composes them inside a run directory; bench calls `prepare` once and
hands the result to both of its arms.
"""
import dataclasses
import hashlib
import json
import os
import shutil

import numpy as np
import pandas as pd

from tfclf import config as config_lib, phases, progress, rundir
from tfclf.data import pipeline, sources, splits as splits_lib, stream
from tfclf.evaluation import scoring
from tfclf.models import cleaning, family as family_lib, windows
from tfclf.serving import export, saving
from tfclf.tasks import kinds, task as task_lib
from tfclf.training import distill, distribute, fit as fit_lib, hparams


@dataclasses.dataclass
class Prepared:
    """Everything the later stages need from the data, computed once."""
    config: config_lib.RunConfig   # resolved: what ran, as config.json records it
    family: family_lib.Family
    splits: splits_lib.Splits
    stats: dict                    # what the reader saw: source path, decode replacements
    lengths: dict                  # split name -> text lengths in family.length_unit (streamed: of the samples)
    seq_len: int
    corpus: stream.Corpus = None   # streamed data: what the splits are read from, pass after pass
    task: task_lib.Task = None     # single- or multi-label (tasks/kinds.of_data), picked once here

    @property
    def streamed(self) -> bool:
        return self.corpus is not None

    @property
    def class_names(self) -> list:
        return self.splits.class_names

    @property
    def num_classes(self) -> int:
        return len(self.splits.class_names)

    @property
    def train_examples(self) -> int:
        """Examples per training epoch: the training texts, or their windows (--long-text chunk, training on
        every window)."""
        if self.streamed:
            return self.splits.counts["train"]
        if not family_lib.trains_on_windows(self.config.model):
            return len(self.splits.train)
        return int(self.windows_per_text("train").sum())

    def windows_per_text(self, split: str) -> np.ndarray:
        """How many windows of the sequence cap each text of a split spans (1 for texts within it)."""
        model, reserved = self.config.model, self.family.reserved_tokens
        width, stride = windows.window_geometry(self.seq_len, reserved, model.chunk_stride)
        return windows.windows_per_text(self.lengths[split] - reserved, width, stride)

    @property
    def steps_per_epoch(self) -> int:
        steps = int(np.ceil(self.train_examples / self.config.train.batch_size))
        return min(steps, self.config.train.max_steps) if self.config.train.max_steps else steps

    @property
    def total_steps(self) -> int:
        """Training steps of the whole run: --epochs epochs, or --max-steps when fewer."""
        steps = self.steps_per_epoch * self.config.train.epochs
        return min(steps, self.config.train.max_steps) if self.config.train.max_steps else steps

    @property
    def epochs(self) -> int:
        """Epochs model.fit runs: --epochs, fewer when --max-steps ends training earlier."""
        return int(np.ceil(self.total_steps / self.steps_per_epoch))

    def data_digest(self) -> str:
        """Hash of the split texts and labels: a resumed run must see the data it was trained on."""
        if self.streamed:
            return self.splits.digest
        digest = hashlib.sha256()
        for name in ("train", "val", "test"):
            frame = getattr(self.splits, name)
            digest.update(json.dumps([name, frame["text"].tolist(), frame["label"].tolist()]).encode())
        return digest.hexdigest()

    def input_fn(self):
        """The tf.data map to the model's inputs (None for raw-string models)."""
        model, train = self.config.model, self.config.train
        return self.family.input_fn(model, self.seq_len, fixed_shape=train.xla)

    def length_summary(self) -> dict:
        """eda.json's long-text figures per split: how many texts exceed the sequence cap and by how much
        (in the family's unit), and with --long-text chunk how many windows they span."""
        summary = {"long_text": self.config.model.long_text, "truncate": self.config.model.truncate}
        for split, lengths in self.lengths.items():
            excess = lengths[lengths > self.seq_len] - self.seq_len
            entry = {"texts": int(len(lengths)), "over_cap": int(len(excess)),
                     "share_over_cap": float(len(excess) / max(len(lengths), 1)),
                     "mean_length": float(np.mean(lengths)), "p95_length": float(np.percentile(lengths, 95)),
                     "max_length": int(np.max(lengths))}
            if len(excess):
                entry.update({"excess_p50": float(np.percentile(excess, 50)),
                              "excess_p95": float(np.percentile(excess, 95)), "excess_max": int(excess.max())})
            if self.config.model.long_text == "chunk":
                counts = self.windows_per_text(split)
                entry.update({"windows": int(counts.sum()), "windows_per_text_mean": float(counts.mean()),
                              "windows_per_text_max": int(counts.max())})
            summary[split] = entry
        return summary

    def window_fn(self):
        """The tf.data map from texts to their windows (training on every window), or None."""
        return self.family.window_fn(self.config.model, self.seq_len)


@dataclasses.dataclass
class Fitted:
    history: dict
    examples_per_sec: float
    best: dict                     # the best checkpoint's record (callbacks.read_best), or {}
    precision: dict = dataclasses.field(default_factory=dict)  # the policy, and the graph rewrite if one ran
    steps: int = 0                 # optimizer steps the training took (a resumed run's included)


def default_run_dir(config) -> str:
    """runs/<data>-<encoder>-<config digest>[-N]: the same command finds its own killed run again
    (and resumes it), while a finished run is never overwritten (the next free -N is used)."""
    name = os.path.splitext(os.path.basename(os.path.normpath(config.data.data)))[0]
    base = os.path.join("runs", f"{name}-{config.model.encoder}-{config.digest()}")
    path, number = base, 1
    while os.path.exists(os.path.join(path, "metrics.json")):
        number += 1
        path = f"{base}-{number}"
    return path


def resolve(config, family=None):
    """Fills the family's defaults (lr, epochs), its handles and the run directory, so config.json says
    what ran. May download or import an encoder."""
    family = family or family_lib.family_for(config.model.encoder)
    train = dataclasses.replace(config.train, lr=config.train.lr or family.lr,
                                epochs=config.train.epochs or family.epochs)
    config = dataclasses.replace(config, train=train, model=family.resolve(config.model))
    return dataclasses.replace(config, out=config.out or default_run_dir(config))


def choose_seq_len(train_lengths, requested: int, maximum: int = 0, unit: str = "tokens") -> int:
    """The requested length, else the 95th percentile of training lengths (seed 004's method), capped at
    `maximum` (the encoder's position embeddings) when given, and at the longest training text (padding
    beyond it would only cost time)."""
    longest = max(1, int(np.max(train_lengths)))
    length = requested or max(1, int(np.ceil(np.percentile(train_lengths, 95))))
    if requested and requested > longest:
        print(f"--seq-len {requested} is longer than every training text (longest: {longest} {unit}); using {longest}")
        length = longest
    return min(length, maximum) if maximum else length


def seq_len_source(train_lengths, requested: int, maximum: int = 0) -> str:
    """Where choose_seq_len's cap came from, for the summary: --seq-len, the 95th percentile, or the encoder's
    maximum when that is lower (then the percentile is given beside it).

        >>> seq_len_source([10] * 90 + [900] * 10, 0, 512), seq_len_source([10] * 99 + [900], 0, 512)
        ("the encoder's maximum; the 95th percentile of the training texts is 900", '95th percentile of the training texts')
    """
    percentile = max(1, int(np.ceil(np.percentile(train_lengths, 95))))
    wanted = requested or percentile
    if maximum and wanted > maximum:
        return (f"--seq-len {requested} capped at the encoder's maximum" if requested else
                f"the encoder's maximum; the 95th percentile of the training texts is {percentile}")
    return "--seq-len" if requested else "95th percentile of the training texts"


def prepare(config, family=None) -> Prepared:
    """Reads and splits the data (I/O; every data error before any directory exists) and measures
    lengths in the family's unit. `config` must be resolved. Large data (stream.wanted) is scanned once
    and streamed; smaller data is read whole and split exactly."""
    phases.reached("loading")
    family = family or family_lib.family_for(config.model.encoder)
    source, files = splits_lib.locate(config.data)
    corpus = None
    if stream.wanted(config.data, files):
        corpus, splits, stats = _scan(config, source, files)
    else:
        progress.say(f"reading {config.data.data}")
        table, stats = splits_lib.load(config.data, files)
        splits = splits_lib.split(table, config.data, config.train.seed, source=stats["source"],
                                  clean_texts=cleaning.clean_texts)
        removed = splits.summary["duplicates_removed"]
        progress.say(f"{len(table)} rows, {len(splits.class_names)} classes: {len(splits.train)} train / "
                     f"{len(splits.val)} validation / {len(splits.test)} test texts ({removed['val'] + removed['test']} "
                     "duplicates of earlier splits removed)")
    emptied = splits.summary.get("emptied_by_cleaning", 0)
    if emptied:
        progress.say(f"{emptied} text(s) empty after --clean {','.join(config.data.clean)}: dropped from the run "
                     "(counted in eda.json as emptied_by_cleaning); an exported model still scores such texts")
    if family.tokenized:
        progress.say(f"tokenizing {sum(len(getattr(splits, name)) for name in ('train', 'val', 'test'))} texts"
                     + (" (the samples)" if corpus else "") + f" to measure their lengths in {family.length_unit}")
    lengths = {name: family.text_lengths(config.model, getattr(splits, name)["text"])
               for name in ("train", "val", "test")}
    seq_len = choose_seq_len(lengths["train"], config.data.seq_len, family.max_seq_len, family.length_unit)
    longer = float((lengths['train'] > seq_len).mean())
    model = config.model
    what = (f"chunked into windows ({model.chunk_train} train, {model.chunk_aggregate} of logits)"
            if model.long_text == "chunk" else f"cut to their {model.truncate}")
    progress.say(f"sequence length cap {seq_len} {family.length_unit} ("
                 + seq_len_source(lengths["train"], config.data.seq_len, family.max_seq_len)
                 + f"; {longer:.1%} of training texts are longer" + (f", {what})" if longer else ")"))
    prepared = Prepared(config, family, splits, stats, lengths, seq_len, corpus, kinds.of_data(splits))
    if model.long_text == "chunk":
        width, stride = windows.window_geometry(seq_len, family.reserved_tokens, model.chunk_stride)
        if stride > width:
            raise ValueError(f"--chunk-stride {stride} is longer than the window ({width} {family.length_unit}: "
                             f"--seq-len {seq_len}" + (f" less {family.reserved_tokens} special tokens" if
                                                        family.reserved_tokens else "")
                             + f"), so parts of texts would be skipped; give at most {width}")
        progress.say(f"windows of {width} {family.length_unit} every {stride}: {prepared.train_examples} training "
                     f"examples from {len(splits.train)} texts" if family_lib.trains_on_windows(model) else
                     f"windows of {width} {family.length_unit} every {stride} in evaluation and the export")
    return prepared


def _scan(config, source: str, files: list) -> tuple:
    """The streamed path of prepare: one counting pass over the files -> (corpus, StreamSplits, stats)."""
    data = config.data
    refused = [flag for flag, given in (("--label-separator / --label-columns", config_lib.multi_label_flags(data)),
                                        ("--long-text chunk", config.model.long_text == "chunk"),
                                        ("--teacher", bool(config.train.teacher)),
                                        ("--max-examples", bool(data.max_examples))) if given]
    if refused:
        raise ValueError(f"{refused[0]}: not available for streamed data (--stream on, or over 64 MB) in this "
                         f"version; drop {refused[0]}, or read the data whole with --stream off")
    size = sources.size_on_disk(files)
    progress.say(f"scanning {source} ({len(files)} file(s), {size / 2 ** 20:.1f} MB) in one streamed pass")
    corpus = stream.Corpus(files, data, config.train.seed, cleaning.clean_texts, distribute.worker())
    splits = corpus.scan()
    summary = splits.summary
    progress.say(f"{summary['num_rows_read']} rows ({summary['dropped_invalid_rows']} invalid dropped, "
                 f"{summary['exact_duplicates']} exact duplicates, each in one split), {len(splits.class_names)} "
                 f"classes: {splits.counts['train']} train / {splits.counts['val']} validation / "
                 f"{splits.counts['test']} test texts by the hash split")
    stats = {"source": source, "decode_replacements": summary.pop("decode_replacements", 0)}
    return corpus, splits, stats


def build(prepared: Prepared, strategy):
    """The compiled model and its (head's) learning-rate schedule, under the configured precision."""
    config = prepared.config
    with fit_lib.keras_policy(config.train.mixed_precision), strategy.scope():
        model = prepared.family.build(config.model, config.train, prepared.num_classes, prepared.seq_len,
                                      prepared.splits.train["text"])
        objective = prepared.task.objective(config.train, prepared.num_classes, train_targets(prepared))
        schedule = prepared.family.compile(model, config.train, config.train.lr, prepared.total_steps, objective)
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
    grouped = prepared.family.tokenized  # per-batch padding pays only for token inputs
    batch, map_fn, window_fn = config.train.batch_size, prepared.input_fn(), prepared.window_fn()
    train_ds = pipeline.make_dataset(
        splits.train["text"], train_labels, batch, shuffle=True, seed=config.train.seed, map_fn=map_fn,
        sample_weights=sample_weights, lengths=prepared.lengths["train"] if grouped else None, window_fn=window_fn)
    if config.train.max_steps:  # an epoch may be cut short: the data goes on where it stopped
        train_ds = train_ds.repeat()
    # With windows, the epochs' validation metrics are the windows' (the held-out reports aggregate per text).
    val_ds = pipeline.make_dataset(splits.val["text"], val_labels, batch, map_fn=map_fn,
                                   lengths=prepared.lengths["val"] if grouped else None, window_fn=window_fn)
    return _fit_datasets(model, schedule, prepared, run_dir, verbose, train_ds, val_ds)


def _fit_streamed(model, schedule, prepared: Prepared, run_dir: str, verbose: bool) -> Fitted:
    """fit on streamed splits: the training split shuffled in a buffer, length-grouped for token models,
    repeated (fit counts an epoch's steps); a run resumed mid-epoch skips what its backup had seen."""
    config, corpus = prepared.config, prepared.corpus
    train, batch, map_fn = config.train, config.train.batch_size, prepared.input_fn()
    weights = fit_lib.class_weights(train_targets(prepared), prepared.num_classes, train.class_weight)
    done = fit_lib.backed_up_step(os.path.join(run_dir, "backup"), prepared.steps_per_epoch)
    if done:
        progress.say(f"resuming at step {done + 1} of an epoch (the last backup): the stream skips the "
                     f"{done * batch} examples that epoch had seen")
    files, stride = corpus.worker_files()
    if corpus.worker[1] > 1:
        progress.say(f"worker {corpus.worker[0]} of {corpus.worker[1]} trains on " +
                     (f"{len(files)} of {len(corpus.files)} file(s)" if stride == 1 else f"every {stride}th row of "
                      f"the {len(files)} file(s)"))
    train_ds = pipeline.stream_dataset(lambda: corpus.batches("train", shard=True), batch, train.shuffle_buffer,
                                       train.seed, map_fn, weights, prepared.family.tokenized, repeat=True,
                                       skip=done * batch)
    val_ds = pipeline.stream_dataset(lambda: corpus.batches("val", limit=config.data.max_eval_examples),
                                     scoring_batch(prepared), map_fn=map_fn)
    return _fit_datasets(model, schedule, prepared, run_dir, verbose, train_ds, val_ds)


def _fit_datasets(model, schedule, prepared: Prepared, run_dir: str, verbose: bool, train_ds, val_ds) -> Fitted:
    config = prepared.config
    hparams.write_run(config, os.path.join(run_dir, "tensorboard"))
    policy = fit_lib.precision_policy(config.train.mixed_precision)
    # A SavedModel encoder ignores the Keras policy: TensorFlow's graph rewrite lowers it, during fit only
    # (evaluation and the export stay float32, so the export reproduces the run's test probabilities).
    rewritten = policy if prepared.family.graph_precision_rewrite(config.model, config.train) else "float32"
    with fit_lib.graph_mixed_precision(rewritten) as rewrite:
        history, throughput, best = fit_lib.fit(model, train_ds, val_ds, config.train, prepared.train_examples,
                                                prepared.steps_per_epoch, schedule, run_dir, verbose=verbose,
                                                keras_callbacks=prepared.family.keras_callbacks(),
                                                epochs=prepared.epochs, total_steps=prepared.total_steps,
                                                repeated=prepared.streamed or bool(config.train.max_steps))
    # A fit resumed after its last epoch trains nothing: its rate is the epochs' own, from the history.
    rate = throughput.examples_per_sec or float(np.mean(history.get("train_examples_per_sec") or [0.0]))
    steps = int(np.asarray(model.optimizer.iterations))  # restored from a backup too: the run's whole count
    return Fitted(history, rate, best or {}, {"policy": policy, "graph_rewrite": rewrite or "none"}, steps)


def save_trained(model, fitted: Fitted, run_dir: str) -> None:
    """The trained (evaluated) weights and the fit record in `<run_dir>/trained/`, written atomically: from
    here on a killed run resumes at evaluation instead of training again."""
    phases.reached("fitted")
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


def text_scorer(model, prepared: Prepared) -> tuple:
    """(model, tf.data map) that turn whole texts into logits: the trained model behind the input pipeline,
    or, with --long-text chunk, the family's raw-text model that windows each text and aggregates (the one
    the export serves; the split texts are already cleaned)."""
    if prepared.config.model.long_text != "chunk":
        return model, prepared.input_fn()
    return prepared.family.serving_model(model, prepared.config.model, prepared.seq_len), None


def score_logits(model, prepared: Prepared, split: str, scorer: tuple = None) -> np.ndarray:
    """Logits of one split's texts, in their order (scored shortest first for token models and for windowed
    texts). `scorer`: text_scorer's result, when the caller scores several splits."""
    scoring_model, map_fn = scorer or text_scorer(model, prepared)
    by_length = prepared.family.tokenized or prepared.config.model.long_text == "chunk"
    return scoring.predict_logits(scoring_model, getattr(prepared.splits, split)["text"],
                                  prepared.config.train.batch_size, map_fn,
                                  prepared.lengths[split] if by_length else None)


def score_split(model, prepared: Prepared, split: str, scorer: tuple = None) -> tuple:
    """(logits, the task's targets) of one split in its order: the in-memory split's, or the streamed split's (read in
    file order, at most --max-eval-examples texts)."""
    if not prepared.streamed:
        return (score_logits(model, prepared, split, scorer),
                prepared.task.targets(getattr(prepared.splits, split), prepared.class_names))
    scoring_model, map_fn = scorer or text_scorer(model, prepared)
    dataset = pipeline.stream_dataset(lambda: prepared.corpus.batches(split, limit=prepared.config.data.max_eval_examples),
                                      scoring_batch(prepared), map_fn=map_fn)
    logits = np.asarray(scoring_model.predict(dataset.map(lambda inputs, labels: inputs), verbose=0), np.float32)
    # The labels in the same order from a pass without the model (reading is cheap beside scoring; Keras'
    # predict is about 4x faster than a Python loop of predict_on_batch, measured on bow).
    labels = [ids for _, ids in prepared.corpus.batches(split, limit=prepared.config.data.max_eval_examples)]
    labels = np.concatenate(labels) if labels else np.zeros(0, np.int32)
    if len(labels) != len(logits):
        raise ValueError(f"{prepared.corpus.source}: {len(logits)} {split} texts scored but {len(labels)} labels read: "
                         "the files changed during the run; keep them unchanged while a run reads them, then run again")
    return logits, labels


def scoring_batch(prepared: Prepared) -> int:
    """Batch size for scoring streamed splits: string models take at least 256 texts a call (a call costs
    about a millisecond, more than their compute on 32 texts); token models the training batch."""
    batch = prepared.config.train.batch_size
    return batch if prepared.family.tokenized else max(batch, 256)


def split_rows(prepared: Prepared, split: str):
    """The split's rows (text, raw_text, label, row) in score_split's order: the table, or chunks of the stream."""
    if not prepared.streamed:
        return getattr(prepared.splits, split)
    names = prepared.class_names
    return (pd.DataFrame({"text": texts, "raw_text": raw, "label": [names[i] for i in ids], "row": rows})
            for texts, ids, raw, rows in prepared.corpus.batches(split, batch_rows=20_000, with_rows=True,
                                                                 limit=prepared.config.data.max_eval_examples))


def split_sizes(prepared: Prepared) -> dict:
    """num_train / num_val / num_test: the texts trained on and scored (streamed: --max-eval-examples caps
    the scored ones)."""
    if not prepared.streamed:
        return {f"num_{name}": len(getattr(prepared.splits, name)) for name in ("train", "val", "test")}
    cap = prepared.config.data.max_eval_examples
    counts = prepared.splits.counts
    return {"num_train": counts["train"], **{f"num_{name}": min(counts[name], cap) if cap else counts[name]
                                             for name in ("val", "test")}}


def train_targets(prepared: Prepared) -> np.ndarray:
    """The training split's targets (streamed: label ids rebuilt from its class counts; the order is not kept)."""
    if not prepared.streamed:
        return prepared.task.targets(prepared.splits.train, prepared.class_names)
    counts = prepared.splits.summary["class_counts"]["train"]
    return np.repeat(np.arange(prepared.num_classes), [counts[name] for name in prepared.class_names])


def probability_fn(model, prepared: Prepared, temperature: float):
    """texts -> calibrated probabilities with the in-memory model (what explanations call)."""
    scoring_model, map_fn = text_scorer(model, prepared)

    def predict(texts):
        logits = scoring.predict_logits(scoring_model, texts, prepared.config.train.batch_size, map_fn)
        return prepared.task.uncalibrated(logits / temperature)
    return predict


def weights_digest(model) -> str:
    """Digest of the trained parameters: equal digests mean equal models (e.g. across workers)."""
    return hashlib.sha256(b"".join(np.ascontiguousarray(w.numpy()).tobytes()
                                   for w in model.trainable_weights)).hexdigest()


def export_model(model, prepared: Prepared, metrics: dict, run_id: str, decision: dict = None) -> str:
    """Exports the raw-string model (the run's cleaning, then the family's preprocessing, then the model) as
    the next version, or returns the version this run (`run_id`) had already exported before it was killed."""
    config = prepared.config
    model_root = rundir.export_root(config)
    done = export.find_version(model_root, run_id)
    if done:
        print(f"export: {done} is this run's own export, written before it was interrupted; kept")
        return done
    serving = prepared.family.raw_text_model(model, config.model, prepared.seq_len, config.data.clean)
    extra = {"config.json": config.to_dict(), "metrics.json": {k: v for k, v in metrics.items() if k != "history"},
             "run.json": {"run_id": run_id, "run_dir": os.path.abspath(config.out),
                          "environment": metrics.get("environment"), "precision": metrics.get("precision")},
             export.TASK: {"name": prepared.task.name}}
    module = prepared.task.serving_module(serving, prepared.class_names, decision or {})
    return export.export(serving, prepared.class_names, model_root, extra, decision, module)
