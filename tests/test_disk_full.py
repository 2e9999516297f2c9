"""A full disk (issue 29 item 3) is one line naming the path and saying that the same command resumes, exit 2;
and it does resume: a real run on a small tmpfs fills it, the tmpfs grows, the same command finishes."""
import contextlib
import errno
import os
import subprocess
import sys

import pytest

from conftest import repo_env, toy_rows, write_csv
from tfclf import cli
from tfclf.training import checkpoints


def _raise(error):
    def job():
        raise error
    return job


@pytest.mark.parametrize("error, where", [
    (OSError(errno.ENOSPC, "No space left on device", "/data/run.partial/eda.json"), "/data/run.partial/eda.json"),
    (RuntimeError("Failed to flush /data/run.partial/backup/ckpt-2.index; No space left on device"),
     "/data/run.partial/backup/ckpt-2.index"),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), "the disk"),
])
def test_a_full_disk_is_one_line_that_says_the_same_command_resumes(error, where, capsys):
    assert cli.run_main(_raise(error)) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"tfclf: error: {where}: no space left on the device; free space (or choose another location) "
                     "and run the same command again: a run resumes from its last complete epoch"]


def test_a_tensorflow_write_error_from_a_full_disk_is_one_line(capsys):
    from tfclf._backend import tf
    error = tf.errors.ResourceExhaustedError(None, None, "/data/run.partial/backup/ckpt-1.data-00000-of-00001; "
                                                         "No space left on device")
    assert cli.run_main(_raise(error)) == 2
    assert "tfclf: error: /data/run.partial/backup/ckpt-1.data-00000-of-00001: no space left" in capsys.readouterr().err


def test_other_errors_still_raise():
    with pytest.raises(RuntimeError):
        cli.run_main(_raise(RuntimeError("a bug")))


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_run_that_fills_its_disk_resumes_with_the_same_command(tmp_path, capsys):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        command = [sys.executable, "-m", "tfclf.run", "--data", write_csv(tmp_path / "toy.csv", toy_rows(80)),
                   "--encoder", "bow", "--epochs", "3", "--batch-size", "8", "--embedding-dim", "8", "--vocab-size",
                   "200", "--lr", "0.02", "--out", str(disk / "run"), "--export-dir", str(tmp_path / "models")]
        full = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=repo_env(), timeout=600)
        lines = full.stderr.strip().splitlines()
        assert full.returncode == 2 and "Traceback" not in full.stderr, full.stderr[-1500:]
        assert lines[-1].startswith(f"tfclf: error: {disk}") and "no space left on the device" in lines[-1]
        assert "run the same command again" in lines[-1] and not (disk / "run.lock").exists()
        left = sorted(str(path.relative_to(disk)) for path in disk.rglob("*"))
        assert not [name for name in left if ".tmp" in name or "_temp" in name or name.endswith("-tmp")], left
        assert {name.split("/")[1] for name in left if "/" in name} <= set(checkpoints.RESUME_STATE), left
        checkpoints.verify_resume(str(disk / "run.partial"))  # whole: nothing half-written is kept
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        from tfclf import run  # the same command again, in this process (the resume is the same code whichever
        with contextlib.chdir(tmp_path):  # process runs it: test_faults' reruns do the same)
            assert run.main(command[3:]) == 0, capsys.readouterr().err[-1500:]
        history = __import__("json").loads((disk / "run" / "metrics.json").read_text())["history"]
        assert len(history["loss"]) == 3
    finally:
        subprocess.run(["umount", str(disk)])
