"""Readers, validation, splits, leakage guard, label vocabulary, tf.data."""
import os

import numpy as np
import pandas as pd
import pytest

from conftest import toy_rows, write_csv, write_folders, write_jsonl
from tfclf import config as config_lib
from tfclf.data import datasets, pipeline, readers, splits as data


def prepared(path, **values):
    config = config_lib.from_flat({"data": str(path), **values})
    table, stats = data.load(config.data)
    return data.split(table, config.data, config.train.seed, source=str(path)), stats


def test_csv_tsv_jsonl_read_the_same_rows(tmp_path):
    rows = toy_rows(30)
    tables = [readers.read(path, ("text",), "label")[0] for path in (
        write_csv(tmp_path / "a.csv", rows), write_csv(tmp_path / "a.tsv", rows, separator="\t"),
        write_jsonl(tmp_path / "a.jsonl", rows))]
    for table in tables[1:]:
        assert table["text"].tolist() == tables[0]["text"].tolist()
        assert table["label"].tolist() == tables[0]["label"].tolist()


def test_several_text_columns_are_joined(tmp_path):
    path = write_csv(tmp_path / "n.csv", [{"title": "Big news", "body": "rates rise", "y": "1"}] * 3,
                     columns=("title", "body", "y"))
    table, _ = readers.read(path, ("title", "body"), "y")
    assert table["text"][0] == "Big news rates rise"


def test_folders_with_given_splits_ignore_unsup(tmp_path):
    root = tmp_path / "aclImdb"
    write_folders(root, toy_rows(40), split="train")
    write_folders(root, toy_rows(10, seed=5), split="test")
    write_folders(root / "train", [{"text": "unlabelled", "label": "unsup"}] * 3)
    splits, _ = prepared(root, val_fraction=0.25)
    assert splits.class_names == ["neg", "pos"]
    assert len(splits.test) == 10 and len(splits.train) + len(splits.val) == 40
    assert not (splits.train["text"] == "unlabelled").any()


def test_stratified_70_15_15_split_is_seeded_and_keeps_class_shares(tmp_path):
    rows = toy_rows(200, classes=("a", "a", "a", "b"))  # 75% / 25%
    path = write_csv(tmp_path / "s.csv", rows)
    first, _ = prepared(path)
    again, _ = prepared(path)
    other, _ = prepared(path, seed=7)
    assert (len(first.train), len(first.val), len(first.test)) == (140, 30, 30)
    assert first.test["text"].tolist() == again.test["text"].tolist()
    assert first.test["text"].tolist() != other.test["text"].tolist()
    for frame in (first.train, first.val, first.test):
        assert frame["label"].eq("b").mean() == pytest.approx(0.25, abs=0.04)


def test_duplicates_across_splits_are_removed_from_later_split(tmp_path):
    rows = toy_rows(60) + toy_rows(60)[:30]  # 30 exact duplicates
    splits, _ = prepared(write_csv(tmp_path / "d.csv", rows))
    train = set(splits.train["text"])
    assert not train & set(splits.val["text"]) and not (train | set(splits.val["text"])) & set(splits.test["text"])
    removed = splits.summary["duplicates_removed"]
    assert removed["val"] + removed["test"] > 0
    assert len(splits.train) + len(splits.val) + len(splits.test) + removed["val"] + removed["test"] == 90


def test_integer_labels_sort_numerically(tmp_path):
    rows = [{"text": f"text {i}", "label": str([2, 10, 1][i % 3])} for i in range(30)]
    splits, _ = prepared(write_csv(tmp_path / "i.csv", rows))
    assert splits.class_names == ["1", "2", "10"]
    assert set(splits.train["label_id"]) == {0, 1, 2}


def test_non_utf8_bytes_are_replaced_and_counted(tmp_path):
    path = tmp_path / "latin1.csv"
    body = "text,label\n" + "".join(f"caf\xe9 {i},{'ab'[i % 2]}\n" for i in range(12))
    path.write_bytes(body.encode("latin-1"))
    table, stats = readers.read(str(path), ("text",), "label")
    assert stats["decode_replacements"] == 12
    assert table["text"][0] == "caf\ufffd 0"


def test_drop_invalid_drops_and_counts(tmp_path):
    rows = toy_rows(30) + [{"text": "", "label": "pos"}, {"text": "no label", "label": ""}]
    splits, _ = prepared(write_csv(tmp_path / "x.csv", rows), drop_invalid=True)
    assert splits.summary["dropped_invalid_rows"] == 2


def test_cleaning_is_applied_before_splitting(tmp_path):
    rows = [{"text": f"<b>WORD{i}</b>", "label": "ab"[i % 2]} for i in range(30)]
    path = write_csv(tmp_path / "c.csv", rows)
    config = config_lib.from_flat({"data": path, "clean": "html,lowercase,whitespace"})
    with pytest.raises(ValueError, match="needs clean_texts"):  # no silent second implementation
        data.split(data.load(config.data)[0], config.data, 0)
    from tfclf.models import cleaning
    splits = data.split(data.load(config.data)[0], config.data, 0, clean_texts=cleaning.clean_texts)
    assert all(text.startswith("word") for text in splits.train["text"])
    assert all(raw.startswith("<b>WORD") for raw in splits.train["raw_text"])


