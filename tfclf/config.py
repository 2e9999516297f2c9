"""One frozen config tree: built once from a file and/or CLI flags, validated, saved.

Every field of the four sections is a CLI flag (`--batch-size` for `batch_size`)
and a key of a config file (flat, `batch_size: 32`, or nested by section). Flags
override the file, the file overrides the defaults below.

    >>> config = from_flat({"data": "sms_spam", "epochs": 1})
    >>> config.train.epochs
    1
"""
import dataclasses
import difflib
import glob
import hashlib
import json
import math
import os
from typing import Any

import yaml

from tfclf import files, choices
from tfclf.data import clean, datasets, multilabel as label_sets, sources


def _field(default, help_text, **extra):
    return dataclasses.field(default=default, metadata={"help": help_text, **extra})


@dataclasses.dataclass(frozen=True)
class DataConfig:
    data: str = _field("sms_spam", "dataset name from the DATASETS table, or a CSV/TSV/JSONL file or class-per-folder directory")
    text_column: tuple = _field((), "text column(s), comma-separated; several are joined with a space (default: the dataset's, else 'text')")
    label_column: str = _field("", "label column (default: the dataset's, else 'label')")
    label_separator: str = _field("", "multi-label: the label column holds several labels joined by this "
                                      "separator (e.g. '|'); JSONL label lists are multi-label without it")
    label_columns: tuple = _field((), "multi-label: several 0/1 columns, one per label, comma-separated "
                                      "(instead of --label-column)")
    val_fraction: float = _field(0.15, "validation share of the data (of the train split when the data has given splits)")
    test_fraction: float = _field(0.15, "test share when the data has no given test split (default split: 70/15/15)")
    clean: tuple = _field((), "cleaning steps in order, comma-separated")
    drop_invalid: bool = _field(False, "drop rows with missing labels or empty texts instead of failing")
    max_examples: int = _field(0, "use a stratified sample of at most this many rows before splitting (0: all)")
    seq_len: int = _field(0, "sequence length in model tokens (0: 95th percentile of training lengths, at most the "
                             "encoder's maximum; 256 when most texts are longer than that, see --truncate)")
    stream: str = _field("auto", "read the data as a stream in bounded memory with the hash split (`tfclf list "
                                 "streams`; auto: data over 64 MB on disk)")
    max_eval_examples: int = _field(0, "streamed data: score at most this many validation and test texts, the "
                                       "first of each split in file order (0: all)")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    encoder: str = _field("minilm_l6", "encoder name from tfclf/choices.py (`--list encoders`), or kerashub:<KerasHub "
                                       "preset, preset directory or HF checkpoint directory>; bow is the "
                                       "seconds-fast baseline")
    vocab_size: int = _field(20000, "vocabulary size for models with their own TextVectorization")
    embedding_dim: int = _field(64, "embedding width for models with their own embeddings")
    dropout: float = _field(0.1, "dropout rate before the classifier")
    rnn_units: int = _field(64, "units of the first recurrent layer (pyramid levels double it: 64, 128, 256, 512)")
    rnn_layers: int = _field(1, "recurrent layers (pyramid levels)")
    glove: str = _field("", "GloVe text file to initialise the embeddings of recurrent models (any dimension)")
    freeze_embeddings: bool = _field(False, "keep GloVe embeddings fixed")
    encoder_handle: str = _field("", "TF Hub encoder URL or local SavedModel directory (default: the table's)")
    preprocess_handle: str = _field("", "matching TF Hub preprocessing URL or directory (default: the table's)")
    encoder_build: str = _field("auto", "how a transformer encoder becomes a Keras layer (`tfclf list "
                                "encoder-builds`)")
    pooling: str = _field("pooled", "transformer features: pooled_output, [CLS] of sequence_output, or masked mean")
    head: str = _field("dense", "dropout + dense, or mlp (dropout, dense ReLU of --head-units, dropout, dense)")
    head_units: int = _field(512, "hidden units of the mlp head")
    freeze_encoder: bool = _field(False, "train only the head; the encoder's weights stay fixed")
    truncate: str = _field("auto", "which part of a text longer than --seq-len the model sees (transformer and "
                                   "recurrent families; `tfclf list truncations`); auto: head, or head+tail at "
                                   "--seq-len 256 when most texts are longer than the encoder's maximum")
    long_text: str = _field("truncate", "'chunk' scores every window of --seq-len of a longer text and "
                                        "aggregates their logits (transformer and recurrent families)")
    chunk_stride: int = _field(0, "with --long-text chunk: units (tokens or words) between the starts of "
                                  "consecutive windows (0: three quarters of the window, a quarter overlap)")
    chunk_aggregate: str = _field("mean", "with --long-text chunk: how a text's window logits become its "
                                          "logits (`tfclf list chunk-aggregates`)")
    chunk_train: str = _field("all", "with --long-text chunk: what training sees (`tfclf list chunk-trainings`)")
    pack: str = _field("auto", "pack several short texts into each row of --pack-length tokens in training and "
                               "scoring (`tfclf list packings`); the export stays one text per row")
    pack_length: int = _field(128, "tokens per packed row (at least the sequence cap)")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    opt: str = _field("adamw", "optimizer")
    lr: float = _field(0.0, "peak learning rate (0: the encoder's default)")
    encoder_lr: float = _field(0.0, "transformer encoder's own peak learning rate (0: --lr), e.g. 1e-5")
    head_lr: float = _field(0.0, "head's own peak learning rate when --encoder-lr is set (0: --lr), e.g. 1e-2")
    batch_size: int = _field(32, "global batch size")
    epochs: int = _field(0, "epochs, exactly (0: adaptive: train until --monitor stops improving for --patience "
                            "validations, after --min-steps and within --max-steps)")
    weight_decay: float = _field(0.01, "decoupled weight decay of --opt adamw (refused with the other optimizers, "
                                       "which do not apply it)")
    momentum: float = _field(0.9, "momentum for sgd")
    clip_norm: float = _field(1.0, "clip gradients to this global norm (0: off)")
    warmup_ratio: float = _field(0.1, "share of steps with linear warm-up")
    schedule: str = _field("linear", "learning-rate decay after warm-up")
    loss: str = _field("crossentropy", "loss function")
    label_smoothing: float = _field(0.0, "label smoothing for cross-entropy")
    focal_gamma: float = _field(2.0, "focal loss focusing parameter (gamma)")
    focal_alpha: float = _field(0.25, "focal loss weighting factor (alpha)")
    class_weight: str = _field("none", "'balanced' weights each class by n / (k * n_class)")
    seed: int = _field(42, "seed for splits, shuffling and initialisation")
    shuffle_buffer: int = _field(10000, "streamed data: examples in the shuffle buffer (memory grows with it)")
    max_steps: int = _field(0, "stop training after this many steps, also within an epoch (0: with --epochs, "
                               "none; adaptive: 4 epochs, at least --min-steps, at most 2000)")
    min_steps: int = _field(100, "adaptive training (--epochs 0): optimizer steps before it may stop, so small data "
                                 "gets enough of them")
    patience: int = _field(2, "adaptive training (--epochs 0): validations in a row without --monitor improvement "
                              "that stop it")
    eval_every: int = _field(0, "adaptive training (--epochs 0): optimizer steps between validations (0: one "
                                "epoch, or fewer: twice the validation texts, at least 20 steps)")
    backup_every: int = _field(0, "also back up the training state every N steps, so that a killed run resumes "
                                  "there instead of at the epoch's start (0: at each epoch's end only)")
    strategy: str = _field("auto", "tf.distribute strategy")
    mixed_precision: bool = _field(False, "mixed_float16 on GPUs, mixed_bfloat16 on CPUs with bf16 support; "
                                          "logits and loss stay float32")
    xla: bool = _field(False, "compile the train step with XLA (jit_compile); transformer encoders only, "
                              "since string ops cannot be compiled")
    deterministic: bool = _field(False, "enable TensorFlow op determinism (bit-identical reruns on CPU, slower)")
    monitor: str = _field("auto", "validation metric that picks the best checkpoint and drives early stopping; auto: "
                                  "val_macro_f1 for single-label data, val_micro_f1 for multi-label data (config.json "
                                  "records the one used)")
    restore_best: bool = _field(True, "evaluate and export the best checkpoint by --monitor, not the last epoch")
    early_stopping: int = _field(0, "stop after this many epochs without --monitor improvement (0: off)")
    teacher: str = _field("", "distil from this tfclf run directory or exported model")
    distill_alpha: float = _field(0.5, "weight of the teacher's soft targets; 1 - alpha weighs the hard labels")
    distill_temperature: float = _field(2.0, "softmax temperature of distillation's soft targets (not "
                                             "--calibration temperature, which is fitted after training)")


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    export_dir: str = _field("saved_models", "root of exported models: <export-dir>/<export-name>/<version>/")
    export_name: str = _field("", "model name under --export-dir (default: the run directory's name)")
    skip_export: bool = _field(False, "do not export a SavedModel")


