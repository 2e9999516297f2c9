"""From a raw table to train/validation/test splits, without TensorFlow.

    load(config.data) -> (table, stats)   (I/O: datasets.py + readers.py)
    split(table, config.data, seed, clean_texts=...)   (pure: validate, clean, sample, split, dedupe, labels)

Cleaning is passed in: stages/preparing.prepare gives `models.cleaning.clean_texts`, the TensorFlow
cleaning that the export runs too, so this module needs no TensorFlow.
"""
import dataclasses
import os

import numpy as np
import pandas as pd
from sklearn import model_selection

from tfclf.data import datasets, multilabel, readers, sources

MIN_PER_CLASS = 3  # one example each for train, validation and test


@dataclasses.dataclass
class Splits:
    """Texts and integer labels per split, plus the label vocabulary and a summary. Multi-label splits
    (`multi_label`) carry each text's label set in column `labels` instead of `label_id`; `targets(name)` is
    the split's multi-hot matrix."""
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    class_names: list
    summary: dict
    multi_label: bool = False
    label_separator: str = ""      # multi-label: how the data joined labels ("" : JSONL lists or 0/1 columns)

    def targets(self, name: str) -> np.ndarray:
        """Multi-hot float32 [texts, labels] of split `name` (multi-label splits only)."""
        return multilabel.targets(getattr(self, name)["labels"], self.class_names)


def _columns(data_config) -> tuple:
    spec = datasets.DATASETS.get(data_config.data, {})
    text_columns = data_config.text_column or spec.get("text_column", ("text",))
    label_column = data_config.label_column or spec.get("label_column", "label")
    return text_columns, label_column


def locate(data_config) -> tuple:
    """(source, files): the configured data's path (a named dataset located, downloaded if needed) and the
    files it names (sources.expand: a glob or a comma-separated list names several)."""
    path = data_config.data
    if path in datasets.DATASETS:
        path = datasets.locate(path)
    return path, [path] if os.path.exists(path) else sources.expand(path)


def load(data_config, files: list = None) -> tuple:
    """Reads the configured data whole; returns (table, stats). Compressed, Parquet and sharded data is
    read through the streamed sources (single-label)."""
    path, located = locate(data_config)
    files = files or located
    if sources.is_single_plain(files):
        table, stats = readers.read(files[0], *_columns(data_config), data_config.label_separator,
                                    data_config.label_columns)
    else:
        if data_config.label_separator or data_config.label_columns:
            raise ValueError(f"{path}: multi-label data must be one uncompressed CSV/TSV/JSONL file; drop "
                             "--label-separator / --label-columns or give such a file")
        table, stats = sources.read_whole(files, *_columns(data_config))
    stats["source"] = path
    return table, stats


def _rows(frame: pd.DataFrame, limit: int = 5) -> str:
    rows = list(frame["row"].head(limit))
    more = f" and {len(frame) - limit} more" if len(frame) > limit else ""
    return ", ".join(str(row) for row in rows) + more


def validate(table: pd.DataFrame, source: str, drop_invalid: bool, min_classes: int = 2) -> tuple:
    """Checks labels and texts; returns (table, dropped_count). Raises ValueError for bad rows."""
    missing_label = table["label"].isna() | (table["label"].astype(str).str.strip() == "")
    table, dropped = _without_invalid_rows(table, missing_label, source, drop_invalid, "fill them")
    table["label"] = normalize_labels(table["label"].astype(str), source).str.strip()  # ' spam' / 'spam': refused
    counts = table["label"].value_counts()
    if len(counts) < min_classes:
        only = f"only '{counts.index[0]}'" if len(counts) else "none"
        raise ValueError(f"{source}: needs at least {min_classes} classes, found {only}; check --label-column")
    return table, dropped


