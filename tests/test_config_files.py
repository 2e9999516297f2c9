"""Study and config files say what is wrong with them (issue 29 item 4): a key given twice at any depth, a grid
value listed twice (or two spellings of one trial), a section given a scalar. One line, exit 2, nothing run."""
import pytest

from conftest import toy_rows, write_csv
from tfclf import grid, run


def _one_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tfclf: error: "), lines
    return lines[0]


STUDY_CASES = {  # the study file after its base line, and the fragment of the one line
    "grid axis written twice": ("grid:\n  lr: [0.01, 0.1]\n  lr: [0.5]\n",
                                "s.yaml line 6: key 'lr' is given twice (first on line 5); YAML would keep only the "
                                "last silently"),
    "base key written twice": ("  epochs: 1\n  epochs: 2\ngrid: {lr: [0.1]}\n",
                               "s.yaml line 5: key 'epochs' is given twice (first on line 4)"),
    "variant key written twice": ("variants:\n  - {encoder: bow, lr: 0.1, lr: 0.2}\ngrid: {epochs: [1]}\n",
                                  "key 'lr' is given twice"),
    "top-level key written twice": ("grid: {lr: [0.1]}\ngrid: {lr: [0.2]}\n", "key 'grid' is given twice"),
    "repeated value": ("grid: {lr: [0.01, 0.1, 0.01]}\n",
                       "grid.lr lists 0.01 more than once, which would run once and be listed twice; remove the "
                       "repeat"),
    "same value spelled twice": ("grid: {lr: [0.001, '1e-3']}\n",
                                 "trials 'lr=0.001' and 'lr=1e-3' (seed 42) are the same run config"),
    "base given a scalar": (None, "base holds 'bow'; it must be a mapping of run config keys to values"),
    "grid given a list": ("grid: [lr, 0.1]\n", "grid holds ['lr', 0.1]; it must be a mapping of config keys to "
                                               "lists of values"),
}


@pytest.mark.parametrize("case", STUDY_CASES)
def test_study_file_mistakes_are_one_line_before_any_trial(case, tmp_path, capsys):
    rest, fragment = STUDY_CASES[case]
    data = write_csv(tmp_path / "t.csv", toy_rows(40))
    spec = tmp_path / "s.yaml"
    spec.write_text("base: bow\n" if rest is None else f"base:\n  data: {data}\n  encoder: bow\n{rest}")
    assert grid.main([str(spec), "--out", str(tmp_path / "g")]) == 2
    assert fragment in _one_line(capsys)
    assert not (tmp_path / "g").exists()


@pytest.mark.parametrize("text, fragment", [
    ("epochs: 1\nlr: 0.1\nepochs: 2\n", "c.yaml line 3: key 'epochs' is given twice (first on line 1)"),
    ("train:\n  lr: 0.1\n  lr: 0.2\n", "c.yaml line 3: key 'lr' is given twice (first on line 2)"),
    ('{"epochs": 1, "epochs": 2}\n', "key 'epochs' is given twice"),
    ("model: bow\n", "section 'model' holds 'bow', but a section must be a mapping of its keys (encoder, "
                     "vocab_size"),
    ("train: [1, 2]\n", "write e.g. train: {opt: ...}"),
])
def test_config_file_mistakes_are_one_line(text, fragment, tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    out = tmp_path / "run"
    assert run.main(["--config", str(path), "--data", write_csv(tmp_path / "t.csv", toy_rows(40)),
                     "--out", str(out)]) == 2
    assert fragment in _one_line(capsys)
    assert not out.exists() and not (tmp_path / "run.partial").exists()