@dataclasses.dataclass(frozen=True)
class DecisionConfig:
    """How the trained model's logits become the probabilities and classes the run reports and the export
    serves: calibrated on the validation split, then argmax or a binary threshold chosen there."""
    calibration: str = _field("temperature", "fit a softmax temperature on the validation split (never test); "
                                             "the export divides its logits by it")
    threshold: str = _field("argmax", "binary tasks: 'auto' picks the positive class's threshold on validation "
                                      "(best F1, or --target-precision / --target-recall), a number in (0, 1) "
                                      "fixes it; argmax for any number of classes")
    positive_class: str = _field("", "the class a threshold is for (default: the training split's minority "
                                     "class)")
    target_precision: float = _field(0.0, "with --threshold auto: the most recall at this validation precision "
                                          "(default 0: the best F1)")
    target_recall: float = _field(0.0, "with --threshold auto: the most precision at this validation recall "
                                       "(default 0: the best F1)")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    export: ExportConfig = ExportConfig()
    decision: DecisionConfig = DecisionConfig()
    out: str = ""  # run directory; "" -> runs/<data>-<encoder>-<config digest>

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def digest(self) -> str:
        """Short hash of everything but `out`: equal configs train equal models."""
        return digest_of(self.to_dict())


# Fields added after runs were recorded: left out of the digest while at their default, so the digest (and
# the default run directory, which a killed run is resumed from) of every earlier config stays the same.
LATER_FIELDS = {"data": {"label_separator": "", "label_columns": (), "stream": "auto", "max_eval_examples": 0},
                "train": {"shuffle_buffer": 10000, "max_steps": 0, "backup_every": 0, "min_steps": 100, "patience": 2,
                          "eval_every": 0},
                "model": {"truncate": "head", "long_text": "truncate", "chunk_stride": 0, "chunk_aggregate": "mean",
                          "chunk_train": "all"}}