def _without_invalid_rows(table: pd.DataFrame, missing_label, source: str, drop_invalid: bool,
                          fill_hint: str) -> tuple:
    """The rows with a label and a non-empty text, and how many were dropped; without `drop_invalid`, a
    ValueError naming the first bad rows instead (`fill_hint` says how to supply a missing label)."""
    empty_text = table["text"].isna() | (table["text"].astype(str).str.strip() == "")
    if not drop_invalid:
        if missing_label.any():
            raise ValueError(f"{source}: {missing_label.sum()} row(s) have no label ({_rows(table[missing_label])}); "
                             f"{fill_hint}, remove them, or pass --drop-invalid")
        if empty_text.any():
            raise ValueError(f"{source}: {empty_text.sum()} row(s) have empty text ({_rows(table[empty_text])}); "
                             "fix them, remove them, or pass --drop-invalid")
    keep = ~(missing_label | empty_text)
    return table[keep].reset_index(drop=True), int((~keep).sum())


def normalize_labels(labels: pd.Series, source: str) -> pd.Series:
    """Numeric labels written differently ('1', '1.0', '01', '2.50') are one class each: when every label is
    a finite number, each becomes its canonical form ('1', '2.5'). Labels that still differ only in case or
    inner spaces are refused, naming them: merging them silently could be as wrong as keeping them apart."""
    numbers = pd.to_numeric(labels, errors="coerce")
    if numbers.notna().all() and np.isfinite(numbers).all() and numbers.abs().max() < 2 ** 53:
        return pd.Series([str(int(value)) if float(value).is_integer() else repr(float(value)) for value in numbers],
                         index=labels.index)
    groups = {}
    for name in labels.unique():
        groups.setdefault(" ".join(str(name).lower().split()), []).append(name)
    alike = [sorted(names) for names in groups.values() if len(names) > 1]
    if alike:
        shown = "; ".join(" / ".join(repr(name) for name in names) for names in alike[:3])
        raise ValueError(f"{source}: labels that look alike would be separate classes ({shown}); "
                         "make each class's label identical in the file")
    return labels


def label_vocabulary(labels: pd.Series) -> list:
    """Sorted class names; numerically when every label is an integer ('2' before '10')."""
    unique = labels.unique().tolist()
    try:
        return sorted(unique, key=int)
    except ValueError:
        return sorted(unique)


def _split_positions(labels: np.ndarray, data_config, seed: int, given_test: bool) -> list:
    """Positions (into `labels`) of the parts of the stratified split: train, validation and, unless the data
    has its own test split, test (seed 001's two-stage recipe). ValueError if scikit-learn cannot split."""
    val, test = data_config.val_fraction, data_config.test_fraction
    positions = np.arange(len(labels))
    if given_test:
        return model_selection.train_test_split(positions, test_size=val, random_state=seed, stratify=labels)
    train, rest = model_selection.train_test_split(positions, test_size=val + test, random_state=seed,
                                                   stratify=labels)
    return [train, *model_selection.train_test_split(rest, test_size=test / (val + test), random_state=seed,
                                                     stratify=labels[rest])]


def _reaches_every_part(labels: np.ndarray, data_config, seed: int, given_test: bool):
    """The split's positions when every class has examples in every part, else None."""
    try:
        parts = _split_positions(labels, data_config, seed, given_test)
    except ValueError:
        return None
    classes = len(np.unique(labels))
    return parts if all(len(np.unique(labels[part])) == classes for part in parts) else None


def smallest_class(counts: pd.Series, data_config, seed: int, given_test: bool = False) -> int:
    """The fewest examples per class with which the stratified splits of these fractions put every class in
    every part, for data like this (classes smaller than that raised to it; found by splitting labels)."""
    for size in range(MIN_PER_CLASS, 1000):
        labels = np.concatenate([np.full(max(int(count), size), number) for number, count in enumerate(counts)])
        if _reaches_every_part(labels, data_config, seed, given_test) is not None:
            return size
    return 1000


def _too_small(pool: pd.DataFrame, data_config, seed: int, source: str, given_test: bool) -> ValueError:
    """The one line for classes too small to reach every part, with the real minimum for this data."""
    counts = pool["label"].value_counts()
    needed = smallest_class(counts, data_config, seed, given_test)
    small = counts[counts < needed]
    label, count = (small.index[0], int(small.iloc[0])) if len(small) else (counts.idxmin(), int(counts.min()))
    fractions = f"--val-fraction {data_config.val_fraction}" + \
        ("" if given_test else f" and --test-fraction {data_config.test_fraction}")
    return ValueError(f"{source}: class '{label}' has {count} example(s) in "
                      f"{'the train split' if given_test else 'the data'}; with {fractions} every class needs at "
                      f"least {needed} here to reach every split; add examples, remove the class or raise the "
                      "fractions")


