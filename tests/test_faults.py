"""Fault injection: real `python -m tfclf.run` processes are SIGKILLed at every phase of a run
(tfclf/faults.py), then the same command is run again; two runs race for one --out; evaluate is
pointed at a finished run. Nothing may be lost, overwritten, retrained needlessly or left behind."""
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from conftest import repo_env, toy_rows, write_csv
from tfclf import faults

pytestmark = pytest.mark.slow

ARGS = ["--encoder", "bow", "--epochs", "3", "--batch-size", "8", "--embedding-dim", "8", "--vocab-size", "200",
        "--lr", "0.02", "--out", "run", "--export-dir", "models"]


def _command(tmp_path, *extra, env=None, module="tfclf.run"):
    data = os.path.join(tmp_path, "toy.csv")
    if not os.path.exists(data):
        write_csv(data, toy_rows(80))
    args = ["--data", data, *ARGS, *extra] if module == "tfclf.run" else list(extra)
    return [sys.executable, "-m", module, *args], repo_env(**(env or {}))


def _run(tmp_path, *extra, env=None, module="tfclf.run"):
    command, environment = _command(tmp_path, *extra, env=env, module=module)
    return subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=environment, timeout=600)


def _rerun(tmp_path, capsys, *extra):
    """The same command again, in this process (`run.main`, what `python -m tfclf.run` calls): the resume of
    a killed run is the same code whichever process runs it, and a TensorFlow start per case is saved. The
    kills stay real processes. Returns (exit code, stdout, stderr)."""
    from tfclf import run
    capsys.readouterr()
    cwd = os.getcwd()
    os.chdir(tmp_path)  # the command's relative --out run / --export-dir models
    try:
        code = run.main(["--data", os.path.join(tmp_path, "toy.csv"), *ARGS, *extra])
    finally:
        os.chdir(cwd)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _leftovers(tmp_path) -> list:
    """Staging, lock and temporary files anywhere under tmp_path."""
    found = []
    for folder, dirs, files in os.walk(tmp_path):
        for name in dirs + files:
            if name.endswith((".partial", ".lock", ".tmp")) or name.startswith((".staging-", ".trained-tmp")):
                found.append(os.path.relpath(os.path.join(folder, name), tmp_path))
    return found


