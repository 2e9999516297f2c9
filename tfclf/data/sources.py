"""Streamed sources: CSV / TSV / JSONL files (plain or .gz), Parquet, globs and shard lists, class folders,
read as chunks of at most `chunk_rows` rows, so memory does not grow with the corpus.

    files = expand("shards/part-*.csv.gz")          # sorted paths; a comma-separated list works too
    for chunk in chunks(files, ("text",), "label"):  # Chunk(text, label, row[, split]) of numpy arrays
        ...

Each row carries its locator (`shards/part-0007.csv.gz, data row 1234567`; `line N` for JSON lines; the file
path for class folders), and every error names the shard and the row or line. No TensorFlow here.
"""
import csv
import dataclasses
import glob
import gzip
import os
import re
import zlib

import numpy as np
import pandas as pd

from tfclf.data import readers

CHUNK_ROWS = 20_000
JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")
PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclasses.dataclass
class Chunk:
    """Up to CHUNK_ROWS rows: text (joined text columns, as read), label (None where missing), row (locator),
    split ("train" / "test" from class folders, else None), replaced (U+FFFD replacements in the chunk)."""
    text: np.ndarray
    label: np.ndarray
    row: np.ndarray
    split: np.ndarray = None
    replaced: int = 0

    def __len__(self) -> int:
        return len(self.text)


def _suffix(path: str) -> str:
    lower = path.lower()
    return lower[:-3] if lower.endswith(".gz") else lower


def expand(data: str) -> list:
    """The files (or one class-folder directory) a --data value names: a path, a glob, or a comma-separated
    list of either. ValueError for a path that does not exist or a glob that matches nothing."""
    files = []
    for part in (piece.strip() for piece in data.split(",")):
        if not part:
            continue
        if glob.has_magic(part):
            matched = sorted(path for path in glob.glob(part) if os.path.isfile(path))
            if not matched:
                raise ValueError(f"{part}: the pattern matches no file; check --data (quote it so the shell "
                                 "does not expand it)")
            files.extend(matched)
        elif not os.path.exists(part):
            raise ValueError(f"{part}: no such file or directory; check --data")
        else:
            files.append(part)
    if not files:
        raise ValueError(f"--data '{data}': names no file; give a file, a directory, a glob or a comma-separated list")
    if len(files) > 1 and any(os.path.isdir(path) for path in files):
        raise ValueError(f"--data '{data}': a class-folder directory cannot be combined with other paths; "
                         "give one directory, or files")
    return files


def is_single_plain(files: list) -> bool:
    """One uncompressed CSV/TSV/JSONL file or one class-folder directory: what readers.read reads whole."""
    return len(files) == 1 and (os.path.isdir(files[0]) or
                                not files[0].lower().endswith((".gz",) + PARQUET_SUFFIXES))


def size_on_disk(files: list) -> int:
    """Bytes of the files (a directory counts the sizes of the files under it)."""
    total = 0
    for path in files:
        if os.path.isdir(path):
            total += sum(entry.stat().st_size for root, _, names in os.walk(path)
                         for entry in os.scandir(root) if entry.is_file())
        else:
            total += os.path.getsize(path)
    return total


def chunks(files: list, text_columns: tuple, label_column: str, chunk_rows: int = CHUNK_ROWS):
    """Yields Chunk after Chunk from every file in order; the header of every shard must equal the first's."""
    if os.path.isdir(files[0]):
        yield from _folder_chunks(files[0], chunk_rows)
        return
    header = None
    for path in files:
        suffix = _suffix(path)
        if suffix.endswith(PARQUET_SUFFIXES):
            reader = _parquet_chunks(path, text_columns, label_column, chunk_rows)
        elif suffix.endswith(JSON_SUFFIXES):
            reader = _json_chunks(path, chunk_rows)
        else:
            reader = _delimited_chunks(path, "\t" if suffix.endswith((".tsv", ".tab")) else ",", chunk_rows)
        # Delimited shards must repeat the first one's header; JSON objects and Parquet column selections need
        # not list every field alike.
        delimited = not suffix.endswith(JSON_SUFFIXES + PARQUET_SUFFIXES)
        empty = True
        for frame, rows in reader:
            if delimited and header is None:
                header = (path, list(frame.columns))
            elif delimited and list(frame.columns) != header[1]:
                raise ValueError(f"{path}: header {list(frame.columns)} differs from {header[0]}'s {header[1]}; "
                                 "give shards with the same columns in the same order")
            empty = empty and frame.empty
            yield _to_chunk(frame, rows, path, text_columns, label_column)
        if empty:
            raise ValueError(f"{path}: file has no data rows; add rows or leave the file out of --data")


def _to_chunk(frame: pd.DataFrame, rows: np.ndarray, path: str, text_columns: tuple, label_column: str) -> Chunk:
    text = readers._join_columns(frame, text_columns, path).to_numpy(dtype=object)
    readers._require_label(frame, label_column, path)
    label = frame[label_column].to_numpy(dtype=object)
    label = np.where(pd.isna(label), None, label)
    replaced = int(sum(str(value).count("\ufffd") for value in text))
    split = readers.given_splits(frame.reset_index(drop=True), path, (*text_columns, label_column))
    return Chunk(text, label, rows, split, replaced)


def _open_text(path: str):
    opener = gzip.open if path.lower().endswith(".gz") else open
    return opener(path, "rt", encoding="utf-8-sig", errors="replace", newline="")