def test_max_examples_samples_stratified(tmp_path):
    splits, _ = prepared(write_csv(tmp_path / "m.csv", toy_rows(100)), max_examples=40)
    assert len(splits.train) + len(splits.val) + len(splits.test) == 40


def test_make_dataset_batches_and_shuffles_with_seed():
    texts, labels = [f"t{i}" for i in range(10)], list(range(10))
    first = [b[1].numpy().tolist() for b in pipeline.make_dataset(texts, labels, 4, shuffle=True, seed=3)]
    second = [b[1].numpy().tolist() for b in pipeline.make_dataset(texts, labels, 4, shuffle=True, seed=3)]
    assert first == second and [len(b) for b in first] == [4, 4, 2]
    assert sorted(sum(first, [])) == labels and sum(first, []) != labels


def test_sms_spam_repair_recovers_the_original_collection():
    path = datasets.locate("sms_spam")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert len(table) == 5574 and (table["label"] == "spam").sum() == 747
    assert not table["text"].str.contains("\n(?:ham|spam)\t", regex=True).any()


def test_repair_splits_glued_records():
    frame = pd.DataFrame({"spam": ["0"], "text": ["first\"\nspam\tWIN now\nham\tok see you"]})
    repaired = datasets.repair_sms_spam(frame)
    assert repaired.values.tolist() == [["ham", "first\""], ["spam", "WIN now"], ["ham", "ok see you"]]


def test_imdb_offline_fails_with_one_actionable_line(tmp_path, monkeypatch):
    monkeypatch.setenv("TFCLF_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(datasets, "IMDB_URL", "http://127.0.0.1:9/aclImdb_v1.tar.gz")  # closed port
    with pytest.raises(ValueError) as error:
        datasets.locate("imdb")
    message = str(error.value)
    assert "download of http://127.0.0.1:9/aclImdb_v1.tar.gz failed" in message and "--data PATH" in message
    assert "\n" not in message and not os.listdir(os.path.join(tmp_path, "datasets"))


def test_numeric_labels_written_differently_are_one_class(tmp_path):
    rows = [{"text": f"text {i}", "label": ("1", "1.0", " 1", "0", "0.0")[i % 5]} for i in range(60)]
    splits, _ = prepared(write_csv(tmp_path / "n.csv", rows))
    assert splits.class_names == ["0", "1"]
    assert data.normalize_labels(pd.Series(["1", "1.0", "2.50", "2.5"]), "x").tolist() == ["1", "1", "2.5", "2.5"]
    assert sum(splits.summary["class_counts"]["train"].values()) == len(splits.train)


def test_class_folders_read_text_files_only_and_count_the_rest(tmp_path):
    root = write_folders(tmp_path / "f", toy_rows(30))
    for label in ("pos", "neg"):
        (tmp_path / "f" / label / "cover.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00")
        (tmp_path / "f" / label / "README.md").write_text("# notes, not a review")
    table, stats = readers.read(root, ("text",), "label")
    assert len(table) == 30 and stats["skipped_files"] == 4
    assert not table["text"].str.contains("notes, not a review").any()


def test_tsv_accepts_standard_csv_quoting(tmp_path):
    frame = pd.DataFrame({"text": ['he said "hi"\tthen left', "plain"], "label": ["a", "b"]})
    path = tmp_path / "q.tsv"
    frame.to_csv(path, sep="\t", index=False)  # pandas quotes the field with the tab and the quotes
    table, _ = readers.read(str(path), ("text",), "label")
    assert table["text"].tolist() == frame["text"].tolist()


def test_a_sequence_length_beyond_every_text_is_capped_at_the_longest(tmp_path, capsys):
    from tfclf.stages import preparing
    lengths = np.array([3, 7, 12])
    assert preparing.choose_seq_len(lengths, 100000, unit="words") == 12
    assert "--seq-len 100000 is longer than every training text (longest: 12 words); using 12" in \
        capsys.readouterr().out
    assert preparing.choose_seq_len(lengths, 5) == 5 and preparing.choose_seq_len(lengths, 0) == 12


def test_the_summary_says_when_the_cap_is_the_encoders_maximum_not_the_percentile():
    from tfclf.stages import preparing
    long_texts = np.array([300] * 60 + [900] * 40)  # 95th percentile 900, above a 512-token encoder
    assert preparing.choose_seq_len(long_texts, 0, 512) == 512
    assert preparing.seq_len_source(long_texts, 0, 512) == \
        "the encoder's maximum; the 95th percentile of the training texts is 900"
    assert preparing.seq_len_source(long_texts, 0, 1024) == "95th percentile of the training texts"
    assert preparing.seq_len_source(long_texts, 2048, 512) == "--seq-len 2048 capped at the encoder's maximum"
    assert preparing.seq_len_source(long_texts, 128, 512) == "--seq-len"
