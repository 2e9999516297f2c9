"""Corpora larger than memory: one counting pass over the files, a split rule that is a pure function of the
row, bounded samples, and the rows of one split as a generator of batches for tf.data. No TensorFlow here.

    corpus = Corpus(files, data_config, seed, clean_texts)   # clean_texts: models.cleaning.clean_texts
    splits = corpus.scan()        # StreamSplits: counts, summary, bounded samples (one pass, bounded memory)
    for texts, label_ids in corpus.batches("train"):  ...   # what tf.data reads, epoch after epoch

The split rule: a seeded 64-bit hash of the cleaned text (pandas' SipHash of its UTF-8 bytes) mapped to
[0, 1) picks train / validation / test by the configured fractions. Exact duplicates therefore share a split
(no leakage, nothing to remove), the split is the same on every machine and worker, and appending rows never
moves an old one. A text that --clean empties is hashed by its raw text (they all clean to "") and dropped
from training only: validation and test score it as the export does. Given splits (class folders' train/ and
test/) are kept: test stays test, and the rule divides train into train and validation.
"""
import dataclasses
import hashlib

import numpy as np
import pandas as pd

from tfclf.data import sources, splits as splits_lib

STREAM_BYTES = 64 * 2 ** 20    # --stream auto: data above this size on disk (or in several files) is streamed
TRAIN_SAMPLE = 100_000         # training texts kept (uniform reservoir) for vocabularies, lengths and EDA
HELDOUT_SAMPLE = 10_000        # validation / test texts kept for lengths and EDA
SPLITS = ("train", "val", "test")
SHOWN_ROWS = 5


def wanted(data_config, files: list) -> bool:
    """Whether to stream: --stream on, or auto and more than STREAM_BYTES on disk (a compressed file counts
    4x its size, about what text gains when unpacked)."""
    if data_config.stream != "auto":
        return data_config.stream == "on"
    weighted = sum(sources.size_on_disk([path]) * (4 if path.lower().endswith((".gz",) + sources.PARQUET_SUFFIXES)
                                                   else 1) for path in files)
    return weighted > STREAM_BYTES


def split_codes(texts, seed: int, val_fraction: float, test_fraction: float, given=None) -> tuple:
    """(codes, hashes): 0 train / 1 validation / 2 test for each (cleaned) text, and its 64-bit hash.

    >>> codes, _ = split_codes(["a", "b", "a"], 42, 0.15, 0.15)
    >>> int(codes[0]) == int(codes[2])
    True
    """
    key = f"tfclf-split{seed % 10 ** 5:05d}"[:16]
    hashes = pd.util.hash_array(np.asarray(texts, dtype=object), hash_key=key, categorize=False)
    position = (hashes >> np.uint64(11)).astype(np.float64) / float(2 ** 53)  # uniform in [0, 1)
    codes = np.where(position < 1 - val_fraction - test_fraction, 0, np.where(position < 1 - test_fraction, 1, 2))
    if given is not None:  # given splits: test kept; the train split divided into train and validation
        codes = np.where(given == "test", 2, np.where(position < 1 - val_fraction, 0, 1))
    return codes.astype(np.int8), hashes


@dataclasses.dataclass
class Rows:
    """One chunk's valid rows after cleaning, with their split code and hash."""
    text: np.ndarray      # cleaned
    raw_text: np.ndarray  # as read
    label: np.ndarray
    row: np.ndarray
    code: np.ndarray
    hashes: np.ndarray

    def select(self, keep) -> "Rows":
        return Rows(*(getattr(self, field.name)[keep] for field in dataclasses.fields(self)))


class Reservoir:
    """A uniform sample of at most `size` rows of a stream (algorithm R, vectorized per chunk)."""

    def __init__(self, size: int, seed: int):
        self.size, self.seen, self.rng = size, 0, np.random.default_rng(seed)
        self.columns = None

    def add(self, columns: dict) -> None:
        count = len(next(iter(columns.values())))
        if self.columns is None:
            self.columns = {name: np.empty(self.size, dtype=object) for name in columns}
        index = self.seen + np.arange(count)
        slot = np.where(index < self.size, index, (self.rng.random(count) * (index + 1)).astype(np.int64))
        keep = slot < self.size
        for name, values in columns.items():
            self.columns[name][slot[keep]] = np.asarray(values, dtype=object)[keep]
        self.seen += count

    def frame(self) -> pd.DataFrame:
        kept = min(self.seen, self.size)
        return pd.DataFrame({name: values[:kept] for name, values in (self.columns or {}).items()})


@dataclasses.dataclass
class StreamSplits:
    """What splits.Splits offers, for a streamed corpus: `train` / `val` / `test` are bounded uniform samples
    (columns text, raw_text, label, label_id, row), `counts` the full splits' sizes."""
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    class_names: list
    summary: dict
    counts: dict
    digest: str
    multi_label: bool = False
    label_separator: str = ""
    streamed: bool = True


