"""Scoring held-out texts with a trained model, and the one definition of a held-out loss.

`run` (validation and test), `bench` and `evaluate` (an exported model on a new
file) all report the loss through `mean_loss` with the run's configured loss, so
"loss" means the same thing in every report.
"""
import numpy as np

from tfclf._backend import tf
from tfclf.data import pipeline
from tfclf.training import losses


def predict_logits(model, texts, batch_size: int, map_fn=None, lengths=None) -> np.ndarray:
    """The model's float32 logits over `texts`, in their order. With `lengths`, texts are scored shortest
    first (little padding per batch) and put back in order."""
    texts = np.asarray(texts, dtype=object)
    order = np.argsort(lengths, kind="stable") if lengths is not None else np.arange(len(texts))
    dataset = pipeline.make_dataset(texts[order], np.zeros(len(texts), np.int32), batch_size, map_fn=map_fn)
    logits = model.predict(dataset.map(lambda x, y: x), verbose=0)
    result = np.empty(logits.shape, dtype=np.float32)
    result[order] = logits
    return result


def predict_probabilities(model, texts, batch_size: int, map_fn=None, lengths=None) -> np.ndarray:
    """Softmax of the model over `texts`, in their order (see predict_logits)."""
    logits = predict_logits(model, texts, batch_size, map_fn, lengths)
    return tf.nn.softmax(tf.constant(logits), axis=-1).numpy()


def mean_loss(train_config, label_ids, probabilities) -> float:
    """The run's configured loss (cross-entropy or focal, with its smoothing) on held-out data,
    recomputed from probabilities (logits = log p), without the distillation term."""
    loss_fn = losses.build(train_config, probabilities.shape[1])
    logits = np.log(np.clip(probabilities, 1e-12, 1.0))
    return float(tf.reduce_mean(loss_fn(np.asarray(label_ids), logits)).numpy())
