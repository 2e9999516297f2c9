"""Training engine: losses, schedule, resume after SIGKILL, NaN guard, determinism, early stopping."""
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from conftest import toy_rows, write_csv, build_model, repo_env, hparams_table
from tfclf import config as config_lib
from tfclf.stages import preparing
from tfclf.jobs import training_run
from tfclf.training import fit as training, losses, optimizers
from tfclf._backend import tf



def test_focal_loss_matches_hand_computed_value():
    config = config_lib.from_flat({"loss": "focal", "focal_gamma": 3.0, "focal_alpha": 0.2}).train
    logits = np.array([[2.0, 0.0], [0.5, 1.5]], dtype=np.float32)
    labels = np.array([0, 0])
    p_true = np.exp(logits[:, 0]) / np.exp(logits).sum(axis=1)
    expected = np.mean(-0.2 * (1 - p_true) ** 3 * np.log(p_true))
    assert float(losses.build(config, 2)(labels, logits)) == pytest.approx(expected, rel=1e-5)


def test_label_smoothing_raises_the_loss_of_a_confident_correct_prediction():
    logits, labels = np.array([[8.0, -8.0]], dtype=np.float32), np.array([0])
    plain = float(losses.build(config_lib.from_flat({}).train, 2)(labels, logits))
    smooth = float(losses.build(config_lib.from_flat({"label_smoothing": 0.1}).train, 2)(labels, logits))
    assert plain < 1e-6 < smooth


def test_warmup_then_linear_decay_to_zero():
    schedule = optimizers.WarmupDecay(1.0, total_steps=100, warmup_steps=10)
    values = [float(schedule(step)) for step in (0, 4, 9, 10, 55, 100)]
    assert values == pytest.approx([0.1, 0.5, 1.0, 1.0, 0.5, 0.0])


def test_adamw_does_not_decay_layer_norm_or_bias():
    optimizer, _ = optimizers.build(config_lib.from_flat({"weight_decay": 0.5}).train, 0.1, 10)
    kernel, bias = tf.Variable(np.ones((2, 2), np.float32), name="dense/kernel"), tf.Variable(
        np.ones(2, np.float32), name="dense/bias")
    norm = tf.Variable(np.ones(2, np.float32), name="encoder/LayerNorm/gamma")
    optimizer.apply_gradients([(tf.zeros_like(v), v) for v in (kernel, bias, norm)])
    assert kernel.numpy().max() < 1.0 and bias.numpy().min() == 1.0 and norm.numpy().min() == 1.0


def _command(data, out, epochs):
    return [sys.executable, "-m", "tfclf.run", "--data", data, "--encoder", "bow", "--out", out, "--epochs", str(epochs),
            "--batch-size", "4", "--embedding-dim", "8", "--skip-export"]


KILL_STEP = 50  # mid-epoch 3 of 6 (84 training texts, batch 4: 21 steps an epoch), after 2 epoch backups