class Corpus:
    """A streamed, labelled corpus: its files, the run's columns, cleaning and split rule."""

    def __init__(self, files: list, data_config, seed: int, clean_texts=None, worker: tuple = (0, 1)):
        self.files, self.data_config, self.seed, self.clean_texts = files, data_config, seed, clean_texts
        self.text_columns, self.label_column = splits_lib._columns(data_config)
        self.source = files[0] if len(files) == 1 else f"{files[0]} (+{len(files) - 1} more)"
        self.class_index = None
        self.worker = worker
        self.replaced = 0  # U+FFFD replacements of undecodable bytes seen (eda.json: decode_replacements)

    # --- reading: one definition of validity, cleaning and the split rule -------

    def _rows(self, files=None, on_invalid=None):
        """Rows per chunk (validity, labels, cleaning and split as the scan saw them). `on_invalid(kind,
        chunk_rows, mask)` sees the invalid rows of each chunk before they are dropped."""
        config = self.data_config
        for chunk in sources.chunks(files or self.files, self.text_columns, self.label_column):
            self.replaced += chunk.replaced
            label = pd.Series(chunk.label, dtype=object)
            missing = label.isna() | (label.astype(str).str.strip() == "")
            empty = pd.Series([text is None or str(text).strip() == "" for text in chunk.text])
            if on_invalid:
                on_invalid("label", chunk.row, missing.to_numpy())
                on_invalid("text", chunk.row, (empty & ~missing).to_numpy())
            keep = ~(missing | empty).to_numpy()
            raw = np.asarray([str(text) for text in chunk.text[keep]], dtype=object)
            labels = splits_lib.normalize_labels(label[keep].astype(str).str.strip().reset_index(drop=True),
                                                 self.source).to_numpy(dtype=object)
            text, rows, given = raw, chunk.row[keep], None if chunk.split is None else chunk.split[keep]
            emptied = np.zeros(len(raw), dtype=bool)
            if config.clean:  # a text cleaning empties is split by its raw text (all clean to "")
                text = np.asarray(self.clean_texts(list(raw), config.clean), dtype=object)
                emptied = splits_lib.blank(text)
            codes, hashes = split_codes(splits_lib.leak_keys(text, raw, emptied), self.seed, config.val_fraction,
                                        config.test_fraction, given)
            dropped = emptied & (codes == 0)  # from training only; validation and test score them
            if on_invalid:
                on_invalid("cleaned", rows, dropped)
            yield Rows(text, raw, labels, rows, codes, hashes).select(~dropped)

    def worker_files(self) -> tuple:
        """(files, row stride) of this worker: whole files when there are at least as many files as
        workers, else every file with every `count`-th row."""
        index, count = self.worker
        if count == 1:
            return self.files, 1
        if len(self.files) >= count:
            return self.files[index::count], 1
        return self.files, count

    def batches(self, split: str, batch_rows: int = 1024, limit: int = 0, with_rows: bool = False,
                shard: bool = False):
        """(texts, label ids[, raw texts, locators]) of one split in file order, in batches of at most
        `batch_rows` rows; at most `limit` rows (0: all); with `shard`, this worker's share (multi-worker
        training; evaluation reads whole splits)."""
        code, (files, stride) = SPLITS.index(split), self.worker_files() if shard else (self.files, 1)
        index, done, position = self.worker[0], 0, 0
        for rows in self._rows(files):
            keep = rows.code == code
            if stride > 1:  # every stride-th row of the split, counted across chunks and files
                rank = position + np.cumsum(keep) - 1
                position += int(keep.sum())
                keep &= rank % stride == index
            part = rows.select(keep)
            if limit:
                part = part.select(slice(0, max(0, limit - done)))
            ids = np.array([self.class_index[label] for label in part.label], dtype=np.int32)
            for start in range(0, len(part.text), batch_rows):
                stop = start + batch_rows
                texts = part.text[start:stop].astype(str)
                yield (texts, ids[start:stop], part.raw_text[start:stop], part.row[start:stop]) if with_rows \
                    else (texts, ids[start:stop])
            done += len(part.text)
            if limit and done >= limit:
                return

    # --- the counting pass ------------------------------------------------------

    def scan(self) -> StreamSplits:
        """One pass: rows, invalid rows, class counts per split, exact duplicates (64-bit hashes), bounded
        samples per split, a digest of the data; the checks of the in-memory path. ValueError on bad data."""
        config = self.data_config
        invalid = {"label": [0, []], "text": [0, []], "cleaned": [0, []]}

        def on_invalid(kind, rows, mask):
            invalid[kind][0] += int(mask.sum())
            invalid[kind][1].extend(rows[mask][:SHOWN_ROWS + 1 - len(invalid[kind][1])])
            # A text that cleaning empties is dropped and counted, as in memory (splits._cleaned), never refused.
            if invalid[kind][0] and not config.drop_invalid and kind != "cleaned":
                raise self._invalid_error(kind, invalid[kind])

        counts, hashes, scored = {}, [], {"val": 0, "test": 0}
        samples = {split: Reservoir(TRAIN_SAMPLE if split == "train" else HELDOUT_SAMPLE, self.seed + i)
                   for i, split in enumerate(SPLITS)}
        digest = hashlib.sha256()
        for rows in self._rows(on_invalid=on_invalid):
            hashes.append(rows.hashes)
            digest.update(rows.hashes.tobytes())
            digest.update("\x1f".join(rows.label).encode())
            for code, split in enumerate(SPLITS):
                keep = rows.code == code
                for label, count in zip(*np.unique(rows.label[keep].astype(str), return_counts=True)):
                    counts.setdefault(split, {}).setdefault(label, 0)
                    counts[split][label] += int(count)
                samples[split].add({"text": rows.text[keep], "raw_text": rows.raw_text[keep],
                                    "label": rows.label[keep], "row": rows.row[keep]})
                if split != "train":
                    scored[split] += int(splits_lib.blank(rows.text[keep]).sum())
        return self._splits(counts, hashes, samples, invalid, digest.hexdigest(), scored)

    def _invalid_error(self, kind: str, seen: list) -> ValueError:
        count, rows = seen
        shown = ", ".join(str(row) for row in rows[:SHOWN_ROWS]) + (" and more" if count > SHOWN_ROWS else "")
        what = {"label": "have no label", "text": "have empty text"}[kind]
        return ValueError(f"{self.source}: row(s) {what} ({shown}); fix them, remove them, or pass --drop-invalid")

    def _splits(self, counts: dict, hashes: list, samples: dict, invalid: dict, digest: str,
                emptied_scored: dict) -> StreamSplits:
        labels = sorted({label for split in counts.values() for label in split})
        if len(labels) < 2:
            only = f"only '{labels[0]}'" if labels else "none"
            raise ValueError(f"{self.source}: needs at least 2 classes, found {only}; check --label-column")
        class_names = splits_lib.label_vocabulary(pd.Series(labels))
        table = {split: {name: int(counts.get(split, {}).get(name, 0)) for name in class_names} for split in SPLITS}
        for split, name in (("train", "the train split"), ("val", "the validation split"), ("test", "the test split")):
            absent = [label for label in class_names if table[split][label] == 0]
            if absent:
                total = {label: sum(table[part][label] for part in SPLITS) for label in absent}
                raise ValueError(f"{self.source}: class '{absent[0]}' has {total[absent[0]]} example(s) and none "
                                 f"falls in {name} of the hash split; add examples of it, remove the class, or "
                                 "raise --val-fraction / --test-fraction")
        every = np.concatenate(hashes)
        self.class_index = {name: i for i, name in enumerate(class_names)}
        frames = {}
        for split in SPLITS:
            frame = samples[split].frame()
            frame["label_id"] = frame["label"].map(self.class_index).astype("int32")
            frames[split] = frame[["text", "raw_text", "label", "label_id", "row"]]
        sizes = {split: int(sum(table[split].values())) for split in SPLITS}
        dropped = invalid["label"][0] + invalid["text"][0]
        summary = {
            "num_rows_read": int(len(every) + dropped + invalid["cleaned"][0]), "dropped_invalid_rows": int(dropped),
            "emptied_by_cleaning": int(invalid["cleaned"][0] + sum(emptied_scored.values())),
            "emptied_dropped_from_training": int(invalid["cleaned"][0]),
            "emptied_scored": {split: int(count) for split, count in emptied_scored.items()},
            "duplicates_removed": {"val": 0, "test": 0},
            "exact_duplicates": int(len(every) - len(np.unique(every))),
            "class_counts": table,
            "split_rule": {"rule": "hash", "what": "seeded 64-bit hash of the cleaned text -> train / validation / "
                           "test by the fractions; exact duplicates share a split",
                           "seed": self.seed, "val_fraction": self.data_config.val_fraction,
                           "test_fraction": self.data_config.test_fraction},
            "class_share": {split: {name: table[split][name] / max(sizes[split], 1) for name in class_names}
                            for split in SPLITS},
            "samples": {split: int(len(frames[split])) for split in SPLITS},
            "files": len(self.files),
            "decode_replacements": self.replaced,
        }
        return StreamSplits(frames["train"], frames["val"], frames["test"], class_names, summary, sizes, digest)
