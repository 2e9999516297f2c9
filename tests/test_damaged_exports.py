"""Damaged exports (issue 29 item 2): a truncated or altered variables file, a cut-short saved_model.pb or a
missing variables/ is one line naming the file and what is wrong, exit 2, from `predict`, `evaluate` and
`--teacher`, through the one function that verifies an export (export.verify, called by export.load)."""
import os
import shutil

import pytest

from conftest import toy_rows, write_csv
from tfclf import evaluate, predict, run
from tfclf.serving import export

DATA_FILE = os.path.join("variables", "variables.data-00000-of-00001")


def _length_model():
    """Strings -> 2 logits from a Dense layer on the text length: a model with weights, built in a second."""
    from tfclf._backend import keras, tf
    text = keras.Input(shape=(), dtype=tf.string)
    length = keras.layers.Lambda(lambda t: tf.cast(tf.strings.length(t), tf.float32)[:, None])(text)
    return keras.Model(text, keras.layers.Dense(2, kernel_initializer="ones")(length))


@pytest.fixture(scope="module")
def whole_export(tmp_path_factory):
    return export.export(_length_model(), ["neg", "pos"], str(tmp_path_factory.mktemp("whole") / "m"), {})


def _truncate(path, keep: float = 0.5):
    data = open(path, "rb").read()
    open(path, "wb").write(data[:int(len(data) * keep)])


def _flip_last_byte(path):
    data = bytearray(open(path, "rb").read())
    data[-1] ^= 0xFF
    open(path, "wb").write(bytes(data))


DAMAGES = {  # how the copy is damaged, and the fragment of the one line (after the copy's path)
    "truncated variables data": (lambda root: _truncate(os.path.join(root, DATA_FILE)),
                                 f"/{DATA_FILE}: ", "(cut short); export the model again"),
    "cut-short saved_model.pb": (lambda root: _truncate(os.path.join(root, "saved_model.pb")),
                                 "/saved_model.pb: ", "(cut short)"),
    "no variables directory": (lambda root: shutil.rmtree(os.path.join(root, "variables")),
                               "/variables: missing from the export", ""),
    "altered variables data": (lambda root: _flip_last_byte(os.path.join(root, DATA_FILE)),
                               f"/{DATA_FILE}: its content differs from what the export wrote (damaged)", ""),
}


def _damaged(whole_export, tmp_path, case, manifest: bool = True) -> str:
    root = str(tmp_path / "copy" / "1")
    shutil.copytree(whole_export, root)
    if not manifest:
        os.remove(os.path.join(root, export.EXTRA, export.MANIFEST))
    DAMAGES[case][0](root)
    return root


def _one_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tfclf: error: ") and "Traceback" not in captured.out, lines
    return lines[0]


def test_a_whole_export_verifies_and_lists_every_file(whole_export):
    export.verify(whole_export)
    listed = export.read_extra(whole_export, export.MANIFEST)["files"]
    assert {"saved_model.pb", DATA_FILE, os.path.join("variables", "variables.index"),
            os.path.join(export.EXTRA, "labels.json")} <= set(listed)


@pytest.mark.parametrize("case", DAMAGES)
def test_predict_evaluate_and_teacher_name_the_damaged_file(case, whole_export, tmp_path, capsys):
    root = _damaged(whole_export, tmp_path, case)
    _, fragment, more = DAMAGES[case]
    assert predict.main(["--model", root, "some text"]) == 2
    line = _one_line(capsys)
    assert root + fragment in line and more in line, line
    data = write_csv(tmp_path / "t.csv", toy_rows(40))
    assert evaluate.main(["--model", root, "--data", data, "--out", str(tmp_path / "ev")]) == 2
    assert root + fragment in _one_line(capsys)
    assert not (tmp_path / "ev").exists() and not (tmp_path / "ev.partial").exists()
    assert run.main(["--data", data, "--teacher", root, "--encoder", "bow", "--out", str(tmp_path / "run"),
                     "--skip-export"]) == 2
    assert root + fragment in _one_line(capsys)
    assert not (tmp_path / "run").exists() and not (tmp_path / "run.partial").exists()


@pytest.mark.parametrize("case", ["truncated variables data", "no variables directory"])
def test_an_export_from_before_manifests_is_one_line_too(case, whole_export, tmp_path, capsys):
    root = _damaged(whole_export, tmp_path, case, manifest=False)
    assert predict.main(["--model", root, "some text"]) == 2
    line = _one_line(capsys)
    assert line.startswith(f"tfclf: error: {root}") and "export the model again" in line, line
