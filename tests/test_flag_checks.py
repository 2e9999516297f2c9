"""Flags and columns are checked for what they are before the data is read (issue 29 item 5), so the line names
the real cause (not a data problem) and a fix that works. One line, exit 2, no run directory."""
import pytest

from conftest import toy_rows, write_csv, write_jsonl
from tfclf import run


def _multi_label_rows(count: int = 40):
    return [{"text": row["text"], "a": i % 2, "b": (i // 2) % 2, "label": row["label"]}
            for i, row in enumerate(toy_rows(count))]


def _csv(tmp):
    return write_csv(tmp / "t.csv", _multi_label_rows(), columns=("text", "a", "b", "label"))


FLAG_CASES = {  # flags after --data <csv with text, a, b, label>, and a fragment of the one line
    "negative seed": (["--seed", "-1"], "--seed -1 is out of range; give a whole number in [0, 4294967295]"),
    "seed too large": (["--seed", str(2 ** 32)], "--seed 4294967296 is out of range"),
    "text column twice": (["--text-column", "text,text"], "--text-column text,text: names 'text' twice; name each "
                                                          "column once"),
    "text column is the label column": (["--text-column", "label"],
                                        "--text-column label: 'label' is also the label column (--label-column), so "
                                        "the model would read its answer"),
    "text column among the label columns": (["--text-column", "text,a", "--label-columns", "a,b"],
                                            "'a' is also the label column (--label-columns)"),
    "label column twice": (["--label-columns", "a,b,a"], "--label-columns a,b,a: names 'a' twice"),
    "empty column name": (["--text-column", "text,"], "--text-column 'text,': an empty column name"),
    "no label columns": (["--label-columns", " "], "--label-columns ' ': an empty column name; give the column "
                                                   "names comma-separated, each once (e.g. title,body), or drop"),
    "label name with the set separator": (["--label-columns", "a|x,b"],
                                          "label 'a|x' contains '|', which joins a predicted label set"),
}


@pytest.mark.parametrize("case", FLAG_CASES)
def test_flags_and_columns_are_checked_before_the_data(case, tmp_path, capsys):
    flags, fragment = FLAG_CASES[case]
    out = tmp_path / "run"
    code = run.main(["--data", _csv(tmp_path), "--out", str(out), "--encoder", "bow", "--epochs", "1", *flags])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("tfclf: error: "), lines
    assert fragment in lines[0], lines[0]
    assert not out.exists() and not (tmp_path / "run.partial").exists() and not (tmp_path / "run.lock").exists()


@pytest.mark.parametrize("label, fragment", [
    ("sports|news", "label 'sports|news' in column 'label' is empty or contains '|'"),
    ("  ", "label '  ' in column 'label' is empty"),
])
def test_jsonl_label_lists_with_an_ambiguous_or_empty_name_are_refused(label, fragment, tmp_path, capsys):
    rows = [{"text": row["text"], "label": [row["label"]] + (["x"] if i % 3 else [])}
            for i, row in enumerate(toy_rows(40))]
    rows[5]["label"].append(label)
    out = tmp_path / "run"
    assert run.main(["--data", write_jsonl(tmp_path / "t.jsonl", rows), "--out", str(out), "--encoder", "bow"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "t.jsonl line 6: " + fragment in lines[0], lines
    assert not out.exists()


def test_labels_that_differ_only_by_surrounding_spaces_are_refused(tmp_path, capsys):
    rows = toy_rows(40, classes=("spam", "ham")) + [{"text": "WIN a prize", "label": " spam "}]
    out = tmp_path / "run"
    assert run.main(["--data", write_csv(tmp_path / "t.csv", rows), "--out", str(out), "--encoder", "bow"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "labels that look alike would be separate classes (' spam ' / 'spam')" in lines[0]
    assert not out.exists()