def _at_default(value, default) -> bool:
    return value == default or (isinstance(default, tuple) and value == list(default))


# Fields renamed since runs were recorded: new name -> old name. A saved config.json with the old key still
# loads (`load`), and the digest hashes the old name, so a renamed field changes no run directory.
RENAMED = {"train": {"distill_temperature": "temperature"}}
OLD_NAMES = {old: new for renames in RENAMED.values() for new, old in renames.items()}


def digest_of(values: dict) -> str:
    """RunConfig.digest of a config as saved in config.json (read without validating it)."""
    body = {key: value for key, value in values.items() if key != "out"}
    for section, renames in RENAMED.items():
        if isinstance(body.get(section), dict):
            body[section] = {renames.get(key, key): value for key, value in body[section].items()}
    for section, defaults in LATER_FIELDS.items():
        if isinstance(body.get(section), dict):
            body[section] = {key: value for key, value in body[section].items()
                             if not (key in defaults and _at_default(value, defaults[key]))}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:12]


SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "export": ExportConfig,
            "decision": DecisionConfig}
# Field name -> section name; field names are unique across sections.
FIELD_SECTION = {f.name: section for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)}
FIELD_SECTION["out"] = None
FIELDS = {f.name: f for cls in SECTIONS.values() for f in dataclasses.fields(cls)}

# Choices come from choices.py; "data" also accepts a path, so it is checked separately.
CHOICES = {
    "encoder": choices.ENCODERS,
    "opt": choices.OPTIMIZERS,
    "schedule": choices.SCHEDULES,
    "loss": choices.LOSSES,
    "class_weight": choices.CLASS_WEIGHTS,
    "pooling": choices.POOLINGS,
    "encoder_build": choices.ENCODER_BUILDS,
    "strategy": choices.STRATEGIES,
    "head": choices.HEADS,
    "monitor": choices.MONITORS,
    "calibration": choices.CALIBRATIONS,
    "truncate": choices.TRUNCATIONS,
    "long_text": choices.LONG_TEXTS,
    "chunk_aggregate": choices.CHUNK_AGGREGATES,
    "chunk_train": choices.CHUNK_TRAININGS,
    "stream": choices.STREAMS,
    "pack": choices.PACKINGS,
}


