"""The first stage of every run: `resolve` fills the config's defaults, `prepare` reads and splits the data,
measures lengths in the family's unit, chooses the sequence length and picks the task (tasks/kinds.of_data),
which fills the defaults that depend on the data (`--monitor auto`: `with_task_defaults`).

    config = resolve(config)                          # defaults filled in; handles recorded
    prepared = prepare(config)                        # data, splits, family, task, lengths, sequence length
    record(prepared, run_dir)                         # config.json and the EDA files in the run directory
"""
import dataclasses
import hashlib
import json
import os

import numpy as np

from tfclf import choices, config as config_lib, faults, progress
from tfclf.data import sources, splits as splits_lib, stream
from tfclf.evaluation import eda
from tfclf.models import cleaning, family as family_lib, windows
from tfclf.tasks import kinds
from tfclf.training import budget, distribute


@dataclasses.dataclass
class Prepared:
    """Everything the later stages need from the data, computed once."""
    config: config_lib.RunConfig   # resolved, the task's defaults too: what ran, as config.json records it
    family: family_lib.Family
    splits: splits_lib.Splits
    stats: dict                    # what the reader saw: source path, decode replacements
    lengths: dict                  # split name -> text lengths in family.length_unit (streamed: of the samples)
    seq_len: int
    corpus: stream.Corpus = None   # streamed data: what the splits are read from, pass after pass
    task: "tasks.task.Task" = None  # single- or multi-label (tasks/kinds.of_data), picked once here
    packed: bool = False           # training and scoring pack several texts per row (--pack)

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
    def adaptive(self) -> bool:
        """Adaptive training (--epochs 0): until --monitor stops improving, within --min-steps and the step cap."""
        return not self.config.train.epochs

    @property
    def data_epoch_steps(self) -> int:
        return int(np.ceil(self.train_examples / self.config.train.batch_size))

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps of one Keras epoch: a data epoch (at most --max-steps) or, adaptive, a validation
        round (`budget.validation_round`)."""
        if self.adaptive:
            return budget.validation_round(self.data_epoch_steps, self.val_texts, self.config.train)
        steps = self.data_epoch_steps
        return min(steps, self.config.train.max_steps) if self.config.train.max_steps else steps

    @property
    def total_steps(self) -> int:
        """Training steps of the whole run at most: --epochs epochs, or --max-steps when fewer; adaptive:
        budget.adaptive_steps (--max-steps, else 4 epochs within [--min-steps, 2000])."""
        if self.adaptive:
            return budget.adaptive_steps(self.data_epoch_steps, self.config.train)
        steps = self.steps_per_epoch * self.config.train.epochs
        return min(steps, self.config.train.max_steps) if self.config.train.max_steps else steps

    @property
    def epochs(self) -> int:
        """Keras epochs model.fit runs at most: --epochs, fewer when --max-steps ends training earlier;
        adaptive: validation rounds up to the step cap."""
        return int(np.ceil(self.total_steps / self.steps_per_epoch))

    @property
    def val_texts(self) -> int:
        return self.splits.counts["val"] if self.streamed else len(self.splits.val)

    @property
    def schedule_config(self):
        """The train config the learning-rate schedule is built from. Adaptive training does not know where it
        will stop: the warm-up is --warmup-ratio of --min-steps (not of the cap, which would still be warming up
        where small data stops), then the configured decay runs over the cap (`budget.adaptive_steps`)."""
        train = self.config.train
        if not self.adaptive:
            return train
        warmup = train.warmup_ratio * max(train.min_steps, self.steps_per_epoch) / self.total_steps
        return dataclasses.replace(train, warmup_ratio=min(warmup, train.warmup_ratio))

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
        if self.packed:
            return self.family.pack_fn(model, self.seq_len, fixed_shape=train.xla)
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

    def train_targets(self) -> np.ndarray:
        """The training split's targets (streamed: label ids rebuilt from its class counts; the order is not kept)."""
        if not self.streamed:
            return self.task.targets(self.splits.train, self.class_names)
        counts = self.splits.summary["class_counts"]["train"]
        return np.repeat(np.arange(self.num_classes), [counts[name] for name in self.class_names])

    @property
    def scoring_batch(self) -> int:
        """Batch size for scoring streamed splits: string models take at least 256 texts a call (a call costs
        about a millisecond, more than their compute on 32 texts); token models the training batch."""
        batch = self.config.train.batch_size
        return batch if self.family.tokenized else max(batch, 256)

    def split_sizes(self) -> dict:
        """num_train / num_val / num_test: the texts trained on and scored (streamed: --max-eval-examples caps
        the scored ones)."""
        if not self.streamed:
            return {f"num_{name}": len(getattr(self.splits, name)) for name in ("train", "val", "test")}
        cap = self.config.data.max_eval_examples
        counts = self.splits.counts
        return {"num_train": counts["train"], **{f"num_{name}": min(counts[name], cap) if cap else counts[name]
                                                 for name in ("val", "test")}}