def _split(table: pd.DataFrame, data_config, seed: int, source: str) -> tuple:
    """Given splits when present, else stratified train/val/test (seed 001's two-stage recipe); every class
    must reach every part."""
    given = "split" in table.columns and (table["split"] == "test").any()
    pool = table[table["split"] == "train"] if given else table
    if given:
        only_test = sorted(set(table[table["split"] == "test"]["label"]) - set(pool["label"]))
        if only_test:
            raise ValueError(f"{source}: class(es) {only_test[:5]} occur only in the test split, so the model "
                             "could never learn them; add training examples or remove them from test")
    parts = _reaches_every_part(pool["label"].to_numpy(), data_config, seed, given)
    if parts is None:
        raise _too_small(pool, data_config, seed, source, given)
    frames = [pool.iloc[part] for part in parts]
    return (*frames, table[table["split"] == "test"]) if given else tuple(frames)


def blank(texts) -> np.ndarray:
    """Which cleaned texts are empty (--clean emptied them); in memory and streamed alike."""
    return np.fromiter((str(text).strip() == "" for text in texts), dtype=bool, count=len(texts))


def leak_keys(texts, raw_texts, emptied: np.ndarray) -> np.ndarray:
    """What the split and the duplicate guard compare: the cleaned text, or the text as read for one that
    cleaning emptied (`emptied`, from `blank`: those all clean to "", and are not copies of each other).

        >>> leak_keys(["a b", " "], ["A b!", "http://x"], blank(["a b", " "])).tolist()
        ['a b', '\\x00http://x']
    """
    texts = np.asarray(texts, dtype=object)
    if not emptied.any():
        return texts
    return np.where(emptied, np.asarray(["\x00" + str(raw) for raw in raw_texts], dtype=object), texts)


def _leak_key(frame: pd.DataFrame) -> pd.Series:
    """leak_keys of a split's rows, on its index."""
    texts = frame["text"].to_numpy()
    return pd.Series(leak_keys(texts, frame["raw_text"].to_numpy(), blank(texts)), index=frame.index)


def _remove_leaks(earlier: list, later: pd.DataFrame) -> tuple:
    """Drops rows of `later` whose exact text (`_leak_key`) occurs in any earlier split."""
    seen = set().union(*(set(_leak_key(frame)) for frame in earlier))
    leaked = _leak_key(later).isin(seen)
    return later[~leaked], int(leaked.sum())


def _cleaned(table: pd.DataFrame, data_config, clean_texts) -> tuple:
    """(the table with the text as read in `raw_text` and `text` cleaned by data_config.clean; how many texts
    cleaning empties). Those stay in the table: `_emptied` drops them from training only, and validation and
    test score them as the export does (its cleaning layer passes the empty string to the model)."""
    table["raw_text"] = table["text"]
    if not data_config.clean:
        return table, 0
    if clean_texts is None:
        raise ValueError(f"--clean {','.join(data_config.clean)}: split() needs clean_texts "
                         "(models.cleaning.clean_texts, as stages/preparing.prepare passes it)")
    table["text"] = clean_texts(table["text"].tolist(), data_config.clean)
    return table.reset_index(drop=True), int(blank(table["text"]).sum())


def _emptied(train: pd.DataFrame, val: pd.DataFrame, test: pd.DataFrame) -> tuple:
    """(the training split without the texts that cleaning emptied, the split summary's counts: dropped from
    training, scored in validation and test)."""
    emptied = blank(train["text"])
    return train[~emptied], {"emptied_dropped_from_training": int(emptied.sum()),
                             "emptied_scored": {"val": int(blank(val["text"]).sum()),
                                                "test": int(blank(test["text"]).sum())}}


