"""From a raw table to train/validation/test splits, without TensorFlow.

    load(config.data) -> (table, stats)   (I/O: datasets.py + readers.py)
    split(table, config.data, seed)       (pure: validate, clean, sample, split, dedupe, labels)
"""
import dataclasses

import pandas as pd
from sklearn import model_selection

from tfclf.data import clean, datasets, readers

MIN_PER_CLASS = 3  # one example each for train, validation and test


@dataclasses.dataclass
class Splits:
    """Texts and integer labels per split, plus the label vocabulary and a summary."""
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    class_names: list
    summary: dict


def _columns(data_config) -> tuple:
    spec = datasets.DATASETS.get(data_config.data, {})
    text_columns = data_config.text_column or spec.get("text_column", ("text",))
    label_column = data_config.label_column or spec.get("label_column", "label")
    return text_columns, label_column


def load(data_config) -> tuple:
    """Reads the configured data; returns (table, stats)."""
    path = data_config.data
    if path in datasets.DATASETS:
        path = datasets.locate(path)
    table, stats = readers.read(path, *_columns(data_config))
    stats["source"] = path
    return table, stats


def _rows(frame: pd.DataFrame, limit: int = 5) -> str:
    rows = list(frame["row"].head(limit))
    more = f" and {len(frame) - limit} more" if len(frame) > limit else ""
    return ", ".join(str(row) for row in rows) + more


def validate(table: pd.DataFrame, source: str, drop_invalid: bool) -> tuple:
    """Checks labels and texts; returns (table, dropped_count). Raises ValueError for bad rows."""
    missing_label = table["label"].isna() | (table["label"].astype(str).str.strip() == "")
    empty_text = table["text"].isna() | (table["text"].astype(str).str.strip() == "")
    if not drop_invalid:
        if missing_label.any():
            raise ValueError(f"{source}: {missing_label.sum()} row(s) have no label ({_rows(table[missing_label])}); "
                             "fill them, remove them, or pass --drop-invalid")
        if empty_text.any():
            raise ValueError(f"{source}: {empty_text.sum()} row(s) have empty text ({_rows(table[empty_text])}); "
                             "fix them, remove them, or pass --drop-invalid")
    keep = ~(missing_label | empty_text)
    table = table[keep].reset_index(drop=True)
    table["label"] = table["label"].astype(str).str.strip()
    counts = table["label"].value_counts()
    if len(counts) < 2:
        only = f"only '{counts.index[0]}'" if len(counts) else "none"
        raise ValueError(f"{source}: needs at least 2 classes, found {only}; check --label-column")
    return table, int((~keep).sum())


def label_vocabulary(labels: pd.Series) -> list:
    """Sorted class names; numerically when every label is an integer ('2' before '10')."""
    unique = labels.unique().tolist()
    try:
        return sorted(unique, key=int)
    except ValueError:
        return sorted(unique)


def _stratified_split(frame: pd.DataFrame, fraction: float, seed: int, source: str, what: str) -> tuple:
    counts = frame["label"].value_counts()
    if (counts < MIN_PER_CLASS).any():
        small = counts[counts < MIN_PER_CLASS]
        label, count = small.index[0], int(small.iloc[0])
        raise ValueError(f"{source}: class '{label}' has {count} example(s) in {what}; a stratified split "
                         f"needs at least {MIN_PER_CLASS} per class; add examples or remove the class")
    try:
        first, second = model_selection.train_test_split(
            frame, test_size=fraction, random_state=seed, stratify=frame["label"])
    except ValueError as error:
        raise ValueError(f"{source}: cannot split {what} stratified with fraction {fraction} ({error}); "
                         "use more data or a larger fraction") from None
    return first, second


def _split(table: pd.DataFrame, data_config, seed: int, source: str) -> tuple:
    """Given splits when present, else stratified train/val/test (seed 001's two-stage recipe)."""
    if "split" in table.columns and (table["split"] == "test").any():
        test = table[table["split"] == "test"]
        train, val = _stratified_split(table[table["split"] == "train"], data_config.val_fraction,
                                       seed, source, "the train split")
        return train, val, test
    held_out = data_config.val_fraction + data_config.test_fraction
    train, rest = _stratified_split(table, held_out, seed, source, "the data")
    val, test = _stratified_split(rest, data_config.test_fraction / held_out, seed, source,
                                  "the held-out part")
    return train, val, test


def _remove_leaks(earlier: list, later: pd.DataFrame) -> tuple:
    """Drops rows of `later` whose exact text occurs in any earlier split."""
    seen = set().union(*(set(frame["text"]) for frame in earlier))
    leaked = later["text"].isin(seen)
    return later[~leaked], int(leaked.sum())


def split(table: pd.DataFrame, data_config, seed: int, source: str = "data") -> Splits:
    """Validates, cleans, samples, splits, removes cross-split duplicates, encodes labels."""
    table, dropped = validate(table, source, data_config.drop_invalid)
    if data_config.clean:
        table["text"] = [clean.apply(text, data_config.clean) for text in table["text"]]
    if data_config.max_examples and data_config.max_examples < len(table):
        table, _ = model_selection.train_test_split(
            table, train_size=data_config.max_examples, random_state=seed, stratify=table["label"])
    class_names = label_vocabulary(table["label"])
    train, val, test = _split(table, data_config, seed, source)
    val, val_leaks = _remove_leaks([train], val)
    test, test_leaks = _remove_leaks([train, val], test)
    index = {name: i for i, name in enumerate(class_names)}
    frames = {}
    for name, frame in (("train", train), ("val", val), ("test", test)):
        frame = frame[["text", "label"]].reset_index(drop=True)
        frame["label_id"] = frame["label"].map(index).astype("int32")
        frames[name] = frame
    summary = {
        "num_rows_read": int(len(table) + dropped),
        "dropped_invalid_rows": dropped,
        "duplicates_removed": {"val": val_leaks, "test": test_leaks},
        "class_counts": {name: {label: int(frame["label"].eq(label).sum()) for label in class_names}
                         for name, frame in frames.items()},
    }
    return Splits(frames["train"], frames["val"], frames["test"], class_names, summary)
