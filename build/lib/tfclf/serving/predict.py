"""Scoring texts with an exported model's serving signature, in length-sorted batches."""
import sys

import numpy as np

from tfclf._backend import tf


def predict(serve, texts, batch_size: int = 256, progress: bool = False) -> dict:
    """Scores texts in batches, shortest first (exported transformer models pad each batch only to its
    longest text); returns numpy arrays of probabilities, class ids and class names in the input order."""
    texts = [str(text) for text in texts]
    order = np.argsort([len(text) for text in texts], kind="stable")
    parts = []
    for start in range(0, len(texts), batch_size):
        parts.append(serve(text=tf.constant([texts[i] for i in order[start:start + batch_size]])))
        if progress:
            done = min(start + batch_size, len(texts))
            print(f"\rscored {done}/{len(texts)}", end="" if done < len(texts) else "\n", file=sys.stderr)
    if not parts:
        raise ValueError("no texts to score; pass texts as arguments or --input FILE")
    result = {}
    for key in parts[0]:
        values = np.concatenate([part[key].numpy() for part in parts])
        result[key] = np.empty_like(values)
        result[key][order] = values
    return result