def default_run_dir(config) -> str:
    """runs/<data>-<encoder>-<config digest>[-N]: the same command finds its own killed run again
    (and resumes it), while a finished run is never overwritten (the next free -N is used). The digest is of
    the config before the data is read (`--monitor auto` still auto; config.json's digest has the metric)."""
    name = os.path.splitext(os.path.basename(os.path.normpath(config.data.data)))[0]
    base = os.path.join("runs", f"{name}-{config.model.encoder}-{config.digest()}")
    path, number = base, 1
    while os.path.exists(os.path.join(path, "metrics.json")):
        number += 1
        path = f"{base}-{number}"
    return path


def resolve(config, family=None):
    """Fills the family's defaults (lr), its handles and the run directory, so config.json says what ran
    (--epochs 0 stays 0: adaptive training; `prepare` fills what depends on the data, `with_task_defaults`).
    May download or import an encoder."""
    family = family or family_lib.family_for(config.model.encoder)
    train = dataclasses.replace(config.train, lr=config.train.lr or family.lr)
    config = dataclasses.replace(config, train=train, model=family.resolve(config.model))
    return dataclasses.replace(config, out=config.out or default_run_dir(config))


def with_task_defaults(config, task):
    """`config` with what depends on the kind of data filled in once the data is read: `--monitor auto` becomes
    the task's metric (val_macro_f1 single-label, val_micro_f1 multi-label). config.json records it and the run
    directory's resume check digests this config, so a resumed run monitors what the interrupted one did; an
    explicit --monitor is kept (and checked by the task).

        >>> from tfclf import config as config_lib
        >>> from tfclf.tasks import kinds
        >>> auto = config_lib.from_flat({})
        >>> [with_task_defaults(auto, kinds.named(name)).train.monitor for name in ("single_label", "multi_label")]
        ['val_macro_f1', 'val_micro_f1']
        >>> with_task_defaults(config_lib.from_flat({"monitor": "val_loss"}), kinds.named("multi_label")).train.monitor
        'val_loss'
    """
    if config.train.monitor != "auto":
        return config
    return dataclasses.replace(config, train=dataclasses.replace(config.train, monitor=task.default_monitor))


# The default cap (wordpieces) for texts whose 95th percentile is over the encoder's maximum, kept by head+tail:
# on long documents (manual pages, 98% over 512 wordpieces) MiniLM fine-tuned at 256 head+tail scored as well as
# at the full 512 with the same steps, in about a third of the time and half the memory (notes/issue-28-defaults.md).
LONG_TEXT_CAP = 256


def _percentile95(train_lengths) -> int:
    return max(1, int(np.ceil(np.percentile(train_lengths, 95))))


