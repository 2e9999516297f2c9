"""The command line's edges: --version, `tfclf list`, usage lines, --weight-decay where it cannot apply, and
predict / evaluate on any of an export's directories, with CSV on stdout and a deterministic --out."""
import io
import json
import os

import pandas as pd
import pytest

import tfclf
from conftest import write_csv
from tfclf import cli, evaluate, predict, run
from tfclf.serving import export


def _one_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tfclf: error: "), lines
    return lines[0]


def test_version_from_the_command_and_from_the_module(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"tfclf {tfclf.__version__}"
    with pytest.raises(SystemExit) as exited:
        run.main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out.strip() == f"tfclf {tfclf.__version__}"


def test_list_without_a_table_lists_the_tables(capsys):
    assert cli.main(["list"]) == 0
    listed = capsys.readouterr().out
    assert "encoders" in listed and "calibrations" in listed and "tfclf list TABLE" in listed
    assert cli.main(["list", "nope"]) == 2
    assert "tfclf list nope: not a table; choose one of: encoders" in _one_line(capsys)


def test_usage_says_what_the_user_typed(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    assert capsys.readouterr().out.startswith("usage: tfclf train ")
    with pytest.raises(SystemExit):
        run.main(["--help"])
    assert capsys.readouterr().out.startswith("usage: python -m tfclf.run ")


@pytest.mark.parametrize("flags", [["--opt", "adam", "--weight-decay", "0.05"],
                                   ["--opt", "sgd", "--weight-decay", "0.01"],  # the default value, given
                                   ["--opt", "rmsprop", "--weight-decay", "0.001"]])
def test_a_weight_decay_the_optimizer_would_ignore_is_refused(flags, tmp_path, toy_csv, capsys):
    assert run.main(["--data", toy_csv, "--encoder", "bow", "--out", str(tmp_path / "r"), *flags]) == 2
    line = _one_line(capsys)
    assert f"--weight-decay {flags[3]}: only --opt adamw applies a weight decay, and --opt {flags[1]} would " \
           "ignore it; use --opt adamw, or drop --weight-decay" in line
    assert not (tmp_path / "r").exists()
    for fine in (["--opt", "adam"], ["--opt", "adam", "--weight-decay", "0"], ["--weight-decay", "0.05"]):
        run.config_from_args(["--data", toy_csv, "--encoder", "bow", *fine])


def test_the_distillation_temperature_is_renamed_and_old_configs_still_load(tmp_path, toy_csv, capsys):
    from tfclf import config as config_lib
    assert run.main(["--data", toy_csv, "--encoder", "bow", "--out", str(tmp_path / "r"), "--temperature", "3"]) == 2
    line = _one_line(capsys)
    assert "--temperature was renamed to --distill-temperature" in line and "use --distill-temperature 3" in line
    assert not (tmp_path / "r").exists()
    assert run.config_from_args(["--data", toy_csv, "--distill-temperature", "3"]).train.distill_temperature == 3.0
    (tmp_path / "old.yaml").write_text("temperature: 3\n")
    with pytest.raises(ValueError, match="config key 'temperature' was renamed to 'distill_temperature'"):
        config_lib.read_file(str(tmp_path / "old.yaml"))
    # A config.json saved before the rename loads, and keeps its digest (so its default run directory).
    new = config_lib.from_flat({"data": toy_csv, "distill_temperature": 3.0})
    saved = new.to_dict()
    saved["train"]["temperature"] = saved["train"].pop("distill_temperature")
    (tmp_path / "config.json").write_text(json.dumps(saved))
    assert config_lib.load(str(tmp_path / "config.json")) == new
    assert config_lib.digest_of(saved) == new.digest()
    assert config_lib.digest_of(new.to_dict()) != config_lib.digest_of({**new.to_dict(), "train": {}})


# --- predict and evaluate on an export built in a second (no training) ---

def _keyword_model():
    """Strings -> 2 logits: 'good' in the text pushes towards pos."""
    from tfclf._backend import keras, tf
    text = keras.Input(shape=(), dtype=tf.string)
    good = keras.layers.Lambda(
        lambda t: tf.cast(tf.strings.regex_full_match(t, ".*good.*"), tf.float32)[:, None])(text)
    return keras.Model(text, keras.layers.Dense(2, kernel_initializer=keras.initializers.Constant([[-2.0, 2.0]]),
                                                bias_initializer="zeros")(good))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """{"root": saved_models/kw, "version": its /1, "run": a run directory whose metrics.json names /1}."""
    root = tmp_path_factory.mktemp("exports")
    version = export.export(_keyword_model(), ["neg", "pos"], str(root / "kw"), {})
    run_dir = root / "run"
    run_dir.mkdir()
    (run_dir / "metrics.json").write_text(json.dumps({"export_path": version}))
    return {"root": str(root / "kw"), "version": version, "run": str(run_dir)}


def test_predict_takes_a_version_a_model_root_or_a_run_and_writes_csv_to_stdout(exported, tmp_path, capsys):
    source = write_csv(tmp_path / "in.csv", [{"id": "a", "body": "a good day"}, {"id": "b", "body": "a bad day"}],
                       columns=("id", "body"))
    tables = []
    for model in (exported["version"], exported["root"], exported["run"]):
        assert predict.main(["--model", model, "--input", source, "--text-column", "body"]) == 0
        tables.append(pd.read_csv(io.StringIO(capsys.readouterr().out)))
    for table in tables:
        # the input's columns once (no joined `text` copy), the decision and a probability per class
        assert list(table.columns) == ["id", "body", "predicted", "confidence", "p_neg", "p_pos"]
        assert table["predicted"].tolist() == ["pos", "neg"] and table["p_pos"][0] > 0.8
        assert (table["p_neg"] + table["p_pos"]).round(5).eq(1.0).all()
    assert predict.main(["--model", exported["root"], "--input", source, "--text-column", "body", "--with-text",
                         "--output", str(tmp_path / "o.csv")]) == 0
    assert "wrote 2 predictions" in capsys.readouterr().err
    assert pd.read_csv(tmp_path / "o.csv")["text"].tolist() == ["a good day", "a bad day"]
    assert predict.main(["--model", str(tmp_path), "x"]) == 2
    assert f"--model {tmp_path}: not a tfclf run directory or exported model" in _one_line(capsys)


def test_evaluate_out_is_derived_from_model_and_data(exported, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    data = write_csv(tmp_path / "labelled.csv", [{"text": f"a good one {i}", "label": "pos"} for i in range(4)]
                     + [{"text": f"a bad one {i}", "label": "neg"} for i in range(4)])
    out = evaluate.default_out(exported["version"], data)
    assert out == evaluate.default_out(exported["version"], data)  # the same call, the same directory
    assert out.startswith(os.path.join("runs", "eval-kw-1-labelled-"))
    assert out != evaluate.default_out(exported["version"], write_csv(tmp_path / "other.csv", []))
    assert evaluate.main(["--model", exported["run"], "--data", data]) == 0
    assert f"report in {out}/" in capsys.readouterr().out and os.path.isfile(os.path.join(out, "metrics.json"))
    assert evaluate.main(["--model", exported["root"], "--data", data]) == 2  # the same evaluation again
    assert f"--out {out}: exists" in _one_line(capsys)
