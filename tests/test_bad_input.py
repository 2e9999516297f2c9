"""Every kind of bad input: one line naming the place and the fix, exit 2, no traceback, no run dir."""
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import interrupt_when_imported, toy_rows, write_csv, write_jsonl, repo_env
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


def _jsonl_plus_line(path, rows, line: str):
    """A JSONL file of `rows` with one raw `line` appended (what json.dumps would never write)."""
    write_jsonl(path, rows)
    with open(path, "a") as handle:
        handle.write(line + "\n")
    return str(path)


def _bad_json(tmp_path):
    return _jsonl_plus_line(tmp_path / "bad.jsonl", toy_rows(6), "{'text': not json}")


def _no_class_folders(tmp_path):
    root = tmp_path / "folders"
    root.mkdir()
    (root / "loose.txt").write_text("a file but no class folder")
    return str(root)


def _look_alike_labels(tmp_path):
    rows = toy_rows(30, classes=("spam", "ham")) + [{"text": "WIN now", "label": "Spam"}]
    return write_csv(tmp_path / "alike.csv", rows)


def _nan_jsonl_label(tmp_path):
    return _jsonl_plus_line(tmp_path / "nan.jsonl", toy_rows(12), '{"text": "no label here", "label": NaN}')


def _gzip_named_csv(tmp_path):
    import gzip
    path = tmp_path / "data.csv"
    path.write_bytes(gzip.compress(b"text,label\ngreat,pos\nawful,neg\n"))
    return str(path)


def _all_duplicates(tmp_path):
    return write_csv(tmp_path / "dups.csv", [{"text": f"same text {i % 2}", "label": ("pos", "neg")[i % 2]}
                                             for i in range(40)])


def _class_only_in_test(tmp_path):
    from conftest import write_folders
    root = tmp_path / "imdb"
    write_folders(root, toy_rows(20), split="train")
    write_folders(root, toy_rows(6, classes=("pos", "neg", "neutral")), split="test")
    return str(root)


def _utf16_without_bom(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_bytes("text,label\n".encode("utf-16-le") + b"".join(
        f"{row['text']},{row['label']}\n".encode("utf-16-le") for row in toy_rows(20)))
    return str(path)


def _few_per_class(tmp_path):
    return write_csv(tmp_path / "few.csv", toy_rows(10))  # 5 per class: train/val/test cannot all get one


CASES = {
    "missing file": (_missing, ["nope.csv' is neither a dataset name", "nor an existing file or directory"]),
    "empty file": (_empty, ["empty.csv: file is empty"]),
    "header only": (_header_only, ["header.csv: file has no data rows"]),
    "unknown column": (_unknown_column, ["column 'text' not found; available columns: body, label",
                                         "--text-column"]),
    "missing labels": (_nan_labels, ["1 row(s) have no label (data row 13)", "--drop-invalid"]),
    "empty texts": (_empty_text, ["1 row(s) have empty text (data row 13)", "--drop-invalid"]),
    "single class": (_single_class, ["needs at least 2 classes, found only 'pos'"]),
    "class too small": (_tiny_class, ["class 'rare' has 2 example(s)", "every class needs at least 4 here",
                                      "add examples, remove the class"]),
    "few per class": (_few_per_class, ["has 5 example(s) in the data", "every class needs at least 6 here"]),
    "look-alike labels": (_look_alike_labels, ["labels that look alike would be separate classes ('Spam' / 'spam')"]),
    "NaN label in JSONL": (_nan_jsonl_label, ["1 row(s) have no label (line 13)"]),
    "gzip named .csv": (_gzip_named_csv, ["data.csv: not a text file (compressed or binary data)"]),
    "UTF-16 without BOM": (_utf16_without_bom, ["wide.csv: looks like UTF-16 (little-endian) text without a "
                                                "byte-order mark", "iconv -f UTF-16LE -t UTF-8"]),
    "all duplicates": (_all_duplicates, ["split is empty after removing", "exact duplicate(s) of training texts"]),
    "class only in test": (_class_only_in_test, ["class(es) ['neutral'] occur only in the test split"]),
    "malformed csv row": (_malformed_row, ["bad.csv line 4: malformed row", "Expected 2 fields"]),
    "malformed jsonl": (_bad_json, ["bad.jsonl line 7: not valid JSON"]),
    "no class folders": (_no_class_folders, ["no class folders with .txt files found", "/<class>/*.txt"]),
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


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])
def test_utf16_with_a_byte_order_mark_is_read_as_text(encoding, tmp_path):
    """A BOM says UTF-16: the file reads as its UTF-8 twin does (utf-16-be: written with a BOM by hand)."""
    from tfclf.data import readers
    rows = toy_rows(12) + [{"text": "café, naïve 😀", "label": "pos"}]
    utf8 = write_csv(tmp_path / "a.csv", rows)
    text = open(utf8, encoding="utf-8").read()
    wide = tmp_path / "b.csv"
    wide.write_bytes(text.encode("utf-16") if encoding == "utf-16" else "\ufeff".encode("utf-16-be") + text.encode("utf-16-be"))
    expected, _ = readers.read_file(utf8, ("text",), "label")
    table, stats = readers.read_file(str(wide), ("text",), "label")
    assert table.equals(expected) and stats["decode_replacements"] == 0
    assert readers.read_texts(str(wide), ("text",))[1] == readers.read_texts(utf8, ("text",))[1]


