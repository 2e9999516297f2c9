"""Output directories that are never lost, overwritten or left half-written.

A run is built in `<out>.partial` and renamed to `<out>` only when complete, under an exclusive lock
(`<out>.lock`, an `fcntl.flock` the kernel releases when the process dies, so a killed run never
leaves a stale lock). A killed run of the same config (same digest) is resumed from where it was:
from its last epoch backup while training, or straight to evaluation once training had finished
(`trained/`). A finished run (metrics.json) is never overwritten; another config's resumable
`.partial` is only replaced with `--overwrite`.
"""
import contextlib
import dataclasses
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
    except Exception as error:  # a full disk whose error names no file is reported as this output's (cli.disk_full)
        if not getattr(error, "tfclf_output", ""):
            error.tfclf_output = path
        raise
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


# --- output locations, checked as a set before any work ---

@dataclasses.dataclass(frozen=True)
class Location:
    """A path one command names. kind: "run" (a directory built in `<path>.partial`), "dir" (an output
    directory), "root" (a shared output root such as --export-dir: it may hold other outputs, never be inside
    one), "file" (an output file; an existing one is replaced only if `replace`), "input" (read, never written)."""
    flag: str
    path: str
    kind: str = "dir"
    replace: bool = False


def _real(path: str) -> str:
    return os.path.realpath(os.path.abspath(path))


def _within(inner: str, outer: str) -> bool:
    return inner == outer or os.path.commonpath([inner, outer]) == outer


def _export_version_of(path: str) -> str:
    """The exported model directory (one holding saved_model.pb) that `path` is or lies inside, or ""."""
    probe = path
    while True:
        if os.path.isfile(os.path.join(probe, "saved_model.pb")):
            return probe
        parent = os.path.dirname(probe)
        if parent == probe:
            return ""
        probe = parent


def _paths(location: Location) -> list:
    real = _real(location.path)
    return [real, real + ".partial"] if location.kind == "run" else [real]


def check_locations(locations) -> None:
    """ValueError, before any work, unless the outputs of one command are apart: no output equal to or
    inside another (a "root" may hold others), none inside an input or holding one, none inside an exported
    model, and no output file replaced without `replace` or written over an input.

        >>> check_locations([Location("--out", "runs/a", "run"), Location("--export-dir", "runs/a/m", "root")])
        Traceback (most recent call last):
        ValueError: --export-dir runs/a/m: inside --out runs/a (the run directory); choose an --export-dir outside --out
    """
    outputs = [item for item in locations if item.kind != "input"]
    inputs = [item for item in locations if item.kind == "input" and os.path.exists(item.path)]
    for item in outputs:
        model = _export_version_of(_real(item.path))
        if model:
            raise ValueError(f"{item.flag} {item.path}: inside the exported model {model}, which is never written "
                             f"into; choose an {item.flag} outside it")
        if item.kind == "file":
            _check_file(item, inputs)
    for index, item in enumerate(outputs):
        for other in outputs[index + 1:]:
            _check_apart(other, item)  # the later location is named first: --out is the one to keep
            _check_apart(item, other)
        for source in inputs:
            _check_not_over_input(item, source)


def _check_apart(item: Location, other: Location) -> None:
    """`item` is neither `other` nor inside it (inside a "root" is allowed)."""
    for mine in _paths(item):
        for theirs in _paths(other):
            if mine == theirs:
                raise ValueError(f"{item.flag} {item.path}: the same place as {other.flag} {other.path}; give "
                                 f"them different paths")
            if _within(mine, theirs) and other.kind != "root":
                what = " (the run directory)" if other.kind == "run" else ""
                raise ValueError(f"{item.flag} {item.path}: inside {other.flag} {other.path}{what}; choose an "
                                 f"{item.flag} outside {other.flag}")


def _check_not_over_input(item: Location, source: Location) -> None:
    real = _real(source.path)
    for mine in _paths(item):
        if _within(mine, real) or _within(real, mine):
            how = "is" if mine == real else ("is inside" if _within(mine, real) else "holds")
            raise ValueError(f"{item.flag} {item.path}: {how} {source.flag} {source.path}, which is read, "
                             f"never written; choose an {item.flag} apart from it")


def _check_file(item: Location, inputs: list) -> None:
    if os.path.isdir(item.path):
        raise ValueError(f"{item.flag} {item.path}: is a directory; give a file path")
    for source in inputs:
        if _real(item.path) == _real(source.path):
            raise ValueError(f"{item.flag} {item.path}: is the {source.flag} file, which would be lost; write "
                             f"to another file")
    if os.path.exists(item.path) and not item.replace:
        raise ValueError(f"{item.flag} {item.path}: exists; choose another file or pass --overwrite to replace it")


def export_root(config) -> str:
    """<export-dir>/<export-name>: where a run's export versions go (the name defaults to the run's)."""
    name = config.export.export_name or os.path.basename(os.path.normpath(config.out))
    return os.path.join(config.export.export_dir, name)


def run_locations(config) -> list:
    """Every path a run writes or reads, for check_locations."""
    locations = [Location("--out", config.out, "run")]
    if not config.export.skip_export:
        locations += [Location("--export-dir", config.export.export_dir, "root"),
                      Location("--export-dir/--export-name", export_root(config), "dir")]
    if config.data.data and os.path.exists(config.data.data):  # class folders: a run inside would be read back
        locations.append(Location("--data", config.data.data, "input"))
    return locations


