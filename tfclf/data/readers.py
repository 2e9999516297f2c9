"""Readers: CSV / TSV / JSONL files and class-per-folder directories -> one table.

The table is a pandas DataFrame with columns `text`, `label` (strings) and,
when the data brings its own splits, `split` ("train" / "test"); column `row`
names each row for error messages (file line for JSONL, data row for CSV/TSV,
file path for folders). Bytes that are not UTF-8 are decoded with U+FFFD
replacement and counted (`stats["decode_replacements"]`), never fatal: one bad
byte in 5,000 messages should not stop a run, and the count is in eda.json.
"""
import csv
import io
import json
import os
import re

import pandas as pd

from tfclf.data import multilabel

FOLDER_SPLITS = ("train", "test")
IGNORED_FOLDERS = ("unsup",)
TEXT_SUFFIXES = (".txt",)  # class folders: only text files are read; others are counted as skipped


UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")  # a byte-order mark: the file is read as UTF-16


def _utf16_bom(raw: bytes) -> bool:
    return raw[:2] in UTF16_BOMS and raw[:4] != b"\xff\xfe\x00\x00"  # (that one is UTF-32)


def _looks_utf16(head: bytes) -> str:
    """"LE"/"BE" when `head` (no BOM) reads as UTF-16 of mostly ASCII text: zero bytes at every other place."""
    odd, even = head[1::2], head[0::2]
    if len(head) >= 4 and odd.count(0) > 0.8 * len(odd) and even.count(0) < 0.2 * len(even):
        return "LE"
    if len(head) >= 4 and even.count(0) > 0.8 * len(even) and odd.count(0) < 0.2 * len(odd):
        return "BE"
    return ""


def _require_text(path: str, raw: bytes) -> None:
    """Compressed or binary data (even when named .csv) is refused as such, not as a malformed row; UTF-16
    with a byte-order mark is text (read as such), without one it is named as UTF-16, with the conversion.

        >>> _require_text("a.csv", "text,label\\n".encode("utf-16-le"))
        Traceback (most recent call last):
        ValueError: a.csv: looks like UTF-16 (little-endian) text without a byte-order mark; convert it to UTF-8 (e.g. iconv -f UTF-16LE -t UTF-8 a.csv > a.utf8.csv) or save it as UTF-16 with a BOM
    """
    if _utf16_bom(raw):
        return
    compressed = raw[:2] == b"\x1f\x8b" or raw[:4] in (b"PK\x03\x04", b"BZh9")
    order = "" if compressed else _looks_utf16(raw[:8192])
    if order:
        stem, suffix = os.path.splitext(path)
        raise ValueError(f"{path}: looks like UTF-16 ({'little' if order == 'LE' else 'big'}-endian) text without a "
                         f"byte-order mark; convert it to UTF-8 (e.g. iconv -f UTF-16{order} -t UTF-8 {path} > "
                         f"{stem}.utf8{suffix}) or save it as UTF-16 with a BOM")
    if compressed or b"\x00" in raw[:8192]:
        raise ValueError(f"{path}: not a text file (compressed or binary data); give a UTF-8 CSV/TSV/JSONL "
                         "file (decompress a .gz or .zip first)")


def _decode(raw: bytes) -> tuple:
    """UTF-8 (BOM tolerated), or UTF-16 after its BOM, with replacement; returns (text, replaced_count)."""
    encoding = "utf-16" if _utf16_bom(raw) else "utf-8-sig"
    text = raw.decode(encoding, errors="replace")
    replaced = text.count("\ufffd") - raw.decode(encoding, errors="ignore").count("\ufffd")
    return text, replaced


def _join_columns(frame: pd.DataFrame, columns: tuple, path: str) -> pd.Series:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        available = ", ".join(str(column) for column in frame.columns)
        raise ValueError(f"{path}: column '{missing[0]}' not found; available columns: {available}; "
                         "choose with --text-column / --label-column")
    parts = [frame[column].fillna("").astype(str) for column in columns]
    joined = parts[0]
    for part in parts[1:]:
        joined = joined.str.cat(part, sep=" ")
    return joined.str.strip()


