"""Exported SavedModels take raw strings and need nothing but tensorflow + tensorflow_text."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import shrunk_config, tensorflow_only_predictions, toy_rows, write_csv
from tfclf import config as config_lib, predict as predict_cli
from tfclf.jobs import training_run
from tfclf.serving import export


def _check_export_matches_run(result):
    predictions = pd.read_csv(os.path.join(result.run_dir, "predictions.csv"), keep_default_na=False)
    texts = predictions["text"].tolist() + ["", "word " * 3000]  # empty and very long texts work too
    fresh = tensorflow_only_predictions(result.export_path, texts)
    assert fresh["imported"] == []
    expected = predictions[[c for c in predictions.columns if c.startswith("p_")]].to_numpy()
    np.testing.assert_allclose(np.array(fresh["p"])[:len(expected)], expected, atol=1e-5)
    assert fresh["name"][:len(expected)] == predictions["predicted"].tolist()
    assert len(fresh["p"]) == len(texts)
    from tfclf._backend import tf
    variables = [name for name, _ in tf.train.list_variables(os.path.join(result.export_path, "variables", "variables"))]
    assert variables and not [name for name in variables if "optimizer" in name]  # weights only


@pytest.fixture(scope="module")
def bow_run(tmp_path_factory):
    """One bow run (80 toy texts, 4 epochs) and its export, shared by the export, predict and evaluate tests."""
    root = tmp_path_factory.mktemp("bow")
    return training_run.train(shrunk_config(root, write_csv(root / "t.csv", toy_rows(80)), epochs=4))


def test_bow_export_loads_without_tfclf_and_matches(bow_run, tmp_path):
    result = bow_run
    assert result.export_path.endswith(os.path.join("saved_models", "run", "1"))
    extra = os.path.join(result.export_path, export.EXTRA)
    assert json.load(open(os.path.join(extra, "labels.json"))) == ["neg", "pos"]
    assert json.load(open(os.path.join(extra, "config.json")))["train"]["epochs"] == 4
    _check_export_matches_run(result)


# The transformer's export: test_transformer.py::test_savedmodel_encoder_fine_tunes_learns_and_its_export_...


def test_versions_increment_and_never_overwrite(tmp_path):
    from tfclf._backend import keras, tf
    texts = keras.Input(shape=(), dtype=tf.string)
    lengths = keras.layers.Lambda(lambda t: tf.stack([tf.cast(tf.strings.length(t), tf.float32),
                                                      1.5 * tf.ones_like(t, tf.float32)], axis=1))(texts)
    model = keras.Model(texts, lengths)
    first = export.export(model, ["long", "short"], str(tmp_path / "m"), {})
    second = export.export(model, ["long", "short"], str(tmp_path / "m"), {})
    assert [os.path.basename(first), os.path.basename(second)] == ["1", "2"]
    assert sorted(os.listdir(tmp_path / "m")) == ["1", "2"]  # no staging directory left
    serve = export.load(second)
    assert [n.decode() for n in serve(text=tf.constant(["abc", ""]))["class_name"].numpy()] == ["long", "short"]


def test_predict_cli_scores_arguments_and_files(bow_run, tmp_path, capsys):
    result = bow_run
    capsys.readouterr()  # drop anything printed before
    assert predict_cli.main(["--model", result.export_path, "great wonderful film", ""]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("pos\t") and len(lines) == 2
    source = write_csv(tmp_path / "new.csv", toy_rows(30, seed=9))
    assert predict_cli.main(["--model", result.export_path, "--input", source, "--output", str(tmp_path / "o.csv")]) == 0
    scored = pd.read_csv(tmp_path / "o.csv")
    assert len(scored) == 30 and (scored["predicted"] == scored["label"]).mean() > 0.8
    assert predict_cli.main(["--model", str(tmp_path), "x"]) == 2
    assert "not a tfclf run directory or exported model" in capsys.readouterr().err


def test_evaluate_cli_reports_on_a_new_labelled_file(bow_run, tmp_path, capsys):
    from tfclf import evaluate
    result = bow_run
    source = write_csv(tmp_path / "new.csv", toy_rows(40, seed=3))
    assert evaluate.main(["--model", result.export_path, "--data", source, "--out", str(tmp_path / "ev")]) == 0
    metrics = json.load(open(tmp_path / "ev" / "metrics.json"))
    assert metrics["num_test"] == 40 and metrics["test"]["accuracy"] > 0.8
    assert metrics["test"]["per_class"]["pos"]["support"] == 20
    for name in ("report.txt", "predictions.csv", "confusion_matrix.png"):
        assert (tmp_path / "ev" / name).exists()
    other = write_csv(tmp_path / "other.csv", toy_rows(12, classes=("neg", "meh")))
    capsys.readouterr()
    assert evaluate.main(["--model", result.export_path, "--data", other, "--out", str(tmp_path / "e2")]) == 2
    assert "labels ['meh'] are not among the model's classes" in capsys.readouterr().err


def _saved_functions(path) -> int:
    """How many function objects a SavedModel's object graph holds (a traced Keras layer adds two or more)."""
    from tensorflow.core.protobuf import saved_model_pb2
    saved = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as handle:
        saved.ParseFromString(handle.read())
    return sum(node.WhichOneof("kind") == "function" for node in saved.meta_graphs[0].object_graph_def.nodes)