COLUMN_FIELDS = ("text_column", "label_columns")  # comma-separated column names
SEED_RANGE = (0, 2 ** 32 - 1)  # what NumPy's and scikit-learn's seeds accept


def _coerce(name: str, value: Any) -> Any:
    """Turns a flag string or a YAML value into the field's type."""
    kind = FIELDS[name].type if name in FIELDS else str
    if name in COLUMN_FIELDS and isinstance(value, str) and not all(part.strip() for part in value.split(",")):
        raise ValueError(f"--{name.replace('_', '-')} {value!r}: an empty column name; give the column names "
                         "comma-separated, each once (e.g. title,body)" + (", or drop the flag" if not value.strip()
                                                                            else ""))
    try:
        if kind is tuple:
            if isinstance(value, str):
                return tuple(part.strip() for part in value.split(",") if part.strip())
            return tuple(str(part) for part in value)
        if kind is bool:
            if isinstance(value, str):
                if value.lower() not in ("1", "0", "true", "false", "yes", "no"):
                    raise ValueError(value)
                return value.lower() in ("1", "true", "yes")
            return bool(value)
        if kind in (int, float) and isinstance(value, bool):  # YAML `epochs: true` is not a number
            raise ValueError(value)
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        if kind is float and not math.isfinite(float(value)):
            raise ValueError(value)
        return kind(value)
    except (TypeError, ValueError, OverflowError):
        what = "a finite number" if kind is float else f"a {kind.__name__}"
        raise ValueError(f"--{name.replace('_', '-')} {value!r}: cannot read it as {kind.__name__}; "
                         f"give {what}") from None


def _flatten(raw: dict, source: str) -> dict:
    """Accepts flat keys or sections ({train: {lr: ..}}); returns flat keys."""
    flat = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            raise ValueError(f"{source}: config key {key!r} is not a name; keys are flag names with underscores "
                             "(e.g. batch_size: 32)")
        key = key.replace("-", "_")
        if key in SECTIONS and isinstance(value, dict):
            flat.update(_flatten(value, source))
        elif key in SECTIONS and key not in FIELD_SECTION:  # `data` is a section and a field (the dataset)
            names = [field.name for field in dataclasses.fields(SECTIONS[key])]
            raise ValueError(f"{source}: section '{key}' holds {value!r}, but a section must be a mapping of its "
                             f"keys ({', '.join(names)}); write e.g. {key}: {{{names[0]}: ...}}")
        elif key in FIELD_SECTION:
            flat[key] = value
        elif key in OLD_NAMES:
            raise ValueError(f"{source}: config key '{key}' was renamed to '{OLD_NAMES[key]}' (--"
                             f"{OLD_NAMES[key].replace('_', '-')}); rename it")
        else:
            raise ValueError(f"{source}: unknown config key '{key}'; valid keys: "
                             f"{', '.join(sorted(FIELD_SECTION))}")
    return flat


def from_flat(values: dict, source: str = "config") -> RunConfig:
    """Builds and validates a RunConfig from flat keys; unknown keys are errors."""
    flat = _flatten(values, source)
    sections = {name: {} for name in SECTIONS}
    for key, value in flat.items():
        if FIELD_SECTION[key] is not None:
            sections[FIELD_SECTION[key]][key] = _coerce(key, value)
    config = RunConfig(**{name: SECTIONS[name](**kw) for name, kw in sections.items()},
                       out=str(flat.get("out", "") or ""))
    validate(config)
    return config


class _DuplicateKey(Exception):
    def __init__(self, key, line: int, first: int):
        super().__init__(key)
        self.key, self.line, self.first = key, line, first


class _StrictLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping, at any depth (YAML's rule keeps the
    last one silently: a grid axis written twice would lose its first values)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise _DuplicateKey(key, line, seen[key])
                seen[key] = line
            except TypeError:  # an unhashable key: PyYAML's own error follows
                continue
        return super().construct_mapping(node, deep)