def test_bad_flag_value_is_one_line(tmp_path, capsys):
    assert run.main(["--data", "sms_spam", "--opt", "adagrad", "--out", str(tmp_path / "r")]) == 2
    assert "--opt 'adagrad' is unknown; did you mean adam or adamw? choose one of: adamw, adam, sgd, rmsprop" in \
        capsys.readouterr().err


def test_existing_finished_run_is_not_overwritten(tmp_path, capsys):
    out = tmp_path / "done"
    out.mkdir()
    (out / "metrics.json").write_text("{}")
    code = run.main(["--data", write_csv(tmp_path / "t.csv", toy_rows(30)), "--out", str(out)])
    assert code == 2 and "a finished run is already there" in capsys.readouterr().err
    assert (out / "metrics.json").read_text() == "{}"


# slow: a TensorFlow start, 19 s; the quick loop keeps real processes in test_run and the Ctrl-C tests
@pytest.mark.slow
def test_cli_subprocess_has_no_traceback(tmp_path):
    """The real `python -m tfclf.run` process: exit status 2 and a single stderr line."""
    result = subprocess.run([sys.executable, "-m", "tfclf.run", "--data", _empty(tmp_path),
                             "--out", str(tmp_path / "r")], capture_output=True, text=True, cwd=tmp_path,
                            env=repo_env())
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"tfclf: error: {tmp_path}/empty.csv: file is empty; "
                                                  "give a file with a header row and data rows"]
    assert "Traceback" not in result.stderr + result.stdout


def _config_file(tmp_path, text: bytes):
    path = tmp_path / "c.yaml"
    path.write_bytes(text)
    return ["--config", str(path)]


FLAG_CASES = {  # (flags after --data <toy csv>, fragments of the one line)
    "lr nan": (lambda tmp: ["--lr", "nan"], ["--lr 'nan': cannot read it as float; give a finite number"]),
    "lr inf": (lambda tmp: ["--lr", "inf"], ["--lr 'inf': cannot read it as float"]),
    "weight decay nan": (lambda tmp: ["--weight-decay", "nan"], ["--weight-decay 'nan'"]),
    "max examples 1": (lambda tmp: ["--max-examples", "1"], ["--max-examples 1: too few for a stratified sample"]),
    "max examples 39 of 40": (lambda tmp: ["--max-examples", "39"], ["--max-examples 39: leaves out 1 of 40 rows",
                                                                     "give at most 38"]),
    "yaml integer key": (lambda tmp: _config_file(tmp, b"1: 2\n"), ["config key 1 is not a name"]),
    "yaml null key": (lambda tmp: _config_file(tmp, b"~: 2\n"), ["config key None is not a name"]),
    "yaml bool epochs": (lambda tmp: _config_file(tmp, b"epochs: true\n"), ["--epochs True: cannot read it as int"]),
    "config not utf-8": (lambda tmp: _config_file(tmp, b"epochs: 2 # caf\xe9\n"), ["not UTF-8 text"]),
    "lemmatize with export": (lambda tmp: ["--clean", "lowercase,lemmatize"],
                              ["--clean lemmatize cannot run inside the exported SavedModel",
                               "add --skip-export or drop lemmatize"]),
}


