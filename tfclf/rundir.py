"""Output directories that are never lost, overwritten or left half-written.

A run is built in `<out>.partial` and renamed to `<out>` only when complete, under an exclusive lock
(`<out>.lock`, an `fcntl.flock` the kernel releases when the process dies, so a killed run never
leaves a stale lock). A killed run of the same config (same digest) is resumed from where it was:
from its last epoch backup while training, or straight to evaluation once training had finished
(`trained/`). A finished run (metrics.json) is never overwritten; another config's resumable
`.partial` is only replaced with `--overwrite`.
"""
import contextlib
import fcntl
import json
import os
import shutil
import uuid

from tfclf import config as config_lib

TRAINED = "trained"  # the trained (evaluated) weights and fit record, once training has finished


def staging_dir(path: str) -> str:
    return path.rstrip("/") + ".partial"


@contextlib.contextmanager
def locked(path: str, flag: str = "--out"):
    """Holds an exclusive lock on the output `path` (a `<path>.lock` file beside it) for the block;
    a second process fails at once with one line naming the PID that holds it."""
    lock_path = path.rstrip("/") + ".lock"
    os.makedirs(os.path.dirname(os.path.abspath(lock_path)), exist_ok=True)
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ValueError(f"{flag} {path}: another tfclf process (PID {holder}) is writing it; wait for it "
                             f"to finish or choose another {flag}") from None
        try:  # the previous holder may have removed the file after we opened it: lock the current one
            if os.stat(lock_path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    try:
        yield
    finally:
        os.unlink(lock_path)
        os.close(fd)


def check_writable(path: str, flag: str) -> None:
    """A ValueError unless `path` is (or can be created as) a writable directory: found before any work."""
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise ValueError(f"{flag} {path}: {probe} is a file, not a directory; give a directory path")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"{flag} {path}: {probe} is not writable; choose a directory you can write to")


def _has_backup(staging: str) -> bool:
    backup = os.path.join(staging, "backup")
    # tf-keras' BackupAndRestore writes a TF checkpoint (`checkpoint` index), Keras 3's `latest.weights.h5`.
    return any("checkpoint" in names or "latest.weights.h5" in names
               for _, _, names in os.walk(backup)) if os.path.isdir(backup) else False


def resumable(staging: str) -> bool:
    """Whether a `.partial` holds work worth resuming: an epoch backup or the trained weights."""
    return os.path.isdir(os.path.join(staging, TRAINED)) or _has_backup(staging)


def occupied(path: str) -> bool:
    """A file, or a directory with something in it: an output location tfclf must not write into."""
    return os.path.isfile(path) or (os.path.isdir(path) and bool(os.listdir(path)))


def check_not_finished(path: str) -> None:
    """A finished run (metrics.json) at `path` is refused before any work."""
    if os.path.exists(os.path.join(path, "metrics.json")):
        raise ValueError(f"--out {path}: a finished run is already there; choose another --out or remove it")


def _interrupted_digests(staging: str) -> tuple:
    """(config digest, data digest) of the interrupted run in `staging`."""
    with open(os.path.join(staging, "config.json"), encoding="utf-8") as handle:
        config = config_lib.digest_of(json.load(handle))
    data_file = os.path.join(staging, "data.sha256")
    data = open(data_file, encoding="utf-8").read().strip() if os.path.isfile(data_file) else ""
    return config, data


def open_staging(path: str, digest: str, overwrite: bool = False, data_digest: str = "") -> str:
    """The staging directory for a run of config `digest` on data `data_digest`: a killed run of the same
    config and data is kept, to resume; a finished run is refused, and so is an interrupted run of another
    config or of data that changed since (unless `overwrite`)."""
    check_not_finished(path)
    if occupied(path):
        raise ValueError(f"--out {path}: exists and is not an empty directory; choose another --out")
    staging = staging_dir(path)
    saved = os.path.join(staging, "config.json")
    if resumable(staging) and os.path.isfile(saved):
        saved_config, saved_data = _interrupted_digests(staging)
        if saved_config == digest and saved_data in ("", data_digest):
            phase = "training had finished: evaluating its trained weights" \
                if os.path.isdir(os.path.join(staging, TRAINED)) else "training resumes from its last epoch backup"
            print(f"resuming the interrupted run in {staging}: {phase}")
            return staging
        what = "a different config" if saved_config != digest else "the same config on data that has changed since"
        if not overwrite:
            raise ValueError(f"--out {path}: {staging} holds an interrupted run of {what}, which the same command "
                             "on the same data would resume; rerun that, choose another --out, or pass --overwrite "
                             "to discard it")
        print(f"--overwrite: discarding the interrupted run of {what} in {staging}")
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    with open(os.path.join(staging, "data.sha256"), "w", encoding="utf-8") as handle:
        handle.write(data_digest)
    with open(os.path.join(staging, "run_id"), "w", encoding="utf-8") as handle:
        handle.write(uuid.uuid4().hex)
    return staging


def run_id(staging: str) -> str:
    """The identity of this run across resumes (its export is found again by it)."""
    path = os.path.join(staging, "run_id")
    if not os.path.isfile(path):  # a .partial from before run ids
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(uuid.uuid4().hex)
    with open(path, encoding="utf-8") as handle:
        return handle.read().strip()


def finish(staging: str, path: str) -> None:
    """Publishes the complete run: `<out>.partial` becomes `<out>`."""
    if os.path.isdir(path):
        os.rmdir(path)  # empty: checked by open_staging
    os.replace(staging, path)
