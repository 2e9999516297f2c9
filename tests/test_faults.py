"""Fault injection: a run is stopped at every phase of its life (tfclf/faults.py), then the same command is run
again; two runs race for one --out; evaluate is pointed at a finished run. Nothing may be lost, overwritten,
retrained needlessly or left behind.

What a SIGKILL at a point leaves is the files on disk at that instant: the process runs nothing more. So one run
copies its files at each of the 9 points (`killed_states`: one training instead of nine killed processes) and each
copy is resumed; the other-config and evaluate tests stop their runs the same way (`_killed_in_process`). Real
`python -m tfclf.run` processes are SIGKILLed where the dying process is the thing tested: a late point here, and in
test_training, test_stream, test_budget, test_grid (SIGTERM: test_signals)."""
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import killed_at, repo_env, toy_rows, write_csv
from tfclf import faults

pytestmark = pytest.mark.slow

ARGS = ["--encoder", "bow", "--epochs", "3", "--batch-size", "8", "--embedding-dim", "8", "--vocab-size", "200",
        "--lr", "0.02", "--out", "run", "--export-dir", "models"]


def _command(tmp_path, *extra, env=None):
    data = os.path.join(tmp_path, "toy.csv")
    if not os.path.exists(data):
        write_csv(data, toy_rows(80))
    return [sys.executable, "-m", "tfclf.run", "--data", data, *ARGS, *extra], repo_env(**(env or {}))


def _run(tmp_path, *extra, env=None):
    command, environment = _command(tmp_path, *extra, env=env)
    return subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=environment, timeout=600)


def _in(tmp_path, capsys, main, argv):
    """`main(argv)` run in this process with tmp_path as the working directory (the command's relative --out run
    / --export-dir models): (exit code, stdout, stderr)."""
    capsys.readouterr()
    with contextlib.chdir(tmp_path):
        code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _rerun(tmp_path, capsys, *extra, data=None):
    """The same command again, in this process (`run.main`, what `python -m tfclf.run` calls): the resume of
    a killed run is the same code whichever process runs it, and a TensorFlow start per case is saved.
    Returns (exit code, stdout, stderr)."""
    from tfclf import run
    return _in(tmp_path, capsys, run.main, ["--data", data or os.path.join(tmp_path, "toy.csv"), *ARGS, *extra])


def _killed_in_process(tmp_path, capsys, point, *extra):
    """What SIGKILLing the command at `point` leaves in tmp_path, made in this process as `killed_states` makes its
    copies: the working directory is copied as it is on disk at that point, the run is stopped there, and the copy
    replaces whatever the stopping left (a killed process writes nothing more)."""
    snapshot = tmp_path.with_name(tmp_path.name + "-killed")
    with killed_at(point, tmp_path, snapshot):
        _rerun(tmp_path, capsys, *extra)
    shutil.rmtree(tmp_path)
    shutil.move(snapshot, tmp_path)


def _evaluate(tmp_path, capsys, *argv):
    """`python -m tfclf.evaluate ARGV`, in this process (`evaluate.main`): what it may write is the question
    here, not the process; the CLI's exit codes and one-line errors are test_cli's and test_bad_input's."""
    from tfclf import evaluate
    return _in(tmp_path, capsys, evaluate.main, list(argv))


def _leftovers(tmp_path) -> list:
    """Staging, lock and temporary files anywhere under tmp_path."""
    found = []
    for folder, dirs, files in os.walk(tmp_path):
        for name in dirs + files:
            if name.endswith((".partial", ".lock", ".tmp")) or name.startswith((".staging-", ".trained-tmp")):
                found.append(os.path.relpath(os.path.join(folder, name), tmp_path))
    return found


@pytest.fixture(scope="module")
def killed_states(tmp_path_factory):
    """(data, {point: directory}): one run of the command (in this process) whose working directory (the --out's
    staging, lock and export dir) is copied at each fault point as it is on disk there: what a SIGKILL at that
    point leaves, since a killed process writes nothing more (what it never wrote is not in the copy either)."""
    from tfclf import run
    root = tmp_path_factory.mktemp("killed_states")
    work, data = root / "work", write_csv(root / "toy.csv", toy_rows(80))
    work.mkdir()
    real = faults.reached

    def reached(point):
        real(point)
        if point in faults.POINTS:
            shutil.copytree(work, root / point, symlinks=True)
    with contextlib.chdir(work), pytest.MonkeyPatch.context() as patch:
        patch.setattr(faults, "reached", reached)
        assert run.main(["--data", data, *ARGS]) == 0
    assert sorted(os.listdir(root)) == sorted([*faults.POINTS, "toy.csv", "work"])  # every point was reached
    return data, {point: root / point for point in faults.POINTS}


def _check_resumed(point, tmp_path, code, stdout, stderr):
    """What the same command, run again on the files a kill at `point` left, must do and leave."""
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


