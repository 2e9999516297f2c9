"""Export: a SavedModel that takes raw strings, in TF Serving's <name>/<version>/ layout.

The serving signature `serving_default(text: string[batch])` is the task's (signatures.py): for a
single-label model `probabilities` float32[batch, classes], `class_id` int32[batch] and
`class_name` string[batch]: calibrated probabilities (logits divided by the run's
temperature) and, for a binary task with a threshold, the thresholded class.
A multi-label model returns `probabilities` float32[batch, labels], `label_mask`
int32[batch, labels] and `label_names` string[batch] instead. The
label names, config.json, metrics.json, calibration.json and task.json sit in `assets.extra/`
beside it (exported.ExportedModel reads them). Loading needs only `tensorflow` and
`tensorflow_text` (BERT preprocessing ops):

    import tensorflow as tf, tensorflow_text  # noqa
    serve = tf.saved_model.load("saved_models/spam/1").signatures["serving_default"]
    serve(text=tf.constant(["WIN a prize now"]))["class_name"]
"""
import hashlib
import json
import os
import shutil

from tfclf._backend import tf
from tfclf.serving import saving, signatures

EXTRA = "assets.extra"
CALIBRATION = "calibration.json"  # temperature, threshold, positive class and the run's test ECE figures
TASK = "task.json"  # {"name": "single_label" | "multi_label"}: the task whose signature the export serves
MANIFEST = "manifest.json"  # every other file of the export with its size and SHA-256, checked by verify()


def next_version(model_root: str) -> int:
    versions = [int(name) for name in os.listdir(model_root) if name.isdigit()] if os.path.isdir(model_root) else []
    return max(versions, default=0) + 1


def _remove_dead_staging(model_root: str) -> None:
    """Staging directories of exporters that were killed (their process is gone)."""
    for name in os.listdir(model_root):
        if name.startswith(".staging-") and name[9:].isdigit():
            try:
                os.kill(int(name[9:]), 0)
            except ProcessLookupError:
                shutil.rmtree(os.path.join(model_root, name), ignore_errors=True)
            except PermissionError:
                pass  # alive, another user's


