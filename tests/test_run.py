"""End to end: a shrunk real config trains, evaluates and writes the whole run directory."""
import json
import os
import subprocess
import sys

from conftest import toy_rows, write_csv, repo_env
from tfclf import config as config_lib
from tfclf import provenance
from tfclf.stages import preparing
from tfclf.jobs import training_run

ARTIFACTS = ("config.json", "metrics.json", "eda.json", "predictions.csv", "report.txt",
             "confusion_matrix.png", "curves.png", "class_distribution.png", "length_histogram.png")


def test_bow_learns_a_separable_toy_set_and_writes_artifacts(tmp_path, small_config):
    path = write_csv(tmp_path / "toy.csv", toy_rows(120))
    config = small_config(path, epochs=6)
    result = training_run.train(config)
    assert result.metrics["test"]["accuracy"] >= 0.9  # chance is 0.5
    for name in ARTIFACTS:
        assert os.path.getsize(os.path.join(result.run_dir, name)) > 0, name
    assert not os.path.exists(result.run_dir + ".partial")
    metrics = json.load(open(os.path.join(result.run_dir, "metrics.json")))
    assert set(metrics["test"]) == {"accuracy", "macro_f1", "weighted_f1", "loss", "per_class"}
    assert set(metrics["test"]["per_class"]["pos"]) == {"precision", "recall", "f1", "support"}
    assert metrics["num_train"] + metrics["num_val"] + metrics["num_test"] == 120
    assert metrics["train_examples_per_sec"] > 0 and metrics["wall_seconds"] > 0
    environment = metrics["environment"]  # what it ran on: versions, the CPU and its speed-relevant flags
    import platform
    import tensorflow
    import tfclf
    assert (environment["tfclf"], environment["tensorflow"], environment["python"]) == \
        (tfclf.__version__, tensorflow.__version__, platform.python_version())
    assert environment["cpu"]["model"] and set(environment["cpu"]["flags"]) <= set(provenance.SPEED_FLAGS)
    run_json = json.load(open(os.path.join(result.export_path, "assets.extra", "run.json")))
    assert run_json["environment"] == environment and run_json["precision"] == metrics["precision"]
    saved = config_lib.load(os.path.join(result.run_dir, "config.json"))
    assert saved.train.epochs == 6 and saved.train.lr == config.train.lr and saved.out == config.out
    eda = json.load(open(os.path.join(result.run_dir, "eda.json")))
    assert eda["class_counts"]["train"]["pos"] > 0 and eda["seq_len"] == metrics["seq_len"]
    assert eda["decode_replacements"] == 0 and eda["duplicates_removed"] == metrics["duplicates_removed"]


def test_encoder_defaults_are_resolved_into_the_saved_config(tmp_path):
    config = preparing.resolve(config_lib.from_flat({"data": "sms_spam", "encoder": "lstm", "out": str(tmp_path / "r")}))
    assert (config.train.lr, config.train.epochs) == (2e-3, 0)  # the recurrent family's lr; adaptive training


def test_cli_end_to_end_prints_metrics_and_run_dir(tmp_path):
    path = write_csv(tmp_path / "toy.csv", toy_rows(60))
    out = tmp_path / "cli-run"
    result = subprocess.run([sys.executable, "-m", "tfclf.run", "--data", path, "--encoder", "bow", "--out", str(out),
                             "--epochs", "2", "--batch-size", "8", "--export-dir", str(tmp_path / "models")], capture_output=True, text=True,
                            env=repo_env())
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads([line for line in result.stdout.splitlines() if line.startswith("{")][-1])
    metrics = json.loads((out / "metrics.json").read_text())
    assert summary["run_dir"] == str(out)
    assert summary["test_macro_f1"] == round(metrics["test"]["macro_f1"], 4)  # what it prints is what it wrote
