"""The grid harness: expansion and validation, a tiny grid end to end, failures, kill and resume."""
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import yaml

from conftest import toy_rows, write_csv, repo_env, hparams_table
from tfclf import grid
from tfclf.studies import study



def _spec(tmp_path, data, grid_axes, **extra):
    spec = {"base": {"data": data, "encoder": "bow", "epochs": 2, "batch_size": 8, "embedding_dim": 8,
                     "vocab_size": 200}, "grid": grid_axes, "select": "val.macro_f1", "seeds": [42], **extra}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def test_expansion_crosses_variants_grid_and_seeds_and_validates_every_trial(tmp_path):
    raw = {"base": {"epochs": 1}, "variants": [{"encoder": "lstm"}, {"encoder": "bow"}],
           "grid": {"opt": ["adam", "sgd"], "lr": [0.1, 0.01]}, "seeds": [1, 2]}
    trials = study.expand(study.parse(raw, "s.yaml"), str(tmp_path))
    assert len(trials) == 16 and len({t.digest for t in trials}) == 16
    assert trials[0].params == {"encoder": "lstm", "opt": "adam", "lr": 0.1} and trials[0].config["skip_export"]
    with pytest.raises(ValueError, match="trial .*'opt': 'adamx'.*--opt 'adamx' is unknown"):
        study.parse({"grid": {"opt": ["adam", "adamx"]}}, "s.yaml")
    with pytest.raises(ValueError, match="never used to select"):
        study.parse({"select": "test.macro_f1"}, "s.yaml")
    assert study.seeds_for(study.parse({"seeds": [42]}, "s.yaml"), 3) == [42, 43, 44]


# slow: 23 s (session 9 quick-loop table); the quick loop keeps a grid end to end in the HParams test below
@pytest.mark.slow
def test_a_tiny_grid_runs_records_a_failed_trial_and_sorts_by_validation(tmp_path, trials_in_process, capsys):
    data = write_csv(tmp_path / "toy.csv", toy_rows(80))
    # lr 1e30 with plain SGD diverges: that trial fails, the others still run.
    path = _spec(tmp_path, data, {"lr": [0.05, 0.001, 1e30]})
    raw = yaml.safe_load(open(path))
    raw["base"].update(opt="sgd", clip_norm=0, schedule="constant", warmup_ratio=0)
    open(path, "w").write(yaml.safe_dump(raw))
    out = tmp_path / "grid"
    assert grid.main([path, "--out", str(out), "--parallel", "2"]) == 0
    table = pd.read_csv(out / "results.csv")
    assert list(table["status"]) == ["ok", "ok", "failed"]
    assert "training diverged" in table["error"].iloc[2]
    values = table["val_macro_f1"].iloc[:2].tolist()
    assert values == sorted(values, reverse=True)
    markdown = (out / "results.md").read_text()
    assert "Selected on validation" in markdown and "failed: lr=1e+30" in markdown
    assert (out / "curves.png").stat().st_size > 0 and (out / "metric_vs_lr.png").stat().st_size > 0
    # Rerun: everything is in the ledger, nothing runs, the table is the same.
    assert grid.main([path, "--out", str(out)]) == 0
    assert "3 trial(s) already in the ledger, 0 to run" in capsys.readouterr().out
    assert pd.read_csv(out / "results.csv").equals(table)


def test_a_grid_directory_is_one_hparams_table_of_its_trials_with_their_validation_metrics(tmp_path, trials_in_process):
    data = write_csv(tmp_path / "toy.csv", toy_rows(40))
    out = tmp_path / "grid"
    assert grid.main([_spec(tmp_path, data, {"lr": [0.05, 0.001]}), "--out", str(out)]) == 0
    # Read as TensorBoard reads `tensorboard --logdir <grid>`: one experiment, one session per trial.
    table = hparams_table(out)
    assert table["experiments"] == ["hparams_experiment"] and table["differs"] == ["train.lr"]
    ledger = {entry["trial"]: entry for entry in map(json.loads, open(out / "ledger.jsonl"))}
    assert sorted(table["sessions"]) == sorted(f"trials/{trial}/tensorboard" for trial in ledger)
    for trial, entry in ledger.items():
        session = table["sessions"][f"trials/{trial}/tensorboard"]
        assert session["hparams"]["train.lr"] == pytest.approx(entry["params"]["lr"])
        assert session["metrics"][("validation", "epoch_macro_f1")] == pytest.approx(entry["history"]["val_macro_f1"][-1])
        assert session["metrics"][("validation", "epoch_loss")] == pytest.approx(entry["history"]["val_loss"][-1])


