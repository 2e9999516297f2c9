"""Writing a run's files so that a killed process never leaves one half-written: each goes to `<path>.tmp`
and is renamed over `<path>` only when complete (run directories, evaluations, studies).

    with files.atomic_write("runs/x/report.txt") as handle:
        handle.write(text)
    files.write_json("runs/x/metrics.json", metrics)
"""
import contextlib
import json
import os


@contextlib.contextmanager
def atomic_write(path: str, mode: str = "w"):
    """Opens `path + .tmp` for writing and renames it over `path` only on success (`path`: a str or a path)."""
    path = os.fspath(path)
    partial = path + ".tmp"
    try:
        with open(partial, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            yield handle
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def write_text(path: str, text: str) -> str:
    with atomic_write(path) as handle:
        handle.write(text)
    return text


def write_json(path: str, payload) -> None:
    with atomic_write(path) as handle:
        json.dump(payload, handle, indent=2, sort_keys=False, default=float)
        handle.write("\n")