@pytest.mark.parametrize("point", faults.POINTS)
def test_a_run_killed_at_any_phase_resumes_where_it_was_and_finishes_once(point, tmp_path, capsys):
    killed = _run(tmp_path, env={"TFCLF_KILL_AT": point})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-800:]
    code, stdout, stderr = _rerun(tmp_path, capsys)
    assert code == 0, stderr[-800:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert len(metrics["history"]["loss"]) == 3 and len(metrics["history"]["val_macro_f1"]) == 3
    trained_epochs = [line for line in stdout.splitlines() if re.match(r"epoch \d+/3 ", line)]
    if point in ("trained", "evaluated", "exported", "finishing"):  # training had finished: no retraining
        assert "training had finished" in stdout and trained_epochs == []
    elif point in ("epoch_end", "epoch_mid"):  # resumed after epoch 1, which is not trained again
        assert "resumes from its last backup" in stdout
        assert "epoch 1/3" not in stdout and "epoch 2/3" in stdout
    elif point == "fitted":  # every epoch is in the backup: the resumed fit trains none
        assert "resumes from its last backup" in stdout and trained_epochs == []
    else:  # killed before the run directory existed: a fresh start
        assert "resuming" not in stdout and "epoch 1/3" in stdout
    assert sorted(os.listdir(tmp_path / "models" / "run")) == ["1"]
    assert metrics["export_path"].endswith(os.path.join("models", "run", "1"))
    assert _leftovers(tmp_path) == []


def test_a_second_run_on_the_same_out_fails_at_once_naming_the_first(tmp_path, capsys):
    pause = tmp_path / "hold"
    pause.write_text("")
    command, env = _command(tmp_path, env={"TFCLF_PAUSE_AT": "prepared", "TFCLF_PAUSE_FILE": str(pause)})
    first = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (tmp_path / "run.lock").exists() or not (tmp_path / "run.lock").read_text():
            assert time.time() < deadline and first.poll() is None, "the first run never took its lock"
            time.sleep(0.2)
        code, _, stderr = _rerun(tmp_path, capsys)  # the second run: in this process, beside the first
        assert code == 2
        assert stderr.strip().splitlines() == [
            f"tfclf: error: --out run: another tfclf process (PID {first.pid}) is writing it; wait for it to "
            "finish or choose another --out"]
    finally:
        pause.unlink()
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err[-800:]
    assert sorted(os.listdir(tmp_path / "models" / "run")) == ["1"] and _leftovers(tmp_path) == []


def test_another_config_does_not_discard_an_interrupted_run_without_overwrite(tmp_path, capsys):
    assert _run(tmp_path, env={"TFCLF_KILL_AT": "epoch_end"}).returncode == -signal.SIGKILL
    code, _, stderr = _rerun(tmp_path, capsys, "--seed", "7")
    assert code == 2 and "holds an interrupted run of a different config" in stderr
    assert (tmp_path / "run.partial" / "backup").is_dir()  # kept
    replaced = _run(tmp_path, "--seed", "7", "--overwrite", env={"TFCLF_KILL_AT": "trained"})
    assert replaced.returncode == -signal.SIGKILL
    assert json.loads((tmp_path / "run.partial" / "config.json").read_text())["train"]["seed"] == 7
    # The same command on data that changed since must not evaluate weights trained on the old data.
    write_csv(tmp_path / "toy.csv", toy_rows(80, seed=1))
    code, _, stderr = _rerun(tmp_path, capsys, "--seed", "7")
    assert code == 2 and "on data that has changed since" in stderr
    assert (tmp_path / "run.partial" / "trained").is_dir()  # kept
    assert _rerun(tmp_path, capsys, "--seed", "7", "--overwrite")[0] == 0


def test_an_unwritable_export_dir_is_refused_before_any_work(tmp_path):
    (tmp_path / "models").write_text("a file, not a directory")
    result = _run(tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("tfclf: error: --export-dir models: ")
    assert not (tmp_path / "run").exists() and not (tmp_path / "run.partial").exists()


def test_evaluate_never_overwrites_a_finished_run(tmp_path, capsys):
    _command(tmp_path)  # writes toy.csv
    assert _rerun(tmp_path, capsys)[0] == 0
    before = {name: hashlib.sha256((tmp_path / "run" / name).read_bytes()).hexdigest()
              for name in os.listdir(tmp_path / "run") if (tmp_path / "run" / name).is_file()}
    result = _run(tmp_path, "--model", "models/run/1", "--data", "toy.csv", "--out", "run", module="tfclf.evaluate")
    assert result.returncode == 2 and "--out run: exists and is not an empty directory" in result.stderr
    after = {name: hashlib.sha256((tmp_path / "run" / name).read_bytes()).hexdigest() for name in before}
    assert after == before
    # Nor an interrupted run's .partial, which the run's own command would resume.
    assert _run(tmp_path, "--out", "other", env={"TFCLF_KILL_AT": "epoch_end"}).returncode == -signal.SIGKILL
    onto = _run(tmp_path, "--model", "models/run/1", "--data", "toy.csv", "--out", "other", module="tfclf.evaluate")
    assert onto.returncode == 2 and (tmp_path / "other.partial" / "backup").is_dir()
    assert _rerun(tmp_path, capsys, "--out", "other")[0] == 0  # and that run still resumes and finishes
    fresh = _run(tmp_path, "--model", "models/run/1", "--data", "toy.csv", "--out", "eval", module="tfclf.evaluate")
    assert fresh.returncode == 0, fresh.stderr[-800:]
    assert (tmp_path / "eval" / "metrics.json").is_file() and _leftovers(tmp_path) == []
    # A file of one class is a legitimate thing to score against a two-class model.
    write_csv(tmp_path / "pos.csv", toy_rows(10, classes=("pos",)))
    single = _run(tmp_path, "--model", "models/run/1", "--data", "pos.csv", "--out", "eval-pos", module="tfclf.evaluate")
    assert single.returncode == 0, single.stderr[-800:]
    scored = json.loads((tmp_path / "eval-pos" / "metrics.json").read_text())
    assert scored["num_test"] == 10 and scored["test"]["per_class"]["pos"]["support"] == 10