def emptied_line(summary: dict) -> str:
    """What happened to the texts that cleaning emptied, for the progress line and the summary.

        >>> emptied_line({"emptied_by_cleaning": 12, "emptied_dropped_from_training": 8,
        ...               "emptied_scored": {"val": 2, "test": 1}})
        '12 text(s) empty after cleaning: 8 left out of training, 2 validation and 1 test text(s) scored as the export scores them'
    """
    scored = summary.get("emptied_scored", {})
    return (f"{summary['emptied_by_cleaning']} text(s) empty after cleaning: "
            f"{summary.get('emptied_dropped_from_training', 0)} left out of training, {scored.get('val', 0)} "
            f"validation and {scored.get('test', 0)} test text(s) scored as the export scores them")


def split(table: pd.DataFrame, data_config, seed: int, source: str = "data", clean_texts=None) -> Splits:
    """Validates, cleans, samples, splits, removes cross-split duplicates, encodes labels. Each frame keeps
    the text as read in `raw_text` (what an exported model takes). `clean_texts(texts, steps) -> texts`
    runs data_config.clean (models.cleaning.clean_texts: the cleaning inside the export)."""
    if "labels" in table.columns:
        return _split_multi_label(table, data_config, seed, source, clean_texts)
    table, dropped = validate(table, source, data_config.drop_invalid)
    table, emptied = _cleaned(table, data_config, clean_texts)
    rows_read = len(table) + dropped
    if data_config.max_examples and data_config.max_examples < len(table):
        classes = table["label"].nunique()
        if data_config.max_examples < 2 * classes:
            raise ValueError(f"--max-examples {data_config.max_examples}: too few for a stratified sample of "
                             f"{classes} classes; give at least {classes * MIN_PER_CLASS} (more for real "
                             "results), or 0 for all rows")
        if len(table) - data_config.max_examples < classes:
            raise ValueError(f"--max-examples {data_config.max_examples}: leaves out {len(table) - data_config.max_examples}"
                             f" of {len(table)} rows, fewer than the {classes} classes a stratified sample needs; give"
                             f" at most {len(table) - classes}, or 0 for all rows")
        table, _ = model_selection.train_test_split(
            table, train_size=data_config.max_examples, random_state=seed, stratify=table["label"])
    class_names = label_vocabulary(table["label"])
    train, val, test = _split(table, data_config, seed, source)
    val, val_leaks = _remove_leaks([train], val)
    test, test_leaks = _remove_leaks([train, val], test)
    for name, frame, leaks in (("validation", val, val_leaks), ("test", test, test_leaks)):
        if frame.empty:
            raise ValueError(f"{source}: the {name} split is empty after removing {leaks} exact duplicate(s) of "
                             "training texts; the data has too few distinct texts: add different texts")
    train, emptied_counts = _emptied(train, val, test)
    index = {name: i for i, name in enumerate(class_names)}
    frames = {}
    for name, frame in (("train", train), ("val", val), ("test", test)):
        frame = frame[["text", "raw_text", "label", "row"]].reset_index(drop=True)
        frame["label_id"] = frame["label"].map(index).astype("int32")
        frames[name] = frame
    summary = {
        "num_rows_read": int(rows_read),
        "dropped_invalid_rows": dropped,
        "emptied_by_cleaning": emptied,
        **emptied_counts,
        "duplicates_removed": {"val": val_leaks, "test": test_leaks},
        "class_counts": {name: {label: int(frame["label"].eq(label).sum()) for label in class_names}
                         for name, frame in frames.items()},
        "split_rule": {"rule": "given" if "split" in table.columns else "stratified",
                       "what": "the data's test split kept; train divided stratified into train and validation"
                       if "split" in table.columns else "exact stratified split by the fractions (scikit-learn, "
                       "seeded); exact duplicates of earlier splits removed", "seed": seed,
                       "val_fraction": data_config.val_fraction, "test_fraction": data_config.test_fraction},
    }
    summary["class_share"] = {name: {label: count / max(len(frames[name]), 1) for label, count in counts.items()}
                              for name, counts in summary["class_counts"].items()}
    return Splits(frames["train"], frames["val"], frames["test"], class_names, summary)


# --- multi-label ---

