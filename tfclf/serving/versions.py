"""The versions of one model under its base path (TF Serving's `<base>/<version>/` layout): the highest
numeric version is loaded, warmed up and only then swapped in; a poller repeats that every few seconds.

A version that fails to load is logged, its state is END with the error, and the version served before
keeps serving; it is tried again only when its directory changes. Requests name versions by number only
and are answered from what was loaded here, so no request path ever reaches the file system.

    versions = Versions("saved_models/spam", log=lambda **fields: print(fields))
    versions.poll()                      # loads and warms up saved_models/spam/<highest>
    versions.latest.predict(["WIN a prize"], batch_size=32)["class_name"]
"""
import os
import threading
import time

WARM_UP_TEXTS = ["", "warm up", "a longer text to warm up the model with, " * 8]
SIGNATURE = "serving_default"


def check_base_path(base_path: str) -> None:
    """A ValueError (one line for the user) unless `base_path` is a directory of numeric versions."""
    if not os.path.isdir(base_path):
        raise ValueError(f"--model {base_path}: not a directory; pass a model's base path, saved_models/<name>")
    if os.path.isfile(os.path.join(base_path, "saved_model.pb")):
        raise ValueError(f"--model {base_path}: this is one version of a model; pass its parent directory "
                         f"({os.path.dirname(os.path.abspath(base_path))}), which holds the numeric versions")
    if not on_disk(base_path):
        raise ValueError(f"--model {base_path}: no numeric version directory in it (<base>/1/saved_model.pb); "
                         "export a model there first (tfclf train --export-dir ...)")


def on_disk(base_path: str) -> dict:
    """{version: path} of the numeric version directories under `base_path`."""
    try:
        names = os.listdir(base_path)
    except OSError:
        return {}
    return {int(name): os.path.join(base_path, name) for name in names
            if name.isdigit() and os.path.isdir(os.path.join(base_path, name))}


def _fingerprint(path: str) -> tuple:
    """What changes when a version directory is written again (a failed version is retried only then)."""
    entries = []
    for root, _, files in os.walk(path):
        for name in sorted(files):
            stat = os.stat(os.path.join(root, name))
            entries.append((os.path.relpath(os.path.join(root, name), path), stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(entries))


def signature_def(path: str) -> dict:
    """The SavedModel's signature defs as TF Serving's metadata API shows them (proto field names, defaults)."""
    from google.protobuf import json_format
    from tensorflow.core.protobuf import saved_model_pb2
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as handle:
        saved_model.ParseFromString(handle.read())
    signatures = saved_model.meta_graphs[0].signature_def
    return {name: json_format.MessageToDict(signatures[name], preserving_proto_field_name=True,
                                            always_print_fields_with_no_presence=True)
            for name in sorted(signatures)}


class Servable:
    """One loaded version: its serving function (export.load) and what the metadata API shows."""

    def __init__(self, version: int, path: str):
        from tfclf.serving import exported  # TensorFlow: imported once a version loads
        self.version, self.path = version, path
        self.model = exported.ExportedModel(path)
        self.serve = self.model.serve
        self.signature_def = signature_def(path)
        self.output_names = sorted(self.serve.structured_outputs)

    def predict(self, texts, batch_size: int) -> dict:
        """numpy outputs for `texts` (tfclf.serving.predict: length-sorted batches of at most batch_size)."""
        return self.model.predict(texts, batch_size)

    def warm_up(self) -> None:
        self.predict(WARM_UP_TEXTS, len(WARM_UP_TEXTS))


class Versions:
    """The loaded latest version and every version's state (START, LOADING, AVAILABLE, END), safe to read
    from the event loop while the poller thread loads."""

    def __init__(self, base_path: str, log=None, loader=Servable):
        self.base_path = base_path
        self.log = log or (lambda **fields: None)
        self.loader = loader
        self.latest = None
        self._states = {}  # version -> (state, error_code, error_message)
        self._failed = {}  # version -> fingerprint of its directory when it failed to load
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    def get(self, version: int = None):
        """The servable of `version` (None: the latest), or None when it is not loaded."""
        servable = self.latest
        if servable is None or (version is not None and servable.version != version):
            return None
        return servable

    def states(self) -> dict:
        with self._lock:
            return dict(self._states)

    def _set(self, version: int, state: str, code: str = "OK", message: str = "") -> None:
        with self._lock:
            self._states[version] = (state, code, message)

    def poll(self) -> None:
        """Loads and swaps in the highest version on disk (skipping ones that failed and did not change)."""
        found = on_disk(self.base_path)
        for version in sorted(found, reverse=True):
            if version in self._failed and self._failed[version] == _fingerprint(found[version]):
                continue
            if self.latest is None or version != self.latest.version:
                self._load(version, found[version])
            return

    def _load(self, version: int, path: str) -> None:
        self._set(version, "LOADING")
        started = time.perf_counter()
        try:
            servable = self.loader(version, path)
            servable.warm_up()
        except Exception as error:  # noqa: BLE001  any broken export: log it and keep serving the old one
            self._failed[version] = _fingerprint(path)
            message = " ".join(str(error).split())[:500] or type(error).__name__
            self._set(version, "END", "UNKNOWN", message)
            self.log(event="version_failed", version=version, error=message,
                     serving=self.latest.version if self.latest else None)
            return
        self._failed.pop(version, None)
        old, self.latest = self.latest, servable  # one assignment: requests see the old or the new version
        self._set(version, "AVAILABLE")
        if old is not None:
            self._set(old.version, "END")
        self.log(event="version_available", version=version, previous=old.version if old else None,
                 load_seconds=round(time.perf_counter() - started, 3))

    # --- the poller thread ---
    def start(self, poll_seconds: float) -> None:
        """Polls now and then every `poll_seconds` (0: once only) in a background thread."""
        self._thread = threading.Thread(target=self._run, args=(poll_seconds,), name="tfclf-versions", daemon=True)
        self._thread.start()

    def _run(self, poll_seconds: float) -> None:
        while True:
            try:
                self.poll()
            except Exception as error:  # noqa: BLE001  a poll must never end the poller
                self.log(event="poll_failed", error=str(error))
            if poll_seconds <= 0 or self._stop.wait(poll_seconds):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)

