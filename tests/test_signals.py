"""SIGTERM ends a command as Ctrl-C does (issue 29 item 6): one line `tfclf: interrupted`, exit 130, the lock
released, and the same command resumes the run."""
import contextlib
import signal
import subprocess
import sys
import time

import pytest

from conftest import interrupt_when_imported, repo_env, toy_rows, write_csv

ARGS = ["--encoder", "bow", "--epochs", "2", "--batch-size", "8", "--embedding-dim", "8", "--vocab-size", "200",
        "--lr", "0.02", "--out", "run", "--export-dir", "models"]


def _start(tmp_path, args, env=None):
    return subprocess.Popen([sys.executable, "-m", "tfclf.run", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=repo_env(**(env or {})))


def test_sigterm_while_importing_is_one_line(tmp_path):
    code, err = interrupt_when_imported(["--data", write_csv(tmp_path / "t.csv", toy_rows(40)), "--encoder", "bow",
                                         "--epochs", "1", "--out", str(tmp_path / "r")], tmp_path,
                                        "tensorflow.python.eager.context", signal.SIGTERM)
    assert code == 130 and err == ["tfclf: interrupted"], err[-20:]
    assert not (tmp_path / "r").exists() and not (tmp_path / "r.lock").exists()


@pytest.mark.slow
def test_sigterm_after_training_releases_the_lock_and_the_same_command_resumes(tmp_path, capsys):
    args = ["--data", write_csv(tmp_path / "toy.csv", toy_rows(80)), *ARGS]
    hold = tmp_path / "hold"
    hold.write_text("")
    process = _start(tmp_path, args, {"TFCLF_PAUSE_AT": "trained", "TFCLF_PAUSE_FILE": str(hold)})
    deadline = time.time() + 300
    while not (tmp_path / "run.partial" / "trained").exists():
        assert time.time() < deadline and process.poll() is None, process.communicate()[1][-800:]
        time.sleep(0.2)
    time.sleep(2)  # held at the pause point
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130 and err.strip().splitlines()[-1] == "tfclf: interrupted", err[-800:]
    assert "Traceback" not in err and not (tmp_path / "run.lock").exists()
    assert (tmp_path / "run.partial" / "trained").exists()
    from tfclf import run  # the same command again, in this process (as test_faults' reruns)
    capsys.readouterr()
    with contextlib.chdir(tmp_path):  # the command's relative --out run / --export-dir models
        assert run.main(args) == 0
    assert "training had finished" in capsys.readouterr().out and (tmp_path / "run" / "metrics.json").exists()
