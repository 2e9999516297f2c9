"""Every kind of bad input: one line naming the place and the fix, exit 2, no traceback, no run dir."""
import os
import subprocess
import sys

import pytest

from conftest import toy_rows, write_csv, write_jsonl, repo_env
from tfclf import run


def _missing(tmp_path):
    return str(tmp_path / "nope.csv")


def _empty(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    return str(tmp_path / "empty.csv")


def _header_only(tmp_path):
    (tmp_path / "header.csv").write_text("text,label\n")
    return str(tmp_path / "header.csv")


def _unknown_column(tmp_path):
    return write_csv(tmp_path / "cols.csv", toy_rows(12), columns=("body", "label"))


def _nan_labels(tmp_path):
    return write_csv(tmp_path / "nan.csv", toy_rows(12) + [{"text": "orphan text", "label": ""}])


def _empty_text(tmp_path):
    return write_csv(tmp_path / "blank.csv", toy_rows(12) + [{"text": "   ", "label": "pos"}])


def _single_class(tmp_path):
    return write_csv(tmp_path / "one.csv", toy_rows(12, classes=("pos",)))


def _tiny_class(tmp_path):
    return write_csv(tmp_path / "tiny.csv", toy_rows(20) + [{"text": "rare one", "label": "rare"},
                                                           {"text": "rare two", "label": "rare"}])


def _malformed_row(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("text,label\nfine,pos\nalso fine,neg\nbroken,row,with,extra\nok,pos\n")
    return str(path)


def _bad_json(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", toy_rows(6))
    with open(path, "a") as handle:
        handle.write("{'text': not json}\n")
    return path


def _no_class_folders(tmp_path):
    root = tmp_path / "folders"
    root.mkdir()
    (root / "loose.txt").write_text("a file but no class folder")
    return str(root)


CASES = {
    "missing file": (_missing, ["nope.csv' is neither a dataset name", "nor an existing file or directory"]),
    "empty file": (_empty, ["empty.csv: file is empty"]),
    "header only": (_header_only, ["header.csv: file has no data rows"]),
    "unknown column": (_unknown_column, ["column 'text' not found; available columns: body, label",
                                         "--text-column"]),
    "missing labels": (_nan_labels, ["1 row(s) have no label (data row 13)", "--drop-invalid"]),
    "empty texts": (_empty_text, ["1 row(s) have empty text (data row 13)", "--drop-invalid"]),
    "single class": (_single_class, ["needs at least 2 classes, found only 'pos'"]),
    "class too small": (_tiny_class, ["class 'rare' has 2 example(s)", "add examples or remove the class"]),
    "malformed csv row": (_malformed_row, ["bad.csv line 4: malformed row", "Expected 2 fields"]),
    "malformed jsonl": (_bad_json, ["bad.jsonl line 7: not valid JSON"]),
    "no class folders": (_no_class_folders, ["no class folders with files found", "/<class>/*.txt"]),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_gives_one_line_and_exit_2(case, tmp_path, capsys):
    make, expected = CASES[case]
    out = tmp_path / "run"
    code = run.main(["--data", make(tmp_path), "--out", str(out), "--epochs", "1"])
    stderr = capsys.readouterr().err
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tfclf: error: ")
    for fragment in expected:
        assert fragment in lines[0]
    assert not out.exists() and not (tmp_path / "run.partial").exists()


def test_bad_flag_value_is_one_line(tmp_path, capsys):
    assert run.main(["--data", "sms_spam", "--opt", "adagrad", "--out", str(tmp_path / "r")]) == 2
    assert "--opt 'adagrad' is unknown; choose one of: adamw, adam, sgd, rmsprop" in capsys.readouterr().err


def test_existing_finished_run_is_not_overwritten(tmp_path, capsys):
    out = tmp_path / "done"
    out.mkdir()
    (out / "metrics.json").write_text("{}")
    code = run.main(["--data", write_csv(tmp_path / "t.csv", toy_rows(30)), "--out", str(out)])
    assert code == 2 and "a finished run is already there" in capsys.readouterr().err
    assert (out / "metrics.json").read_text() == "{}"


def test_cli_subprocess_has_no_traceback(tmp_path):
    """The real `python -m tfclf.run` process: exit status 2 and a single stderr line."""
    result = subprocess.run([sys.executable, "-m", "tfclf.run", "--data", _empty(tmp_path),
                             "--out", str(tmp_path / "r")], capture_output=True, text=True, cwd=tmp_path,
                            env=repo_env())
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"tfclf: error: {tmp_path}/empty.csv: file is empty; "
                                                  "give a file with a header row and data rows"]
    assert "Traceback" not in result.stderr + result.stdout