def _read_error(path: str, error: Exception, after: int) -> ValueError:
    """One line for a shard that cannot be read on: truncated or corrupt gzip, malformed CSV, bad bytes."""
    if isinstance(error, (EOFError, zlib.error, gzip.BadGzipFile)):
        return ValueError(f"{path}, after data row {after}: the compressed file is truncated or corrupt "
                          f"({error}); download or write the shard again")
    message = str(error)
    match = re.search(r"line (\d+)", message)
    where = f", line {match.group(1)}" if match else f", after data row {after}"
    detail = message.split("error: ")[-1].strip()
    return ValueError(f"{path}{where}: malformed row ({detail}); fix the quoting or the number of separators "
                      "on that line")


def _delimited_chunks(path: str, separator: str, chunk_rows: int):
    """(frame, locators) chunks of a CSV/TSV file (plain or gzip), pandas' C parser under the hood."""
    done = 0
    try:
        with _open_text(path) as handle:
            for frame in pd.read_csv(handle, sep=separator, dtype=str, keep_default_na=False, na_values=[""],
                                     quoting=csv.QUOTE_MINIMAL, chunksize=chunk_rows):
                rows = np.array([f"{path}, data row {done + i + 1}" for i in range(len(frame))], dtype=object)
                done += len(frame)
                yield frame, rows
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: file is empty; give a file with a header row and data rows") from None
    except (pd.errors.ParserError, EOFError, zlib.error, gzip.BadGzipFile, UnicodeDecodeError) as error:
        raise _read_error(path, error, done) from None


def _json_chunks(path: str, chunk_rows: int):
    records, lines, number = [], [], 0
    try:
        with _open_text(path) as handle:
            for number, line in enumerate(handle, start=1):
                record = readers.json_record(line, f"{path}, line {number}")
                if record is None:
                    continue
                records.append(record)
                lines.append(f"{path}, line {number}")
                if len(records) == chunk_rows:
                    yield pd.DataFrame.from_records(records), np.array(lines, dtype=object)
                    records, lines = [], []
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise _read_error(path, error, number) from None
    if records:
        yield pd.DataFrame.from_records(records), np.array(lines, dtype=object)


def _parquet_chunks(path: str, text_columns: tuple, label_column: str, chunk_rows: int):
    try:
        import pyarrow.parquet as parquet
    except ImportError:
        raise ValueError(f"{path}: reading Parquet needs the pyarrow package, which is not installed; install it "
                         "with: pip install 'tfclf[parquet]'") from None
    try:
        handle = parquet.ParquetFile(path)
    except Exception as error:  # pyarrow raises its own ArrowInvalid / OSError kinds for damaged files
        raise ValueError(f"{path}: not a readable Parquet file ({str(error).splitlines()[0]}); write it again") from None
    available = handle.schema_arrow.names
    wanted = list(dict.fromkeys((*text_columns, label_column)))
    missing = [column for column in wanted if column not in available]
    wanted += ["split"] if "split" in available and "split" not in wanted else []
    if missing:
        raise ValueError(f"{path}: column '{missing[0]}' not found; available columns: {', '.join(available)}; "
                         "choose with --text-column / --label-column")
    done = 0
    for batch in handle.iter_batches(batch_size=chunk_rows, columns=wanted):
        frame = batch.to_pandas().astype(object)
        frame = frame.where(frame.notna(), None).map(lambda value: value if value is None else str(value))
        rows = np.array([f"{path}, row {done + i + 1}" for i in range(len(frame))], dtype=object)
        done += len(frame)
        yield frame, rows


def _folder_chunks(root: str, chunk_rows: int):
    """Class folders (root/<class>/*.txt or root/{train,test}/<class>/*.txt) in chunks of files."""
    has_splits = os.path.isdir(os.path.join(root, "train"))
    parts = [(split, os.path.join(root, split)) for split in readers.FOLDER_SPLITS
             if os.path.isdir(os.path.join(root, split))] if has_splits else [(None, root)]
    texts, labels, rows, splits, replaced, found = [], [], [], [], 0, 0
    for split, directory in parts:
        for label in readers._class_folders(directory):
            class_dir = os.path.join(directory, label)
            for name in sorted(os.listdir(class_dir)):
                path = os.path.join(class_dir, name)
                if name.startswith(".") or not os.path.isfile(path) or not name.lower().endswith(readers.TEXT_SUFFIXES):
                    continue
                with open(path, "rb") as handle:
                    content, bad = readers._decode(handle.read())
                texts.append(content.strip())
                labels.append(label)
                rows.append(path)
                splits.append(split)
                replaced += bad
                found += 1
                if len(texts) == chunk_rows:
                    yield _folder_chunk(texts, labels, rows, splits, replaced)
                    texts, labels, rows, splits, replaced = [], [], [], [], 0
    if texts:
        yield _folder_chunk(texts, labels, rows, splits, replaced)
    if not found:
        raise ValueError(f"{root}: no class folders with .txt files found; expected {root}/<class>/*.txt or "
                         f"{root}/train/<class>/*.txt (+ optional test/)")


def _folder_chunk(texts, labels, rows, splits, replaced) -> Chunk:
    split = None if splits[0] is None else np.array(splits, dtype=object)
    return Chunk(np.array(texts, dtype=object), np.array(labels, dtype=object), np.array(rows, dtype=object),
                 split, replaced)


def read_whole(files: list, text_columns: tuple, label_column: str) -> tuple:
    """Small data given as .gz / Parquet / several shards, as one table (readers.read's form) -> (table, stats)."""
    parts = list(chunks(files, text_columns, label_column))
    table = pd.DataFrame({"text": np.concatenate([part.text for part in parts]),
                          "label": np.concatenate([part.label for part in parts]),
                          "row": np.concatenate([part.row for part in parts])})
    if all(part.split is not None for part in parts):
        table["split"] = np.concatenate([part.split for part in parts])
    return table, {"decode_replacements": sum(part.replaced for part in parts)}
