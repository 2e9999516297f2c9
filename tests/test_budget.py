"""The adaptive training budget (--epochs 0, the default): validation rounds, patience counted from the run's
history (so a killed and resumed run stops where the uninterrupted run does), the step floor and cap, the
reason in metrics.json; --epochs N keeps its exact meaning."""
import dataclasses
import json
import signal
import subprocess
import sys

import pytest

from conftest import repo_env, toy_rows, write_csv
from tfclf import config as config_lib
from tfclf.training import budget, callbacks


def _rows(*values):
    return [{"val_macro_f1": value, "val_loss": 1.0} for value in values]


def test_patience_is_counted_from_the_history_so_a_resumed_run_keeps_it(tmp_path):
    path = str(tmp_path / "history.json")
    history = callbacks.EpochHistory(path)
    for epoch, value in enumerate((0.5, 0.8, 0.7)):
        history.on_epoch_end(epoch, _rows(value)[0])
    stop = budget.PatienceStop(history, "val_macro_f1", patience=2, min_steps=0, steps_per_epoch=10)
    assert not stop.should_stop()  # one validation since the best
    resumed = callbacks.EpochHistory(path)  # a new process reads the same history.json
    resumed.on_epoch_end(3, _rows(0.75)[0])
    stop = budget.PatienceStop(resumed, "val_macro_f1", patience=2, min_steps=0, steps_per_epoch=10)
    assert stop.should_stop()
    # Not before --min-steps: 4 rounds of 10 steps are below 50.
    assert not budget.PatienceStop(resumed, "val_macro_f1", 2, min_steps=50, steps_per_epoch=10).should_stop()


def test_progress_is_a_gain_above_noise_or_a_tie_with_a_tenth_lower_loss():
    flat = [{"val_macro_f1": 0.0, "val_loss": loss} for loss in (0.69, 0.5, 0.4, 0.39, 0.385)]
    assert budget.since_best(flat, "val_macro_f1") == (2, 2)
    creeping = [{"val_macro_f1": value, "val_loss": 0.1} for value in (0.964, 0.877, 0.967, 0.9709)]
    assert budget.since_best(creeping, "val_macro_f1") == (3, 0)  # 0.9709 > 0.964 + 0.005
    assert budget.since_best(creeping[:3], "val_macro_f1") == (0, 2)
    assert budget.since_best([{"val_loss": 0.5}, {"val_loss": 0.499}], "val_loss") == (0, 1)


def test_the_stop_reason_names_the_rule_that_ended_training():
    adaptive = config_lib.from_flat({"patience": 2, "min_steps": 30, "monitor": "val_macro_f1"}).train
    assert budget.stop_reason(_rows(0.5, 0.9, 0.8, 0.8), adaptive, 40, 2000, 10).startswith(
        "no val_macro_f1 gain above 0.005")
    assert budget.stop_reason(_rows(0.5, 0.9, 0.8), adaptive, 2000, 2000, 500) == \
        "reached the adaptive cap of 2000 steps (4 epochs, at least --min-steps, at most 2000; --max-steps sets it)"
    assert "still improving" in budget.stop_reason(_rows(0.5, 0.9), adaptive, 2000, 2000, 1000)
    fixed = config_lib.from_flat({"epochs": 3, "monitor": "val_macro_f1"}).train
    assert budget.stop_reason(_rows(0.5, 0.9, 0.8), fixed, 30, 30, 10) == "--epochs 3 done"
    early = config_lib.from_flat({"epochs": 9, "early_stopping": 1, "monitor": "val_macro_f1"}).train
    assert "--early-stopping 1" in budget.stop_reason(_rows(0.5, 0.9, 0.8), early, 30, 90, 10)
    with pytest.raises(ValueError, match="--early-stopping applies to --epochs N"):
        config_lib.from_flat({"early_stopping": 2})


def test_validation_rounds_and_the_warm_up_of_adaptive_training():
    train = config_lib.from_flat({}).train
    assert budget.validation_round(122, 836, train) == 53  # twice the validation texts: 1,672 texts
    assert budget.validation_round(300, 100, train) == budget.MIN_ROUND_STEPS
    assert budget.validation_round(5, 100, train) == 5  # never more than an epoch
    assert budget.validation_round(300, 100, config_lib.from_flat({"eval_every": 7}).train) == 7


def test_adaptive_training_lasts_four_epochs_at_most_within_the_floor_and_the_cap_and_its_rate_reaches_zero_there():
    from tfclf.training import optimizers
    train = config_lib.from_flat({}).train
    assert [budget.adaptive_steps(steps, train) for steps in (122, 79, 10, 900)] == [488, 316, 100, 2000]
    assert budget.adaptive_steps(122, config_lib.from_flat({"max_steps": 50}).train) == 50
    schedule = optimizers.build_schedule(dataclasses.replace(train, warmup_ratio=10 / 488), 1e-4, 488)
    rates = [float(schedule(step)) / 1e-4 for step in (9, 188, 282, 488)]
    assert rates[0] == pytest.approx(1.0) and rates[1] == pytest.approx(1 - 178 / 478, abs=1e-3)
    assert rates[2] == pytest.approx(1 - 272 / 478, abs=1e-3) and rates[3] == 0.0


ARGS = ["--encoder", "bow", "--batch-size", "8", "--embedding-dim", "8", "--vocab-size", "200", "--lr", "0.01",
        "--dropout", "0", "--deterministic", "--eval-every", "4", "--min-steps", "8", "--patience", "2",
        "--max-steps", "120", "--skip-export"]


@pytest.mark.slow
def test_a_killed_adaptive_run_resumes_and_stops_where_the_uninterrupted_run_stops(tmp_path, capsys):
    import contextlib
    from tfclf import run
    rows = toy_rows(80, seed=3)
    for row in rows[::7]:  # some wrong labels: validation keeps moving for a while
        row["label"] = "pos" if row["label"] == "neg" else "neg"
    data = write_csv(tmp_path / "toy.csv", rows)
    args = ["--data", str(data), *ARGS]
    # The kill is a real process's SIGKILL; the uninterrupted run and the resume run in this process (`run.main`,
    # what `python -m tfclf.run` calls: the same code whichever process runs it, two TensorFlow starts fewer).
    killed = subprocess.run([sys.executable, "-m", "tfclf.run", *args, "--out", "resumed"], capture_output=True,
                            text=True, cwd=tmp_path, env=repo_env(TFCLF_KILL_AT="step:10"), timeout=600)
    assert killed.returncode == -signal.SIGKILL  # after the backup of round 2 (step 8)
    with contextlib.chdir(tmp_path):
        assert run.main([*args, "--out", "whole"]) == 0
        capsys.readouterr()
        assert run.main([*args, "--out", "resumed"]) == 0
    resumed = capsys.readouterr().out
    assert "resuming after step 8" in resumed, resumed[-800:]
    first, second = (json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("whole", "resumed"))
    assert first["training_budget"]["adaptive"] and first["training_budget"]["steps_per_validation"] == 4
    assert 8 <= first["train_steps"] < 120 and first["training_stopped"].startswith("no val_macro_f1 gain")
    assert second["train_steps"] == first["train_steps"]
    assert second["training_stopped"] == first["training_stopped"]
    assert second["history"]["val_loss"] == pytest.approx(first["history"]["val_loss"], rel=1e-5)
