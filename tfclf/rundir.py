"""The run directory: built in `<out>.partial`, renamed to `<out>` only when complete.

A killed run of the same config (same digest) leaves its `.partial` with a backup,
and the same command resumes it; a finished run (metrics.json) is never overwritten.
"""
import os
import shutil

from tfclf import config as config_lib


def staging_dir(path: str) -> str:
    return path.rstrip("/") + ".partial"


def open_staging(path: str, digest: str) -> str:
    """The staging directory; a killed run of the same config (same digest) is kept, to resume."""
    if os.path.exists(os.path.join(path, "metrics.json")):
        raise ValueError(f"--out {path}: a finished run is already there; choose another --out or remove it")
    if os.path.exists(path) and os.listdir(path):
        raise ValueError(f"--out {path}: directory exists and is not empty; choose another --out")
    staging = staging_dir(path)
    saved = os.path.join(staging, "config.json")
    if os.path.isdir(os.path.join(staging, "backup")) and os.path.exists(saved) and \
            config_lib.load(saved).digest() == digest:
        print(f"resuming the interrupted run in {staging} from its last backup")
        return staging
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    return staging


def finish(staging: str, path: str) -> None:
    """Publishes the complete run: `<out>.partial` becomes `<out>`."""
    if os.path.isdir(path):
        os.rmdir(path)  # empty: checked by open_staging
    os.replace(staging, path)