def test_an_export_holds_its_signature_not_the_layers_traces(tmp_path):
    """tf-keras would trace every layer's call into the export (8 of the default job's 10 s of export, half of
    its load time); the export keeps the serving signature's graph only, and serves the same answers."""
    from tfclf._backend import keras, tf
    from tfclf.serving import signatures
    texts = keras.Input(shape=(), dtype=tf.string)
    hidden = keras.layers.Lambda(lambda t: tf.stack([tf.cast(tf.strings.length(t), tf.float32),
                                                     3.0 * tf.ones_like(t, tf.float32)], axis=1))(texts)
    model = keras.Model(texts, keras.layers.Dense(2, name="dense")(keras.layers.Dense(4, name="hidden")(hidden)))
    ours = export.export(model, ["a", "b"], str(tmp_path / "m"), {})
    module = signatures.Serving(model, ["a", "b"])
    tf.saved_model.save(module, str(tmp_path / "traced"), signatures={"serving_default": module.serve})
    assert _saved_functions(ours) == 1 < _saved_functions(tmp_path / "traced")  # serve; the layers' traces
    batch = tf.constant(["", "four", "a longer text"])
    np.testing.assert_array_equal(export.load(ours)(text=batch)["probabilities"].numpy(),
                                  export.load(str(tmp_path / "traced"))(text=batch)["probabilities"].numpy())