@pytest.mark.slow
def test_killed_run_resumes_from_its_last_backup(tmp_path, capsys):
    """A real process SIGKILLed at an arbitrary step (not one of the named phases; a fixed step, not a delay, so
    the load of the machine changes nothing): the same command resumes from the last epoch's backup."""
    from tfclf import run
    data = write_csv(tmp_path / "toy.csv", toy_rows(120))
    out = str(tmp_path / "run")
    killed = subprocess.run(_command(data, out, 6), env=repo_env(TFCLF_KILL_AT=f"step:{KILL_STEP}"),
                            capture_output=True, text=True, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert os.path.isdir(os.path.join(out + ".partial", "backup")) and not os.path.exists(out)
    capsys.readouterr()
    assert run.main(_command(data, out, 6)[3:]) == 0  # the same command again, in this process
    stdout = capsys.readouterr().out
    assert "resuming the interrupted run" in stdout
    metrics = json.load(open(os.path.join(out, "metrics.json")))
    first_resumed_epoch = int(stdout.split("\nepoch ")[1].split("/")[0])
    steps_per_epoch = -(-metrics["num_train"] // 4)
    assert first_resumed_epoch == (KILL_STEP - 1) // steps_per_epoch + 1 > 1  # only the remaining epochs ran...
    assert len(metrics["history"]["loss"]) == 6  # ...and the history still has every epoch
    assert not os.path.exists(out + ".partial") and not os.path.exists(os.path.join(out, "backup"))


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_backup(tmp_path, small_config, capsys):
    from tfclf import run
    data = write_csv(tmp_path / "toy.csv", toy_rows(60))
    code = run.main(["--data", data, "--encoder", "bow", "--out", str(tmp_path / "r"), "--lr", "1e30", "--opt", "sgd",
                     "--clip-norm", "0", "--warmup-ratio", "0", "--schedule", "constant", "--epochs", "3"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "training diverged: loss is nan at epoch 1" in err[0].lower()
    assert "no epoch had finished, so nothing was backed up; the same command starts again" in err[0]
    assert not (tmp_path / "r.partial").exists() and not (tmp_path / "r").exists()  # nothing to resume, nothing left


def test_deterministic_runs_give_identical_metrics(tmp_path, small_config):
    data = write_csv(tmp_path / "toy.csv", toy_rows(80))
    first = training_run.train(small_config(data, out=str(tmp_path / "a"), deterministic=True, skip_export=True))
    second = training_run.train(small_config(data, out=str(tmp_path / "b"), deterministic=True, skip_export=True))
    assert first.metrics["history"]["loss"] == second.metrics["history"]["loss"]
    assert first.metrics["test"] == second.metrics["test"]


def test_determinism_is_switched_off_again_for_the_next_run():
    from tensorflow.python.framework import config as tf_config
    training.seed_everything(1, deterministic=True)
    assert tf_config.is_op_determinism_enabled()
    training.seed_everything(1, deterministic=False)
    assert not tf_config.is_op_determinism_enabled()


def test_early_stopping_stops_before_the_last_epoch(tmp_path, small_config):
    data = write_csv(tmp_path / "toy.csv", toy_rows(80))
    result = training_run.train(small_config(data, epochs=60, early_stopping=2, lr=0.05, schedule="constant",
                                       skip_export=True))
    assert len(result.metrics["history"]["loss"]) < 60


def test_default_run_dir_is_reused_for_resume_but_never_overwrites(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = preparing.resolve(config_lib.from_flat({"data": "sms_spam"}))
    first = preparing.default_run_dir(config)
    assert first == preparing.default_run_dir(config) and config.digest() in first
    os.makedirs(first)
    open(os.path.join(first, "metrics.json"), "w").close()
    assert preparing.default_run_dir(config) == first + "-2"


def test_mixed_precision_keeps_logits_in_float32(toy_csv, small_config):
    from tfclf._backend import keras
    config = small_config(toy_csv, encoder="lstm", rnn_units=8)
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build_model(config.model, 2, 8, ["great film", "awful story"])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.get_layer("lstm_0").compute_dtype == "float16"
    assert model.output.dtype == tf.float32


def test_mixed_precision_policy_follows_the_hardware(monkeypatch):
    assert training.precision_policy(False) == "float32"
    flags = open("/proc/cpuinfo").read()
    if "avx512_bf16" in flags or "amx_bf16" in flags:
        assert training.precision_policy(True) == "mixed_bfloat16"
    else:  # this project's CI machine: AVX2 only
        with pytest.raises(ValueError, match="no bf16 instructions"):
            training.precision_policy(True)


def test_deterministic_is_refused_for_hub_encoders_with_unseeded_dropout():
    with pytest.raises(ValueError, match="unseeded dropout ops"):
        config_lib.from_flat({"encoder": "minilm_l6", "deterministic": True})


def test_xla_is_refused_for_models_with_string_ops():
    with pytest.raises(ValueError, match="--xla needs a transformer encoder"):
        config_lib.from_flat({"encoder": "bow", "xla": True})


def test_tensorboard_has_step_learning_rates_config_text_and_hparams_linked_to_metrics(tmp_path, small_config):
    result = training_run.train(small_config(write_csv(tmp_path / "t.csv", toy_rows(40)), epochs=2, skip_export=True))
    tags = {}
    for root, _, files in os.walk(os.path.join(result.run_dir, "tensorboard")):
        for name in files:
            for event in tf.compat.v1.train.summary_iterator(os.path.join(root, name)):
                for value in event.summary.value:
                    tags.setdefault((os.path.basename(root), value.tag), []).append(event.step)
    steps = result.metrics["num_train"] // 8 + (result.metrics["num_train"] % 8 > 0)
    assert sorted(tags[("steps", "learning_rate")]) == list(range(1, 2 * steps + 1))  # one per step
    assert ("tensorboard", "config") in tags
    # The HParams dashboard, read as TensorBoard reads it: the run's session has its validation metrics.
    table = hparams_table(result.run_dir)
    assert table["experiments"] == ["tensorboard"]
    assert ("validation", "epoch_macro_f1") in table["metrics"] and ("validation", "epoch_loss") in table["metrics"]
    session = table["sessions"]["tensorboard"]
    assert session["hparams"]["train.lr"] == pytest.approx(0.02) and session["hparams"]["model.encoder"] == "bow"
    history = result.metrics["history"]
    assert session["metrics"][("validation", "epoch_macro_f1")] == pytest.approx(history["val_macro_f1"][-1])
    assert session["metrics"][("validation", "epoch_loss")] == pytest.approx(history["val_loss"][-1])
    assert session["metrics"][("validation", "epoch_accuracy")] == pytest.approx(history["val_accuracy"][-1])