def validate_multi_label(table: pd.DataFrame, source: str, drop_invalid: bool) -> tuple:
    """validate() for label sets: missing sets and empty texts refused (or dropped), label names checked
    alike; an empty set (a text with no label) is valid. Returns (table, dropped_count)."""
    table, dropped = _without_invalid_rows(table, table["labels"].isna(), source, drop_invalid,
                                           "fill them (an empty JSONL list [] or all-0 --label-columns mean no label)")
    names = pd.Series(sorted({label for labels in table["labels"] for label in labels}), dtype=object)
    normalize_labels(names, source) if len(names) else None  # refuses labels that differ only in case/spaces
    table["labels"] = table["labels"].map(lambda labels: tuple(sorted(set(labels))))
    return table, dropped


def _check_label_counts(targets: np.ndarray, names: list, source: str, where: str = "the data") -> None:
    counts = targets.sum(axis=0).astype(int)
    if len(names) < 1 or not counts.any():
        raise ValueError(f"{source}: no text carries a label; check --label-column / --label-columns")
    rare = int(np.argmin(counts))
    if counts[rare] < multilabel.MIN_PER_LABEL:
        raise ValueError(f"{source}: label '{names[rare]}' occurs in {counts[rare]} text(s) of {where}; every "
                         f"label needs at least {multilabel.MIN_PER_LABEL} to reach train, validation and test; "
                         "add texts with it or remove the label")


def _split_multi_label(table: pd.DataFrame, data_config, seed: int, source: str, clean_texts) -> Splits:
    """split() for label sets: iterative stratification (multilabel.iterative_split) instead of scikit-learn's
    stratified split, the same cleaning and leakage guard; every label must occur in training."""
    table, dropped = validate_multi_label(table, source, data_config.drop_invalid)
    table, emptied = _cleaned(table, data_config, clean_texts)
    rows_read = len(table) + dropped
    names = multilabel.vocabulary(table["labels"], data_config.label_columns)
    targets = multilabel.targets(table["labels"], names)
    _check_label_counts(targets, names, source)
    if data_config.max_examples and data_config.max_examples < len(table):
        share = data_config.max_examples / len(table)
        kept, _ = multilabel.iterative_split(targets, (share, 1 - share), seed)
        table, targets = table.iloc[kept].reset_index(drop=True), targets[kept]
        _check_label_counts(targets, names, source, f"the --max-examples {data_config.max_examples} sample")
    val, test = data_config.val_fraction, data_config.test_fraction
    parts = multilabel.iterative_split(targets, (1 - val - test, val, test), seed)
    train, val, test = (table.iloc[part] for part in parts)
    val, val_leaks = _remove_leaks([train], val)
    test, test_leaks = _remove_leaks([train, val], test)
    for name, frame, leaks in (("validation", val, val_leaks), ("test", test, test_leaks)):
        if frame.empty:
            raise ValueError(f"{source}: the {name} split is empty after removing {leaks} exact duplicate(s) of "
                             "training texts; the data has too few distinct texts: add different texts")
    train, emptied_counts = _emptied(train, val, test)
    frames = {name: frame[["text", "raw_text", "label", "labels"]].reset_index(drop=True)
              for name, frame in (("train", train), ("val", val), ("test", test))}
    never = [label for label in names if not any(label in labels for labels in frames["train"]["labels"])]
    if never:
        raise ValueError(f"{source}: label(s) {never[:5]} never occur in the training split (only in validation "
                         "or test), so the model could never learn them; add texts with them or remove them")
    summary = {
        "num_rows_read": int(rows_read),
        "dropped_invalid_rows": dropped,
        "emptied_by_cleaning": emptied,
        **emptied_counts,
        "duplicates_removed": {"val": val_leaks, "test": test_leaks},
        "class_counts": {name: {label: int(sum(label in labels for labels in frame["labels"])) for label in names}
                         for name, frame in frames.items()},
        "split_rule": {"rule": "iterative", "what": "iterative stratification of the label sets (seeded); exact "
                       "duplicates of earlier splits removed", "seed": seed,
                       "val_fraction": data_config.val_fraction, "test_fraction": data_config.test_fraction},
        "texts_without_labels": {name: int((frame["labels"].map(len) == 0).sum()) for name, frame in frames.items()},
        "label_cardinality": {name: float(frame["labels"].map(len).mean()) for name, frame in frames.items()},
    }
    return Splits(frames["train"], frames["val"], frames["test"], names, summary, multi_label=True,
                  label_separator=data_config.label_separator)