def load_yaml(path: str, where: str):
    r"""A YAML (or JSON, its subset) file's content; `where` starts every error line (e.g. "--config x.yaml").

        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        ...     _ = handle.write("grid:\n  lr: [0.1]\n  lr: [0.2]\n")
        >>> load_yaml(handle.name, "spec")
        Traceback (most recent call last):
        ValueError: spec line 3: key 'lr' is given twice (first on line 2); YAML would keep only the last silently: remove one or merge their values
    """
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.load(handle, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader)
    except UnicodeDecodeError as error:
        raise ValueError(f"{where}: not UTF-8 text (byte {error.start}); save it as UTF-8") from None
    except _DuplicateKey as error:
        raise ValueError(f"{where} line {error.line}: key {error.key!r} is given twice (first on line "
                         f"{error.first}); YAML would keep only the last silently: remove one or merge their "
                         "values") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise ValueError(f"{where}{line}: not valid YAML/JSON; fix the syntax") from None


def read_file(path: str) -> dict:
    """Reads a YAML or JSON config file into a dict."""
    if not os.path.isfile(path):
        raise ValueError(f"--config {path}: no such file; give a YAML or JSON config file")
    raw = load_yaml(path, f"--config {path}")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError(f"--config {path}: expected a mapping of keys to values")
    return _flatten(raw, path)


def save(config: RunConfig, path: str) -> None:
    """config.json, replaced atomically (a full disk never leaves half of one)."""
    with files.atomic_write(path) as handle:
        json.dump(config.to_dict(), handle, indent=2, sort_keys=True)


def load(path: str) -> RunConfig:
    """Loads a config.json written by `save` (also by an earlier version: renamed keys are read as renamed)."""
    with open(path, encoding="utf-8") as handle:
        return from_flat(renamed(json.load(handle)), source=path)


def renamed(values: dict) -> dict:
    """A saved config dict with the fields renamed since (RENAMED) under their new names.

        >>> renamed({"train": {"temperature": 4.0}})
        {'train': {'distill_temperature': 4.0}}
    """
    values = dict(values)
    for section, renames in RENAMED.items():
        if isinstance(values.get(section), dict):
            old_to_new = {old: new for new, old in renames.items()}
            values[section] = {old_to_new.get(key, key): value for key, value in values[section].items()}
    return values


def weight_decay_refusal(value, opt: str) -> str:
    """The one-line refusal of a weight decay for an optimizer that does not apply it."""
    return (f"--weight-decay {value}: only --opt adamw applies a weight decay, and --opt {opt} would ignore it; "
            "use --opt adamw, or drop --weight-decay")