def _read_delimited(path: str, text: str, separator: str) -> pd.DataFrame:
    try:
        # Standard CSV quoting for TSV too (what pandas' to_csv(sep="\t") writes around tabs and quotes).
        return pd.read_csv(io.StringIO(text), sep=separator, dtype=str, keep_default_na=False,
                           na_values=[""], quoting=csv.QUOTE_MINIMAL)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: file is empty; give a file with a header row and data rows") from None
    except pd.errors.ParserError as error:
        match = re.search(r"line (\d+)", str(error))
        where = f" line {match.group(1)}" if match else ""
        detail = str(error).split("error: ")[-1].strip()
        raise ValueError(f"{path}{where}: malformed row ({detail}); fix the quoting or the number "
                         "of separators on that line") from None


def _json_value(value):
    """A JSON value as a string; null and NaN (Python's json reads NaN) are missing values; a list stays a
    list (a multi-label set; as text it reads as before, str(list))."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    return value if isinstance(value, list) else str(value)


def json_record(line: str, where: str):
    """One JSON line as a record of string values (json_value), None for a blank line; ValueError naming
    `where` (the file and line) for anything but a JSON object. The whole-file and streamed readers share it."""
    if not line.strip():
        return None
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"{where}: not valid JSON ({error.msg}); each line must be one JSON object") from None
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}")
    return {key: _json_value(value) for key, value in record.items()}


def _read_jsonl(path: str, text: str) -> pd.DataFrame:
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        record = json_record(line, f"{path} line {number}")
        if record is not None:
            records.append({**record, "__line__": number})
    return pd.DataFrame.from_records(records)


def read_file(path: str, text_columns: tuple, label_column: str, label_separator: str = "",
              label_columns: tuple = ()) -> tuple:
    """Reads a CSV/TSV/JSONL file; returns (table, stats). Multi-label (a separator, 0/1 columns or JSONL
    label lists) adds column `labels`: each row's label set, a tuple (None where missing); `label` then shows
    the set as one string."""
    with open(path, "rb") as handle:
        raw = handle.read()
    if not raw.strip():
        raise ValueError(f"{path}: file is empty; give a file with a header row and data rows")
    _require_text(path, raw)
    text, replaced = _decode(raw)
    lower = path.lower()
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        frame = _read_jsonl(path, text)
        rows = frame.pop("__line__").map(lambda n: f"line {n}") if len(frame) else pd.Series(dtype=str)
    else:
        separator = "\t" if lower.endswith((".tsv", ".tab")) else ","
        frame = _read_delimited(path, text, separator)
        rows = pd.Series([f"data row {i + 1}" for i in range(len(frame))], dtype=str)
    if frame.empty:
        raise ValueError(f"{path}: file has no data rows; add rows under the header")
    text = _join_columns(frame, text_columns, path).to_numpy()
    if label_columns or label_separator or (label_column in frame.columns and multilabel.has_lists(frame[label_column])):
        if not label_columns:
            _require_label(frame, label_column, path)
        sets = multilabel.read_sets(frame, label_column, label_separator, label_columns, path, rows)
        shown = [None if labels is None else multilabel.display(labels, label_separator) for labels in sets]
        table = pd.DataFrame({"text": text, "label": shown, "labels": sets, "row": rows.to_numpy()})
        return table, {"decode_replacements": replaced, "label_separator": label_separator}
    table = pd.DataFrame({
        "text": text,
        "label": frame[_require_label(frame, label_column, path)].to_numpy(),
        "row": rows.to_numpy(),
    })
    given = given_splits(frame, path, (*text_columns, label_column))
    if given is not None:
        table["split"] = given
    return table, {"decode_replacements": replaced}


def read_texts(path: str, text_columns: tuple) -> tuple:
    """(a file's rows as read, the texts to score: its text columns joined) for scoring; no labels needed."""
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such file; check --input")
    with open(path, "rb") as handle:
        raw = handle.read()
    _require_text(path, raw)
    text, _ = _decode(raw)
    if not text.strip():
        raise ValueError(f"{path}: file is empty; give a file with a header row and data rows")
    lower = path.lower()
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        frame = _read_jsonl(path, text).drop(columns="__line__", errors="ignore")
    else:
        frame = _read_delimited(path, text, "\t" if lower.endswith((".tsv", ".tab")) else ",")
    return frame, _join_columns(frame, text_columns, path).tolist()


def given_splits(frame: pd.DataFrame, path: str, used: tuple):
    """The data's own splits: a column `split` (not a text or label column) of `train` / `test` values, as a
    numpy array; None without one. Other values are refused, naming the row."""
    if "split" not in frame.columns or "split" in used:
        return None
    values = frame["split"].fillna("").astype(str).str.strip().str.lower()
    bad = values[~values.isin(FOLDER_SPLITS)]
    if len(bad):
        raise ValueError(f"{path}: column 'split' holds {bad.iloc[0]!r} (data row {bad.index[0] + 1}); give train or "
                         "test in every row, or rename the column")
    return values.to_numpy(dtype=object)


def _require_label(frame: pd.DataFrame, label_column: str, path: str) -> str:
    if label_column not in frame.columns:
        _join_columns(frame, (label_column,), path)  # raises the "available columns" error
    return label_column


def _class_folders(directory: str) -> list:
    return sorted(entry.name for entry in os.scandir(directory)
                  if entry.is_dir() and entry.name not in IGNORED_FOLDERS + FOLDER_SPLITS
                  and not entry.name.startswith("."))


def read_folders(root: str) -> tuple:
    """Reads root/<class>/*.txt or root/{train,test}/<class>/*.txt; returns (table, stats)."""
    has_splits = os.path.isdir(os.path.join(root, "train"))
    parts = [(split, os.path.join(root, split)) for split in FOLDER_SPLITS
             if os.path.isdir(os.path.join(root, split))] if has_splits else [(None, root)]
    records, replaced, skipped = [], 0, 0
    for split, directory in parts:
        for label in _class_folders(directory):
            class_dir = os.path.join(directory, label)
            for name in sorted(os.listdir(class_dir)):
                path = os.path.join(class_dir, name)
                if name.startswith(".") or not os.path.isfile(path):
                    continue
                if not name.lower().endswith(TEXT_SUFFIXES):
                    skipped += 1
                    continue
                with open(path, "rb") as handle:
                    content, bad = _decode(handle.read())
                replaced += bad
                records.append({"text": content.strip(), "label": label, "row": path, "split": split})
    if not records:
        raise ValueError(f"{root}: no class folders with .txt files found ({skipped} other file(s) skipped); "
                         f"expected {root}/<class>/*.txt or {root}/train/<class>/*.txt (+ optional test/)")
    if skipped:
        print(f"{root}: read {len(records)} .txt file(s), skipped {skipped} file(s) of other types")
    table = pd.DataFrame.from_records(records)
    if not has_splits:
        table = table.drop(columns="split")
    return table, {"decode_replacements": replaced, "skipped_files": skipped}


def read(path: str, text_columns: tuple, label_column: str, label_separator: str = "",
         label_columns: tuple = ()) -> tuple:
    """Dispatches on the path: a directory of class folders or a delimited/JSON-lines file."""
    if not os.path.exists(path):
        raise ValueError(f"{path}: no such file or directory; check --data")
    if os.path.isdir(path):
        if label_separator or label_columns:
            raise ValueError(f"{path}: class folders are single-label; drop --label-separator / --label-columns, "
                             "or give a CSV/TSV/JSONL file")
        return read_folders(path)
    return read_file(path, text_columns, label_column, label_separator, label_columns)
