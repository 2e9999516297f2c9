"""Property-based (issue 29 item 7): Hypothesis writes data files (CSV/TSV/JSONL, encodings, quoting, line
endings, labels, sizes) and picks flags for the quick bow family; every run either finishes or exits 2 with one
`tfclf: error:` line, never raises, and leaves nothing outside its outputs (no .partial, no .lock).

The default suite runs a fixed (derandomized) budget of TFCLF_HYPOTHESIS_EXAMPLES examples (default 10, a few
seconds); a longer search on demand:
    TFCLF_HYPOTHESIS_EXAMPLES=300 python -m pytest tests/test_properties.py --hypothesis-show-statistics
"""
import contextlib
import csv
import io
import json
import os
import shutil
import tempfile

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from conftest import NEGATIVE, POSITIVE  # noqa: E402
from tfclf import run  # noqa: E402

EXAMPLES = int(os.environ.get("TFCLF_HYPOTHESIS_EXAMPLES", "10"))
LABEL_SETS = [["pos", "neg"]] * 4 + [["pos", "neg", "1"], ["pos", "Pos"], ["neg", " neg"], ["1", "1.0", "2"],
                                     ["pos", "neg", ""], ["pos", None], ["a|b", "c"]]
WORDS = POSITIVE + NEGATIVE + ["the", "a", "é", "😀", "\"quoted\"", "comma,word", "tab\tword", "new\nline"]


@st.composite
def datasets(draw):
    rows = draw(st.sampled_from([0, 1, 9, 30, 60, 60]))
    labels = draw(st.sampled_from(LABEL_SETS))
    records = []
    for index in range(rows):
        label = labels[index % len(labels)]
        words = draw(st.lists(st.sampled_from(WORDS), min_size=0, max_size=6))
        records.append({"text": " ".join(words) + f" {index}" if words or index % 7 else "", "label": label})
    kind = draw(st.sampled_from(["csv", "tsv", "jsonl"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "latin-1", "utf-16"]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    return records, kind, encoding, newline, quoting


def _write(directory, records, kind, encoding, newline, quoting) -> str:
    path = os.path.join(directory, f"data.{kind}")
    if kind == "jsonl":
        text = newline.join(json.dumps({"text": r["text"], "label": r["label"]}, ensure_ascii=False)
                            for r in records) + newline
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter="\t" if kind == "tsv" else ",", quoting=quoting, lineterminator=newline)
        writer.writerow(["text", "label"])
        writer.writerows([[r["text"], "" if r["label"] is None else r["label"]] for r in records])
        text = buffer.getvalue()
    with open(path, "wb") as handle:
        handle.write(text.encode(encoding, errors="replace"))
    return path


FLAGS = st.fixed_dictionaries({
    "--seed": st.sampled_from(["0", "7"]),
    "--val-fraction": st.sampled_from(["0.15", "0.3"]),
    "--max-examples": st.sampled_from(["0", "12", "30"]),
    "--clean": st.sampled_from(["", "lowercase", "urls,whitespace"]),
    "--text-column": st.sampled_from(["text", "text", "text", "body"]),
    "--drop-invalid": st.booleans(),
    "--skip-export": st.booleans(),
})


@pytest.mark.slow  # 39 s of Hypothesis runs; the quick loop keeps test_bad_input's cases of the same rule
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(data=datasets(), flags=FLAGS)
def test_every_run_finishes_or_is_one_line(data, flags):
    directory = tempfile.mkdtemp(prefix="tfclf-property-")
    try:
        path = _write(directory, *data)
        argv = ["--data", path, "--out", os.path.join(directory, "run"), "--export-dir",
                os.path.join(directory, "models"), "--encoder", "bow", "--epochs", "1", "--batch-size", "16",
                "--embedding-dim", "4", "--vocab-size", "50"]
        for flag, value in flags.items():
            if isinstance(value, bool):
                argv += [flag] if value else []
            elif value:
                argv += [flag, value]
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = run.main(argv)  # an exception here is the traceback a user would see
        lines = stderr.getvalue().strip().splitlines()
        hypothesis.event("finished" if code == 0 else (lines[-1].split(": ")[-1][:60] if lines else f"exit {code}"))
        created = set(os.listdir(directory)) - {os.path.basename(path)}
        if code == 0:
            assert os.path.isfile(os.path.join(directory, "run", "metrics.json"))
            assert created <= {"run", "models"}, created
        else:
            assert code == 2 and len(lines) == 1 and lines[0].startswith("tfclf: error: "), (code, lines[-3:])
            assert created == set(), created  # nothing written for bad input
    finally:
        shutil.rmtree(directory, ignore_errors=True)