def test_failed_or_killed_export_leaves_no_version(tmp_path, monkeypatch):
    from tfclf._backend import keras, tf
    texts = keras.Input(shape=(), dtype=tf.string)
    model = keras.Model(texts, keras.layers.Lambda(lambda t: tf.zeros([tf.shape(t)[0], 2]))(texts))
    root = tmp_path / "m"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (root / f".staging-{dead.stdout.strip()}" / "variables").mkdir(parents=True)  # a killed exporter's leftovers

    def crash(module, path, signatures):
        os.makedirs(os.path.join(path, "variables"))
        open(os.path.join(path, "saved_model.pb"), "w").write("half")
        raise OSError("disk full")
    monkeypatch.setattr(tf.saved_model, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        export.export(model, ["a", "b"], str(root), {})
    assert os.listdir(root) == []


# The recurrent family's export: test_lstm.py::test_recurrent_models_learn_separable_toy_set[bilstm-1].


# --- cleaning travels inside the export ---

CLEAN_STEPS = "html,urls,lowercase,punctuation,whitespace"


def _raw_rows(count: int, seed: int = 0):
    """toy_rows wrapped in HTML, URLs and capitals that the cleaning removes; each ends with its key 'ID<n>!'."""
    rows = []
    for row in toy_rows(count, seed=seed):
        *words, number = row["text"].split()
        words[0] = words[0].upper()
        text = (f"<p>{' '.join(words)}</p> &amp; see https://Example.com/{number}?q=1 or "
                f"WWW.Site.ORG/x , ID{number}!")
        rows.append({"text": text, "label": row["label"]})
    return rows


def _key(text: str) -> str:
    return re.search(r"id(\d+)", text, re.IGNORECASE).group(1)


@pytest.fixture(scope="module")
def cleaned_run(tmp_path_factory):
    """A tiny bow model trained with --clean html,urls,lowercase,punctuation,whitespace on raw texts."""
    root = tmp_path_factory.mktemp("cleaned")
    rows = _raw_rows(80)
    config = config_lib.from_flat({"data": write_csv(root / "t.csv", rows), "encoder": "bow", "out": str(root / "run"), "epochs": 3,
                                   "batch_size": 8, "embedding_dim": 16, "vocab_size": 200, "lr": 0.02,
                                   "clean": CLEAN_STEPS, "export_dir": str(root / "saved_models")})
    result = training_run.train(config)
    predictions = pd.read_csv(os.path.join(result.run_dir, "predictions.csv"), keep_default_na=False)
    raw = {_key(row["text"]): row for row in rows}
    return result, predictions, [raw[_key(text)] for text in predictions["text"]]


def test_export_cleans_raw_text_like_training(cleaned_run, tmp_path):
    """The run scored cleaned test texts; the export, given the raw ones, must score them the same."""
    result, predictions, raw_rows = cleaned_run
    rows_by_number = dict(enumerate(_raw_rows(80), start=1))
    # predictions.csv holds each text as the user gave it (the model read it cleaned) and the data row it came
    # from, so it joins back to the file.
    assert all("<p>" in text or "http" in text or "ID" in text for text in predictions["text"])
    assert [rows_by_number[int(row.split()[-1])]["text"] for row in predictions["row"]] == predictions["text"].tolist()
    assert json.load(open(os.path.join(result.export_path, export.EXTRA, "config.json")))["data"]["clean"] == \
        CLEAN_STEPS.split(",")
    fresh = tensorflow_only_predictions(result.export_path, [row["text"] for row in raw_rows])
    assert fresh["imported"] == []
    expected = predictions[[c for c in predictions.columns if c.startswith("p_")]].to_numpy()
    np.testing.assert_allclose(np.array(fresh["p"]), expected, atol=1e-5)
    assert fresh["name"] == predictions["predicted"].tolist()


def test_evaluate_on_raw_file_reproduces_the_run(cleaned_run, tmp_path):
    """tfclf.evaluate on the raw test rows: the run's test predictions and metrics, from the shipped model."""
    from tfclf import evaluate
    result, predictions, raw_rows = cleaned_run
    source = write_csv(tmp_path / "raw_test.csv", raw_rows)
    assert evaluate.main(["--model", result.export_path, "--data", source, "--out", str(tmp_path / "ev")]) == 0
    scored = pd.read_csv(tmp_path / "ev" / "predictions.csv", keep_default_na=False)
    assert [_key(text) for text in scored["text"]] == [_key(text) for text in predictions["text"]]
    columns = [c for c in predictions.columns if c.startswith("p_")]
    np.testing.assert_allclose(scored[columns].to_numpy(), predictions[columns].to_numpy(), atol=1e-5)
    evaluated = json.load(open(tmp_path / "ev" / "metrics.json"))["test"]
    for name in ("accuracy", "macro_f1", "loss"):
        assert evaluated[name] == pytest.approx(result.metrics["test"][name], abs=1e-5)