def _has_backup(staging: str) -> bool:
    backup = os.path.join(staging, "backup")
    # tf-keras' BackupAndRestore writes a TF checkpoint (`checkpoint` index), Keras 3's `latest.weights.h5`.
    return any("checkpoint" in names or "latest.weights.h5" in names
               for _, _, names in os.walk(backup)) if os.path.isdir(backup) else False


def resumable(staging: str) -> bool:
    """Whether a `.partial` holds work worth resuming: an epoch backup or the trained weights."""
    return os.path.isdir(os.path.join(staging, TRAINED)) or _has_backup(staging)


# What a resume reads (kept after a failure); everything else in `.partial` is written again by the resume.
RESUME_STATE = ("config.json", "data.sha256", "run_id", "history.json", "backup", "checkpoints", TRAINED,
                "tensorboard")


def keep_resumable(staging: str) -> None:
    """After a run failed or was interrupted: a `.partial` without work worth resuming is removed; one with
    work keeps only what the resume reads, without the half-written files a failed write (a full disk)
    leaves: outputs the resume writes again, `.tmp` files, TensorFlow's unfinished backup files."""
    if not resumable(staging):
        shutil.rmtree(staging, ignore_errors=True)
    else:
        _tidy(staging)


def _tidy(staging: str) -> None:
    """Removes from a resumable `.partial` all but what its resume reads (RESUME_STATE, whole checkpoints)."""
    for name in os.listdir(staging):
        if name not in RESUME_STATE:
            _remove(os.path.join(staging, name))
    _remove(os.path.join(staging, "checkpoints", ".best-tmp"))
    chief = os.path.join(staging, "backup", "chief")
    if os.path.isfile(os.path.join(chief, "checkpoint")):
        listed = _named_checkpoints(chief)
        for name in os.listdir(chief):
            if name != "checkpoint" and name.split(".")[0] not in listed:
                _remove(os.path.join(chief, name))


def _named_checkpoints(directory: str) -> set:
    """The checkpoint names (ckpt-N) the `checkpoint` state file of `directory` lists."""
    with open(os.path.join(directory, "checkpoint"), encoding="utf-8", errors="replace") as handle:
        return {os.path.basename(line.partition(":")[2].strip().strip('"')) for line in handle if ":" in line}


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


def occupied(path: str) -> bool:
    """A file, or a directory with something in it: an output location tfclf must not write into."""
    return os.path.isfile(path) or (os.path.isdir(path) and bool(os.listdir(path)))


def check_not_finished(path: str) -> None:
    """A finished run (metrics.json) at `path` is refused before any work."""
    if os.path.exists(os.path.join(path, "metrics.json")):
        raise ValueError(f"--out {path}: a finished run is already there; choose another --out or remove it")


def _interrupted_digests(staging: str) -> tuple:
    """(config digest, data digest) of the interrupted run in `staging`; a damaged config.json is a ValueError."""
    path = os.path.join(staging, "config.json")
    try:
        with open(path, encoding="utf-8") as handle:
            config = config_lib.digest_of(json.load(handle))
    except (ValueError, TypeError, AttributeError):
        raise ValueError(f"{path}: damaged (not a JSON run config)") from None
    data_file = os.path.join(staging, "data.sha256")
    data = open(data_file, encoding="utf-8").read().strip() if os.path.isfile(data_file) else ""
    return config, data


def _same_run_damage(staging: str, digest: str, data_digest: str) -> tuple:
    """(whether `staging` holds an interrupted run of this config and data, what is damaged in the state its
    resume would read: the file and how, or "")."""
    from tfclf.training import checkpoints  # imports TensorFlow only when there is a checkpoint to read
    try:
        saved_config, saved_data = _interrupted_digests(staging)
        if saved_config != digest or saved_data not in ("", data_digest):
            return (False, "a different config" if saved_config != digest else
                    "the same config on data that has changed since")
        checkpoints.verify_resume(staging)
    except ValueError as error:
        return True, str(error)
    return True, ""


def open_staging(path: str, digest: str, overwrite: bool = False, data_digest: str = "") -> str:
    """The staging directory for a run of config `digest` on data `data_digest`: a killed run of the same
    config and data is kept, to resume, once what it resumes from is verified whole; a finished run is
    refused, and so is an interrupted run of another config, of data that changed since or whose saved
    state is damaged (unless `overwrite`, which discards it)."""
    check_not_finished(path)
    if occupied(path):
        raise ValueError(f"--out {path}: exists and is not an empty directory; choose another --out")
    staging = staging_dir(path)
    if resumable(staging) and os.path.isfile(os.path.join(staging, "config.json")):
        same, what = _same_run_damage(staging, digest, data_digest)
        if same and not what:
            _tidy(staging)  # a killed process (SIGKILL: no clean-up of its own) may have left unfinished files
            phase = "training had finished: evaluating its trained weights" \
                if os.path.isdir(os.path.join(staging, TRAINED)) else "training resumes from its last backup"
            print(f"resuming the interrupted run in {staging}: {phase}")
            return staging
        if same and not overwrite:
            raise ValueError(f"--out {path}: the interrupted run in {staging} cannot resume: {what}; pass "
                             f"--overwrite to discard it and start again, or delete {staging}")
        if not overwrite:
            raise ValueError(f"--out {path}: {staging} holds an interrupted run of {what}, which the same command "
                             "on the same data would resume; rerun that, choose another --out, or pass --overwrite "
                             "to discard it")
        print(f"--overwrite: discarding the interrupted run in {staging} ({what})")
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