@pytest.mark.parametrize("point", faults.POINTS)
def test_a_run_killed_at_any_phase_resumes_where_it_was_and_finishes_once(point, killed_states, tmp_path, capsys):
    data, states = killed_states
    work = tmp_path / "work"
    shutil.copytree(states[point], work, symlinks=True)
    _check_resumed(point, work, *_rerun(work, capsys, data=data))


def test_a_real_sigkill_after_the_export_resumes_and_exports_once(tmp_path, capsys):
    """The copies above against a real process: SIGKILLed once the export version is in place, the same command
    evaluates nothing twice and adds no second version."""
    killed = _run(tmp_path, env={"TFCLF_KILL_AT": "exported"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-800:]
    assert sorted(os.listdir(tmp_path / "models" / "run")) == ["1"] and (tmp_path / "run.partial").is_dir()
    _check_resumed("exported", tmp_path, *_rerun(tmp_path, capsys))


def test_a_second_run_on_the_same_out_fails_at_once_naming_the_first(tmp_path, capsys):
    pause = tmp_path / "hold"
    pause.write_text("")
    command, env = _command(tmp_path, env={"TFCLF_PAUSE_AT": "prepared", "TFCLF_PAUSE_FILE": str(pause)})
    first = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 600  # a hang guard: a TensorFlow start took over 120 s under load 20
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
    _command(tmp_path)  # writes toy.csv
    _killed_in_process(tmp_path, capsys, "epoch_end")
    code, _, stderr = _rerun(tmp_path, capsys, "--seed", "7")
    assert code == 2 and "holds an interrupted run of a different config" in stderr
    assert (tmp_path / "run.partial" / "backup").is_dir()  # kept
    _killed_in_process(tmp_path, capsys, "trained", "--seed", "7", "--overwrite")
    assert json.loads((tmp_path / "run.partial" / "config.json").read_text())["train"]["seed"] == 7
    # The same command on data that changed since must not evaluate weights trained on the old data.
    write_csv(tmp_path / "toy.csv", toy_rows(80, seed=1))
    code, _, stderr = _rerun(tmp_path, capsys, "--seed", "7")
    assert code == 2 and "on data that has changed since" in stderr
    assert (tmp_path / "run.partial" / "trained").is_dir()  # kept
    assert _rerun(tmp_path, capsys, "--seed", "7", "--overwrite")[0] == 0


def test_an_unwritable_export_dir_is_refused_before_any_work(tmp_path, capsys):
    (tmp_path / "models").write_text("a file, not a directory")
    write_csv(tmp_path / "toy.csv", toy_rows(80))
    code, _, stderr = _rerun(tmp_path, capsys)
    assert code == 2
    assert stderr.strip().splitlines()[-1].startswith("tfclf: error: --export-dir models: ")
    assert not (tmp_path / "run").exists() and not (tmp_path / "run.partial").exists()


def test_evaluate_never_overwrites_a_finished_run(tmp_path, capsys):
    _command(tmp_path)  # writes toy.csv
    assert _rerun(tmp_path, capsys)[0] == 0
    before = {name: hashlib.sha256((tmp_path / "run" / name).read_bytes()).hexdigest()
              for name in os.listdir(tmp_path / "run") if (tmp_path / "run" / name).is_file()}
    code, _, stderr = _evaluate(tmp_path, capsys, "--model", "models/run/1", "--data", "toy.csv", "--out", "run")
    assert code == 2 and "--out run: exists and is not an empty directory" in stderr
    after = {name: hashlib.sha256((tmp_path / "run" / name).read_bytes()).hexdigest() for name in before}
    assert after == before
    # Nor an interrupted run's .partial, which the run's own command would resume.
    _killed_in_process(tmp_path, capsys, "epoch_end", "--out", "other")
    onto = _evaluate(tmp_path, capsys, "--model", "models/run/1", "--data", "toy.csv", "--out", "other")
    assert onto[0] == 2 and (tmp_path / "other.partial" / "backup").is_dir()
    assert _rerun(tmp_path, capsys, "--out", "other")[0] == 0  # and that run still resumes and finishes
    fresh = _evaluate(tmp_path, capsys, "--model", "models/run/1", "--data", "toy.csv", "--out", "eval")
    assert fresh[0] == 0, fresh[2][-800:]
    assert (tmp_path / "eval" / "metrics.json").is_file() and _leftovers(tmp_path) == []
    # A file of one class is a legitimate thing to score against a two-class model.
    write_csv(tmp_path / "pos.csv", toy_rows(10, classes=("pos",)))
    single = _evaluate(tmp_path, capsys, "--model", "models/run/1", "--data", "pos.csv", "--out", "eval-pos")
    assert single[0] == 0, single[2][-800:]
    scored = json.loads((tmp_path / "eval-pos" / "metrics.json").read_text())
    assert scored["num_test"] == 10 and scored["test"]["per_class"]["pos"]["support"] == 10
