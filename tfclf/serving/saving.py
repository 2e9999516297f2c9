"""What a saved model holds: its weights, not its optimizer's state, and in an export only the functions it serves.

A tf-keras model tracks its optimizer, so `save_weights` and `tf.saved_model.save` write the optimizer's
slots too (AdamW keeps two per weight: two thirds of the bytes). Only the epoch backup, from which a killed
run resumes training, needs them; the best checkpoint, `trained/` and the export hold weights only.

    save_serving(module, path, {"serving_default": module.serve})  # weights and the signature's graph
"""
import contextlib
import os

from tfclf._backend import keras, tf


@contextlib.contextmanager
def without_optimizers(root):
    """Detaches the optimizer of `root` and of every tf-keras model inside it while the block runs (what
    tf-keras' own `save(include_optimizer=False)` does), then puts them back."""
    models = [root, *getattr(root, "submodules", ())]
    detached = []
    for model in models:
        optimizer = getattr(model, "optimizer", None)
        if optimizer is not None and isinstance(model, keras.Model):  # tf-keras (Keras 3 never saves them)
            model.optimizer = None
            model._delete_tracking("optimizer")
            detached.append((model, optimizer))
    try:
        yield
    finally:
        for model, optimizer in detached:
            model.optimizer = optimizer


@contextlib.contextmanager
def without_layer_traces():
    """tf-keras traces every layer's call function into a SavedModel that holds a Keras model (so that
    `keras.models.load_model` could rebuild it), about 8 s of the default job's export and half its load time;
    an export is served by its signature only, which keeps its own graph. Keras 3 layers trace nothing."""
    try:
        from tf_keras.src.saving.legacy.saved_model import utils  # tf-keras' own `save_traces` switch
    except ImportError:  # a tf-keras without it: the export is the same, only slower to write and load
        yield
        return
    with utils.keras_option_scope(save_traces=False, in_tf_saved_model_scope=utils.in_tf_saved_model_scope()):
        yield


def save_serving(module, path: str, signatures: dict) -> None:
    """`tf.saved_model.save` of a serving module: its weights (no optimizer state) and the graphs of
    `signatures`, not the layers' own call functions."""
    with without_optimizers(module), without_layer_traces():
        tf.saved_model.save(module, path, signatures=signatures)


def save_weights(model, prefix: str) -> None:
    """`model.save_weights(prefix)` without the optimizer's state (a best checkpoint, `trained/`)."""
    os.makedirs(os.path.dirname(prefix) or ".", exist_ok=True)
    with without_optimizers(model):
        model.save_weights(prefix)