def sequence_cap(train_lengths, config, family) -> tuple:
    """(the cap, the side `--truncate auto` keeps, where the cap came from for the summary). The long-text default,
    LONG_TEXT_CAP kept by head+tail, applies with no --seq-len, --truncate auto, truncation (not --long-text
    chunk), a family with a maximum length that can keep more than a text's head, and most training texts longer
    than that maximum (their 95th percentile over it), so they are cut whatever the cap; otherwise
    choose_seq_len's cap and the head."""
    model, maximum, percentile = config.model, family.max_seq_len, _percentile95(train_lengths)
    if (not config.data.seq_len and model.truncate == "auto" and model.long_text == "truncate" and maximum
            and choices.family_of(model.encoder).get("long_text") and percentile > maximum):
        return (min(LONG_TEXT_CAP, maximum), "head+tail",
                f"the default for long texts: their 95th percentile, {percentile}, is over the encoder's maximum; "
                f"--seq-len {maximum} keeps more of each text and trains about 3x slower")
    return (choose_seq_len(train_lengths, config.data.seq_len, maximum, family.length_unit), "head",
            seq_len_source(train_lengths, config.data.seq_len, maximum))


def with_truncate(config, side: str):
    """`config` with `--truncate auto` made `side` (what sequence_cap chose); an explicit side is kept."""
    if config.model.truncate != "auto":
        return config
    return dataclasses.replace(config, model=dataclasses.replace(config.model, truncate=side))


def choose_seq_len(train_lengths, requested: int, maximum: int = 0, unit: str = "tokens") -> int:
    """The requested length, else the 95th percentile of training lengths (seed 004's method), capped at
    `maximum` (the encoder's position embeddings) when given, and at the longest training text (padding
    beyond it would only cost time)."""
    longest = max(1, int(np.max(train_lengths)))
    length = requested or _percentile95(train_lengths)
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
    percentile = _percentile95(train_lengths)
    wanted = requested or percentile
    if maximum and wanted > maximum:
        return (f"--seq-len {requested} capped at the encoder's maximum" if requested else
                f"the encoder's maximum; the 95th percentile of the training texts is {percentile}")
    return "--seq-len" if requested else "95th percentile of the training texts"


def prepare(config, family=None) -> Prepared:
    """Reads and splits the data (I/O; every data error before any directory exists) and measures
    lengths in the family's unit. `config` must be resolved. Large data (stream.wanted) is scanned once
    and streamed; smaller data is read whole and split exactly."""
    faults.reached("loading")
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
    if splits.summary.get("emptied_by_cleaning"):
        progress.say(f"--clean {','.join(config.data.clean)}: " + splits_lib.emptied_line(splits.summary)
                     + " (eda.json: emptied_by_cleaning)")
    if family.tokenized:
        progress.say(f"tokenizing {sum(len(getattr(splits, name)) for name in ('train', 'val', 'test'))} texts"
                     + (" (the samples)" if corpus else "") + f" to measure their lengths in {family.length_unit}")
    lengths = {name: family.text_lengths(config.model, getattr(splits, name)["text"])
               for name in ("train", "val", "test")}
    seq_len, side, source = sequence_cap(lengths["train"], config, family)
    config = with_truncate(config, side)
    longer = float((lengths['train'] > seq_len).mean())
    model = config.model
    what = (f"chunked into windows ({model.chunk_train} train, {model.chunk_aggregate} of logits)"
            if model.long_text == "chunk" else f"cut to their {model.truncate}")
    progress.say(f"sequence length cap {seq_len} {family.length_unit} ({source}; {longer:.1%} of training texts "
                 "are longer" + (f", {what})" if longer else ")"))
    packed = family.packs(config.model, config.train, lengths["train"], seq_len)
    task = kinds.of_data(splits)
    prepared = Prepared(with_task_defaults(config, task), family, splits, stats, lengths, seq_len, corpus, task, packed)
    if packed:
        progress.say(f"packing the texts of each batch into rows of {max(model.pack_length, seq_len)} tokens")
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


def record(prepared: Prepared, run_dir: str) -> None:
    """What a run records before training: config.json (what ran) and the EDA (eda.json and its figures)."""
    config_lib.save(prepared.config, os.path.join(run_dir, "config.json"))
    eda.write(prepared.splits, prepared.seq_len, prepared.family.length_unit, prepared.lengths["train"], run_dir,
              extra={**{key: prepared.stats[key] for key in ("decode_replacements", "skipped_files")
                        if key in prepared.stats}, "lengths": prepared.length_summary()},
              kind=prepared.task.label_word, note=prepared.task.counts_note)
