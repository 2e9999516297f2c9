"""What a saved model holds: its weights, not its optimizer's state.

A tf-keras model tracks its optimizer, so `save_weights` and `tf.saved_model.save` write the optimizer's
slots too (AdamW keeps two per weight: two thirds of the bytes). Only the epoch backup, from which a killed
run resumes training, needs them; the best checkpoint, `trained/` and the export hold weights only.

    with saving.without_optimizers(module):
        tf.saved_model.save(module, path)
"""
import contextlib
import os

from tfclf._backend import keras


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


def save_weights(model, prefix: str) -> None:
    """`model.save_weights(prefix)` without the optimizer's state (a best checkpoint, `trained/`)."""
    os.makedirs(os.path.dirname(prefix) or ".", exist_ok=True)
    with without_optimizers(model):
        model.save_weights(prefix)