def export(model, class_names, model_root: str, extra_files: dict, decision: dict = None, module=None) -> str:
    """Writes model_root/<next version>/ atomically (staging dir, then rename); never overwrites.
    A killed export leaves only a hidden `.staging-<pid>` directory, removed by the next export.
    `module`: the task's serving module (tasks/*: serving_module), whose graph holds the decision; by
    default the single-label signature of `model` and `decision` (argmax when None). `decision` goes into assets.extra/calibration.json."""
    os.makedirs(model_root, exist_ok=True)
    _remove_dead_staging(model_root)
    staging = os.path.join(model_root, f".staging-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        decision = decision or {}
        module = module or signatures.Serving.from_record(model, class_names, decision)
        saving.save_serving(module, staging, {"serving_default": module.serve})
        os.makedirs(os.path.join(staging, EXTRA))
        files = {**extra_files, "labels.json": list(class_names), **({CALIBRATION: decision} if decision else {})}
        for name, payload in files.items():
            with open(os.path.join(staging, EXTRA, name), "w", encoding="utf-8") as handle:
                json.dump(payload, handle, indent=2)
        write_manifest(staging)
        while True:  # another exporter may take a version number first: try the next one
            target = os.path.join(model_root, str(next_version(model_root)))
            try:
                os.rename(staging, target)
                return target
            except OSError:
                if not os.path.exists(target):
                    raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def find_version(model_root: str, run_id: str) -> str:
    """The version directory exported by run `run_id` (its assets.extra/run.json), or ""."""
    if not os.path.isdir(model_root):
        return ""
    for name in sorted(os.listdir(model_root)):
        path = os.path.join(model_root, name, EXTRA, "run.json")
        if name.isdigit() and os.path.isfile(path):
            with open(path, encoding="utf-8") as handle:
                if json.load(handle).get("run_id") == run_id:
                    return os.path.join(model_root, name)
    return ""


def resolve(path: str, flag: str = "--model") -> str:
    """A run directory (its export), a saved_models/<name> root (its newest version) or a
    saved_models/<name>/<version> directory -> the SavedModel directory; `flag` names the option in errors."""
    metrics = os.path.join(path, "metrics.json")
    if os.path.isfile(metrics):
        with open(metrics, encoding="utf-8") as handle:
            exported = json.load(handle).get("export_path", "")
        if not exported or not os.path.isdir(exported):
            raise ValueError(f"{flag} {path}: that run has no exported model; rerun it without --skip-export "
                             "or pass its saved_models/<name>/<version> directory")
        return exported
    if os.path.isdir(path) and not os.path.isfile(os.path.join(path, "saved_model.pb")):
        versions = [name for name in os.listdir(path) if name.isdigit()]
        if versions:
            return os.path.join(path, max(versions, key=int))
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise ValueError(f"{flag} {path}: not a tfclf run directory or exported model; pass a run directory "
                         "or a saved_models/<name>[/<version>] directory")
    return path


def read_extra(path: str, name: str, default=None):
    """A JSON file of the export's assets.extra/, or `default` when absent (older exports)."""
    file = os.path.join(path, EXTRA, name)
    if not os.path.isfile(file):
        return default
    with open(file, encoding="utf-8") as handle:
        return json.load(handle)


# --- verifying an export before use ---

def _sha256(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def write_manifest(path: str) -> None:
    """assets.extra/manifest.json: the size and SHA-256 of every file of the export at `path`."""
    files = {}
    for directory, _, names in os.walk(path):
        for name in names:
            relative = os.path.relpath(os.path.join(directory, name), path)
            if relative != os.path.join(EXTRA, MANIFEST):
                full = os.path.join(path, relative)
                files[relative] = {"size": os.path.getsize(full), "sha256": _sha256(full)}
    with open(os.path.join(path, EXTRA, MANIFEST), "w", encoding="utf-8") as handle:
        json.dump({"files": dict(sorted(files.items()))}, handle, indent=1)


_AGAIN = "export the model again or restore a complete copy of the version directory"


def _missing(path: str, relative: str) -> ValueError:
    """The highest missing directory of a missing file (e.g. variables/), or the file."""
    missing = relative
    parent = os.path.dirname(relative)
    while parent and not os.path.isdir(os.path.join(path, parent)):
        missing, parent = parent, os.path.dirname(parent)
    return ValueError(f"{os.path.join(path, missing)}: missing from the export; {_AGAIN}")


def verify(path: str) -> None:
    """A ValueError naming the file and what is wrong unless `path` is a whole export: saved_model.pb and, per
    its manifest (assets.extra/manifest.json, written at export), every file at its size and SHA-256. An
    export from before manifests gets the structural checks only (saved_model.pb, variables/)."""
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise ValueError(f"{path}: no exported model there (no saved_model.pb); pass a "
                         "saved_models/<name>/<version> directory")
    try:
        manifest = read_extra(path, MANIFEST)
    except (ValueError, UnicodeDecodeError):
        raise ValueError(f"{os.path.join(path, EXTRA, MANIFEST)}: damaged (not JSON); {_AGAIN}") from None
    if manifest is None:
        for relative in (os.path.join("variables", "variables.index"),):
            if not os.path.isfile(os.path.join(path, relative)):
                raise _missing(path, relative)
        return
    for relative, expected in manifest["files"].items():
        file = os.path.join(path, relative)
        if not os.path.isfile(file):
            raise _missing(path, relative)
        size = os.path.getsize(file)
        if size != expected["size"]:
            what = "cut short" if size < expected["size"] else "longer than written"
            raise ValueError(f"{file}: {size} bytes where the export wrote {expected['size']} ({what}); {_AGAIN}")
        if _sha256(file) != expected["sha256"]:
            raise ValueError(f"{file}: its content differs from what the export wrote (damaged); {_AGAIN}")


def load(path: str):
    """The serving function of an exported model, verified first (verify); a ValueError names a bad path or
    the damaged file, also when TensorFlow cannot read an export without a manifest."""
    verify(path)
    try:
        loaded = tf.saved_model.load(path)
    except Exception as error:  # noqa: BLE001 (TensorFlow raises many kinds for a damaged file: IndexError, DecodeError, OpError)
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise ValueError(f"{path}: TensorFlow cannot load this export ({first}); {_AGAIN}") from None
    if "serving_default" not in loaded.signatures:
        raise ValueError(f"{path}: a SavedModel without a serving_default signature, not a tfclf export; pass a "
                         "saved_models/<name>/<version> directory")
    return loaded.signatures["serving_default"]