@pytest.mark.slow
def test_top_k_reruns_the_best_settings_with_more_seeds(tmp_path, trials_in_process):
    data = write_csv(tmp_path / "toy.csv", toy_rows(80))
    path = _spec(tmp_path, data, {"lr": [0.05, 0.0001]})
    out = tmp_path / "grid"
    assert grid.main([path, "--out", str(out), "--top-k", "1", "--seeds", "2"]) == 0
    ledger = [json.loads(line) for line in open(out / "ledger.jsonl")]
    assert sorted((e["setting"], e["seed"]) for e in ledger) == [("lr=0.0001", 42), ("lr=0.05", 42), ("lr=0.05", 43)]
    assert "over 2 seeds" in (out / "results.md").read_text()


@pytest.mark.slow
def test_killed_grid_resumes_and_skips_finished_trials(tmp_path, trials_in_process, capsys):
    data = write_csv(tmp_path / "toy.csv", toy_rows(80))
    path = _spec(tmp_path, data, {"lr": [0.05, 0.02]})  # killed in trial 2 of 2 (one trial process each)
    out, env = str(tmp_path / "grid"), repo_env()
    command = [sys.executable, "-m", "tfclf.grid", path, "--out", out]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ledger_path = os.path.join(out, "ledger.jsonl")
    deadline = time.time() + 240
    while time.time() < deadline and not (os.path.exists(ledger_path) and open(ledger_path).read().count("\n") >= 1):
        time.sleep(0.2)
    time.sleep(2.0)  # the next trial is under way
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = {e["trial"]: e for e in map(json.loads, open(ledger_path))}
    assert len(before) == 1
    time.sleep(1.0)  # the trial process died with the grid (PR_SET_PDEATHSIG)
    # The same command again, in this process, its trial too (trials_in_process: the kill above was of real
    # grid and trial processes; what the rerun skips and runs is the grid's code whichever process runs it).
    capsys.readouterr()
    assert grid.main([path, "--out", out]) == 0, capsys.readouterr().err[-2000:]
    assert "1 trial(s) already in the ledger, 1 to run" in capsys.readouterr().out
    after = [json.loads(line) for line in open(ledger_path)]
    assert len(after) == 2 and len({e["trial"] for e in after}) == 2  # each trial exactly once
    assert all(e == before[e["trial"]] for e in after if e["trial"] in before)  # the finished one untouched
    assert len(pd.read_csv(os.path.join(out, "results.csv"))) == 2


@pytest.mark.slow
def test_trials_run_as_ray_tasks_spread_over_a_two_node_ray_cluster(tmp_path, capsys):
    from ray import cluster_utils
    data = write_csv(tmp_path / "toy.csv", toy_rows(80))
    path = _spec(tmp_path, data, {"lr": [0.05, 0.001]})
    out = tmp_path / "grid"
    assert grid.main([path, "--out", str(out), "--ray", "local", "--cpus-per-trial", "64"]) == 2
    assert "--cpus-per-trial 64: the Ray cluster at local has" in capsys.readouterr().err
    assert grid.main([path, "--out", str(out), "--ray", "127.0.0.1:1"]) == 2  # nothing listens on port 1
    assert "--ray 127.0.0.1:1: no Ray cluster answers there" in capsys.readouterr().err
    # Two Ray nodes of one CPU each (two raylets on this machine, as two machines would be): two one-CPU
    # trials cannot share a node, so Ray has to put one on each.
    cluster = cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        address = cluster.address
        assert grid.main([path, "--out", str(out), "--ray", address, "--cpus-per-trial", "1"]) == 0
    finally:
        cluster.shutdown()
    ledger = [json.loads(line) for line in open(out / "ledger.jsonl")]
    assert sorted(e["setting"] for e in ledger) == ["lr=0.001", "lr=0.05"] and {e["status"] for e in ledger} == {"ok"}
    assert len({e["ray_node"] for e in ledger}) == 2
    assert os.getpid() not in {int(e["host"].rsplit("/", 1)[1]) for e in ledger}  # not run in the grid process
    assert f"to run on Ray ({address}), 1 CPU(s) each" in capsys.readouterr().out
    table = pd.read_csv(out / "results.csv")
    # The ledger is the same whichever engine wrote it: a local rerun finds everything done.
    assert grid.main([path, "--out", str(out)]) == 0
    assert "2 trial(s) already in the ledger, 0 to run" in capsys.readouterr().out
    assert pd.read_csv(out / "results.csv").equals(table)