def validate(config: RunConfig) -> None:
    """Raises ValueError naming the flag, the value and the valid choices."""
    for name, table in CHOICES.items():
        value = getattr(getattr(config, FIELD_SECTION[name]), name)
        if name == "encoder" and choices.is_encoder(value):  # also kerashub:<any preset>, not in the table
            continue
        if value not in table:
            close = difflib.get_close_matches(str(value), list(table), n=3, cutoff=0.5)
            hint = f"did you mean {' or '.join(close)}? " if close else ""
            listing = f"`tfclf list {name}s` shows all {len(table)}" if len(table) > 12 else \
                f"choose one of: {', '.join(table)}"
            also = " (or kerashub:<KerasHub preset or directory>)" if name == "encoder" else ""
            raise ValueError(f"--{name.replace('_', '-')} {value!r} is unknown; {hint}{listing}{also}")
    for step in config.data.clean:
        if step not in clean.STEPS:
            raise ValueError(f"--clean {step!r} is unknown; choose from: {', '.join(clean.STEPS)}")
    python_only = [step for step in config.data.clean if step in clean.PYTHON_ONLY]
    if python_only and not config.export.skip_export:
        raise ValueError(f"--clean {python_only[0]} cannot run inside the exported SavedModel (a dictionary "
                         f"lemmatizer in Python); add --skip-export or drop {python_only[0]}")
    data = config.data
    if data.data not in datasets.DATASETS and not os.path.exists(data.data):
        if not glob.has_magic(data.data) and "," not in data.data:
            raise ValueError(f"--data {data.data!r} is neither a dataset name ({', '.join(datasets.DATASETS)}) "
                             "nor an existing file or directory; check the path")
        sources.expand(data.data)  # a glob or a list of shards: each part must name files
    for name, low, high in (("val_fraction", 0.0, 0.5), ("test_fraction", 0.0, 0.5),
                            ("dropout", 0.0, 0.95), ("label_smoothing", 0.0, 0.5),
                            ("warmup_ratio", 0.0, 0.9), ("distill_alpha", 0.0, 1.0)):
        value = getattr(getattr(config, FIELD_SECTION[name]), name)
        if not low <= value <= high:
            raise ValueError(f"--{name.replace('_', '-')} {value} is out of range; give a value in [{low}, {high}]")
    low, high = SEED_RANGE
    if not low <= config.train.seed <= high:
        raise ValueError(f"--seed {config.train.seed} is out of range; give a whole number in [{low}, {high}]")
    _validate_columns(config.data)
    _validate_multi_label(config)
    _validate_name("--export-name", config.export.export_name)
    if config.train.teacher and not os.path.exists(config.train.teacher):
        raise ValueError(f"--teacher {config.train.teacher}: no such run directory or exported model; check the path")
    if config.train.distill_temperature <= 0:
        raise ValueError(f"--distill-temperature {config.train.distill_temperature} must be > 0 (1: the teacher's own "
                         "probabilities)")
    if config.model.glove and not os.path.isfile(config.model.glove):
        raise ValueError(f"--glove {config.model.glove}: no such file; give a GloVe text file")
    for name in ("batch_size", "vocab_size", "embedding_dim", "head_units", "rnn_units", "rnn_layers", "pack_length"):
        if getattr(getattr(config, FIELD_SECTION[name]), name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be a positive integer")
    if config.train.patience < 1:
        raise ValueError(f"--patience {config.train.patience} must be a positive integer (validations without "
                         "improvement before adaptive training stops)")
    if config.train.early_stopping and not config.train.epochs:
        raise ValueError("--early-stopping applies to --epochs N; adaptive training (--epochs 0) stops by --patience "
                         "validations: give --epochs, or use --patience")
    if config.train.shuffle_buffer < 1:
        raise ValueError(f"--shuffle-buffer {config.train.shuffle_buffer} must be a positive integer")
    for name in ("epochs", "seq_len", "max_examples", "early_stopping", "max_eval_examples", "max_steps",
                 "backup_every", "min_steps", "eval_every"):
        if getattr(getattr(config, FIELD_SECTION[name]), name) < 0:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 0 (0 picks the default)")
    tokenized = choices.family_of(config.model.encoder)["tokenized"]
    if config.train.encoder_lr and not tokenized:
        raise ValueError(f"--encoder-lr applies to transformer encoders, not --encoder {config.model.encoder}")
    if config.train.xla and not tokenized:
        raise ValueError(f"--xla needs a transformer encoder: --encoder {config.model.encoder} has string "
                         "ops (TextVectorization) inside the model, which XLA cannot compile")
    if config.train.deterministic and not choices.family_of(config.model.encoder).get("deterministic", not tokenized):
        raise ValueError(f"--deterministic cannot run --encoder {config.model.encoder}: TF Hub encoders carry "
                         "unseeded dropout ops, which TF op determinism refuses; drop --deterministic")
    if config.train.encoder_lr and config.model.freeze_encoder:
        raise ValueError("--encoder-lr and --freeze-encoder contradict each other; give one of them")
    for name in ("lr", "encoder_lr", "head_lr", "weight_decay", "clip_norm", "momentum"):
        if getattr(config.train, name) < 0:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 0")
    # Only adamw decays weights. Another optimizer with a weight decay other than the default (which every
    # saved config.json carries) is refused rather than ignored; run.py also refuses the flag given explicitly.
    if config.train.opt != "adamw" and config.train.weight_decay not in (0.0, TrainConfig.weight_decay):
        raise ValueError(weight_decay_refusal(config.train.weight_decay, config.train.opt))
    _validate_long_text(config.model)
    _validate_decision(config.decision)


def _validate_columns(data: DataConfig) -> None:
    """Column flags name each column once, and the text apart from the label (else the model reads the answer)."""
    spec = datasets.DATASETS.get(data.data, {})
    texts = data.text_column or tuple(spec.get("text_column", ("text",)))
    label = data.label_column or spec.get("label_column", "label")
    for flag, names in (("--text-column", texts), ("--label-columns", data.label_columns)):
        twice = [name for index, name in enumerate(names) if name in names[:index]]
        if twice:
            raise ValueError(f"{flag} {','.join(names)}: names '{twice[0]}' twice; name each column once")
    labels = data.label_columns or (label,)
    shared = [name for name in texts if name in labels]
    if shared:
        flag = "--label-columns" if data.label_columns else "--label-column"
        raise ValueError(f"--text-column {','.join(texts)}: '{shared[0]}' is also the label column ({flag}), so "
                         "the model would read its answer; give the text column(s) and the label column(s) apart")
    joined = [name for name in data.label_columns if label_sets.DISPLAY_SEPARATOR in name]
    if joined:
        raise ValueError(f"--label-columns {','.join(data.label_columns)}: label '{joined[0]}' contains "
                         f"'{label_sets.DISPLAY_SEPARATOR}', which joins a predicted label set, so sets would be ambiguous; "
                         "rename that column")


def _validate_name(flag: str, name: str) -> None:
    """A name that becomes one directory under its parent: not a path, so it cannot leave the parent."""
    if name and (name.strip() in (".", "..") or "/" in name or "\\" in name or "\0" in name or os.path.isabs(name)):
        raise ValueError(f"{flag} {name!r}: a name, not a path (no '/', '\\', '..' or absolute path), so the "
                         f"output stays inside its parent directory; give a plain name such as spam")


def _validate_long_text(model: ModelConfig) -> None:
    chunked = model.long_text == "chunk"
    if (chunked or model.truncate not in ("head", "auto")) and not choices.family_of(model.encoder).get("long_text"):
        flag = "--long-text chunk" if chunked else f"--truncate {model.truncate}"
        raise ValueError(f"{flag} applies to the transformer (TF Hub) and recurrent families, not --encoder "
                         f"{model.encoder}; drop {flag} or choose such an encoder")
    if model.chunk_stride < 0:
        raise ValueError(f"--chunk-stride {model.chunk_stride} must be >= 0 (0: three quarters of the window)")
    if not chunked:
        given = [f"--{name.replace('_', '-')}" for name, default in (("chunk_stride", 0), ("chunk_aggregate", "mean"),
                                                                     ("chunk_train", "all"))
                 if getattr(model, name) != default]
        if given:
            raise ValueError(f"{given[0]} has no effect without --long-text chunk; add --long-text chunk or drop "
                             f"{given[0]}")
    elif model.truncate not in ("head", "auto"):
        raise ValueError(f"--truncate {model.truncate} and --long-text chunk exclude each other (chunking keeps "
                         "every part of a text); give one of them")


def multi_label_flags(data: DataConfig) -> bool:
    """Whether the flags make the task multi-label (JSONL label lists do too, found when reading)."""
    return bool(data.label_separator or data.label_columns)


def _validate_multi_label(config: RunConfig) -> None:
    data = config.data
    if data.label_separator and data.label_columns:
        raise ValueError("--label-separator and --label-columns exclude each other: give the separator of one "
                         "label column, or the 0/1 columns")
    if data.label_columns and data.label_column:
        raise ValueError("--label-columns and --label-column exclude each other: give the 0/1 columns or the "
                         "one label column")
    if multi_label_flags(data) and os.path.isdir(data.data):
        raise ValueError(f"--data {data.data} is a directory of class folders, which are single-label; drop "
                         "--label-separator / --label-columns, or give a CSV/TSV/JSONL file")


def threshold_value(decision: DecisionConfig):
    """The fixed threshold of `--threshold <number>`, or None for argmax and auto."""
    return None if decision.threshold in choices.THRESHOLDS else float(decision.threshold)


def _validate_decision(decision: DecisionConfig) -> None:
    if decision.threshold not in choices.THRESHOLDS:
        try:
            value = float(decision.threshold)
        except ValueError:
            value = float("nan")
        if not 0.0 < value < 1.0:
            raise ValueError(f"--threshold {decision.threshold!r}: give {' or '.join(choices.THRESHOLDS)} or a "
                             "probability between 0 and 1 (exclusive)")
    for name in ("target_precision", "target_recall"):
        if not 0.0 <= getattr(decision, name) <= 1.0:
            raise ValueError(f"--{name.replace('_', '-')} {getattr(decision, name)} is out of range; give a "
                             "value in (0, 1], or 0 for the best F1")
    if decision.target_precision and decision.target_recall:
        raise ValueError("--target-precision and --target-recall exclude each other; give one of them")
    if (decision.target_precision or decision.target_recall) and decision.threshold != "auto":
        raise ValueError("--target-precision / --target-recall choose a threshold: add --threshold auto")
