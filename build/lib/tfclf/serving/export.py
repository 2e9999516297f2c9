"""Export: a SavedModel that takes raw strings, in TF Serving's <name>/<version>/ layout.

The serving signature `serving_default(text: string[batch])` returns
`probabilities` float32[batch, classes], `class_id` int32[batch] and
`class_name` string[batch]. The label names, config.json and metrics.json sit
in `assets.extra/` beside it. Loading needs only `tensorflow` and
`tensorflow_text` (BERT preprocessing ops):

    import tensorflow as tf, tensorflow_text  # noqa
    serve = tf.saved_model.load("saved_models/spam/1").signatures["serving_default"]
    serve(text=tf.constant(["WIN a prize now"]))["class_name"]
"""
import json
import os
import shutil

from tfclf._backend import tf

EXTRA = "assets.extra"


class Serving(tf.Module):
    """Wraps a strings -> logits Keras model with the serving signature."""

    def __init__(self, model, class_names):
        super().__init__()
        self.model = model
        self.class_names = tf.constant(list(class_names))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text):
        logits = tf.cast(self.model(text, training=False), tf.float32)
        probabilities = tf.nn.softmax(logits, axis=-1)
        class_id = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        return {"probabilities": probabilities, "class_id": class_id,
                "class_name": tf.gather(self.class_names, class_id)}


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


def export(model, class_names, model_root: str, extra_files: dict) -> str:
    """Writes model_root/<next version>/ atomically (staging dir, then rename); never overwrites.
    A killed export leaves only a hidden `.staging-<pid>` directory, removed by the next export."""
    os.makedirs(model_root, exist_ok=True)
    _remove_dead_staging(model_root)
    staging = os.path.join(model_root, f".staging-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        module = Serving(model, class_names)
        tf.saved_model.save(module, staging, signatures={"serving_default": module.serve})
        os.makedirs(os.path.join(staging, EXTRA))
        for name, payload in {**extra_files, "labels.json": list(class_names)}.items():
            with open(os.path.join(staging, EXTRA, name), "w", encoding="utf-8") as handle:
                json.dump(payload, handle, indent=2)
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


def load(path: str):
    """The serving function of an exported model; a ValueError names a bad path."""
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise ValueError(f"--model {path}: no exported model there (no saved_model.pb); pass a "
                         "saved_models/<name>/<version> directory")
    return tf.saved_model.load(path).signatures["serving_default"]