@pytest.mark.parametrize("case", FLAG_CASES)
def test_bad_flags_give_one_line_and_exit_2(case, tmp_path, capsys):
    make, expected = FLAG_CASES[case]
    out = tmp_path / "run"
    code = run.main(["--data", write_csv(tmp_path / "t.csv", toy_rows(40)), "--out", str(out), *make(tmp_path)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("tfclf: error: "), lines
    for fragment in expected:
        assert fragment in lines[0]
    assert not out.exists() and not (tmp_path / "run.partial").exists() and not (tmp_path / "run.lock").exists()


def test_predict_checks_its_flags_before_scoring(tmp_path, capsys):
    from tfclf import predict
    assert predict.main(["--model", str(tmp_path), "--batch-size", "0", "x"]) == 2
    assert "--batch-size 0: must be >= 1" in capsys.readouterr().err
    source = write_csv(tmp_path / "in.csv", toy_rows(4))
    assert predict.main(["--model", str(tmp_path), "--input", source, "--output", str(tmp_path / "no" / "o.csv")]) == 2
    assert "its directory does not exist" in capsys.readouterr().err


def test_grid_top_k_must_be_a_number(tmp_path, capsys):
    from tfclf import grid
    path = tmp_path / "s.yaml"
    path.write_text("base: {encoder: bow}\ngrid: {lr: [0.01]}\ntop_k: abc\n")
    assert grid.main([str(path), "--out", str(tmp_path / "g")]) == 2
    assert "top_k 'abc' must be a whole number >= 0" in capsys.readouterr().err


# The points: tfclf's package has run (its handlers are in place: the earliest moment tfclf can answer; before
# it the interpreter itself is starting and a Ctrl-C is Python's: killed by SIGINT, or a site-import error), and
# TensorFlow halfway imported.
@pytest.mark.parametrize("point", ["tfclf", "tensorflow.python.eager.context"])
def test_ctrl_c_while_importing_is_one_line(point, tmp_path):
    """Ctrl-C in the first seconds (the imports, TensorFlow's among them) ends with one line and 130."""
    import signal
    code, err = interrupt_when_imported(["--data", write_csv(tmp_path / "t.csv", toy_rows(40)), "--encoder", "bow",
                                         "--epochs", "1", "--out", str(tmp_path / "r")], tmp_path, point,
                                        signal.SIGINT)
    assert code == 130 and err == ["tfclf: interrupted"], err[-20:]
    assert not (tmp_path / "r").exists() and not (tmp_path / "r.lock").exists()


def test_a_ctrl_c_that_was_swallowed_still_stops_the_command(monkeypatch, capsys):
    """A library's bare `except:` may swallow the KeyboardInterrupt; the command's own record of the Ctrl-C
    stops it where its job starts, with the same line and code."""
    import tfclf
    from tfclf import cli
    monkeypatch.setattr(tfclf, "_interrupt_requested", True)
    ran = []
    assert cli.run_main(lambda: ran.append(1)) == 130 and not ran
    assert capsys.readouterr().err.strip() == "tfclf: interrupted"


@pytest.mark.slow  # two short trainings, about 20 s each on 2 busy cores
@pytest.mark.parametrize("stream", ["off", "on"])
def test_texts_emptied_by_cleaning_leave_training_and_are_scored_as_the_export_scores_them(stream, tmp_path, capsys):
    """20 link-only texts clean to nothing: the run leaves them out of training only, in memory and streamed
    alike; validation and test keep them, and predictions.csv gives each the probabilities the export gives its
    raw text. Counted in eda.json, metrics.json, a progress line and the summary."""
    import pandas as pd
    links = [{"text": f"https://example{i}.com/only-a-link", "label": ("pos", "neg")[i % 2]} for i in range(20)]
    out = tmp_path / "run"
    code = run.main(["--data", write_csv(tmp_path / "t.csv", toy_rows(60) + links), "--encoder", "bow",
                     "--out", str(out), "--clean", "urls,whitespace", "--epochs", "1", "--stream", stream,
                     "--export-dir", str(tmp_path / "models")])
    printed = capsys.readouterr()
    assert code == 0, printed.err[-800:]
    eda, metrics = json.load(open(out / "eda.json")), json.load(open(out / "metrics.json"))
    scored, left_out = eda["emptied_scored"], eda["emptied_dropped_from_training"]
    assert eda["emptied_by_cleaning"] == 20 and eda["num_rows_read"] == 80 and eda["dropped_invalid_rows"] == 0
    assert left_out + scored["val"] + scored["test"] == 20 and scored["test"] >= 1 and left_out >= 1
    assert metrics["emptied_scored"] == scored and metrics["num_test"] == len(pd.read_csv(out / "predictions.csv"))
    said = f"20 text(s) empty after cleaning: {left_out} left out of training, {scored['val']} validation and"
    assert said in printed.out and printed.out.count(said) == 2  # the progress line and the summary
    predictions = pd.read_csv(out / "predictions.csv", keep_default_na=False)
    emptied = predictions[predictions["text"].str.startswith("https://example")]
    assert len(emptied) == scored["test"]
    from tfclf.serving import export, predict
    served = predict.predict(export.load(metrics["export_path"]), emptied["text"].tolist() + [""])
    columns = [f"p_{name}" for name in ("neg", "pos")]
    assert np.allclose(served["probabilities"][:-1], emptied[columns].to_numpy(), atol=1e-4)
    assert np.allclose(served["probabilities"][-1], served["probabilities"][0], atol=1e-6)  # "" alike
