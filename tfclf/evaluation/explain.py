"""Word-occlusion explanations through any `texts -> probabilities` callable. NumPy only.

For a text predicted as class c, each word's weight is how much removing it lowers the predicted class's
log-odds, log p_c - log(1 - p_c): the words are ranked exactly as by the change in p_c (log-odds are
monotone in p_c), but a confident model's p_c = 0.99998 does not round every weight to +0.000, and
1 - p_c is summed from the other classes' probabilities, which keep their precision in float32.
Deleting a word (rather than masking it) needs nothing from the model but raw strings, so the same code
explains a bag-of-words, recurrent or transformer model, in memory or through an exported SavedModel.
All variants of all texts go to the model in one call.

Why occlusion over LIME or KernelSHAP: those fit a surrogate on hundreds of random masks per text, so
their answer depends on a sampling seed and costs ten times more calls; leave-one-out is exact for the
question asked ("what does removing this word do?"), deterministic, and takes n + 1 forward passes for n
words. Its blind spot is redundancy: two words that each suffice alone both score low.

    >>> import numpy as np
    >>> def model(texts):   # class 1 when "zebra" is present
    ...     hits = np.array([float("zebra" in text.split()) for text in texts])
    ...     return np.stack([1 - 0.9 * hits - 0.05, 0.9 * hits + 0.05], axis=1)
    >>> [word for word, weight in occlusion(model, ["a zebra ran by"])[0]["words"]][:1]
    ['zebra']
"""
import numpy as np

MAX_UNITS = 64  # longer texts are occluded in spans of consecutive words, at most this many per text


def _units(words: list, max_units: int) -> list:
    """Spans (start, end) of the words to occlude together: single words, or equal spans for long texts."""
    span = max(1, int(np.ceil(len(words) / max_units)))
    return [(start, min(start + span, len(words))) for start in range(0, len(words), span)]


def log_odds(probabilities, class_id: int) -> np.ndarray:
    """log p_c - log(sum of the other classes' p), per row; probabilities clipped at 1e-30 (float32 underflow)."""
    probabilities = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-30, None)
    others = np.delete(probabilities, class_id, axis=-1).sum(axis=-1)
    return np.log(probabilities[..., class_id]) - np.log(others)


def occlusion(predict_fn, texts, top: int = 5, max_units: int = MAX_UNITS, predicted=None) -> list:
    """Per text: {"class_id", "probability", "words": [(word, weight), ...]} with the `top` words of largest
    |weight| (log-odds change) first, "tokens" and "weights" for every word in order (a span's weight
    repeated for its words).
    `predicted` (class ids) overrides the class explained, e.g. a thresholded decision."""
    split = [str(text).split() for text in texts]
    units = [_units(words, max_units) for words in split]
    batch = []
    for words, spans in zip(split, units):
        batch.append(" ".join(words))
        batch += [" ".join(words[:start] + words[end:]) for start, end in spans]
    probabilities = np.asarray(predict_fn(batch)) if batch else np.zeros((0, 0))
    results, row = [], 0
    for index, (words, spans) in enumerate(zip(split, units)):
        full, occluded = probabilities[row], probabilities[row + 1:row + 1 + len(spans)]
        row += 1 + len(spans)
        class_id = int(full.argmax() if predicted is None else predicted[index])
        span_weights = log_odds(full, class_id) - log_odds(occluded, class_id) if len(spans) else np.zeros(0)
        weights = np.zeros(len(words))
        for (start, end), weight in zip(spans, span_weights):
            weights[start:end] = weight
        ranked = np.argsort(-np.abs(span_weights), kind="stable")[:top]
        shown = [(" ".join(words[spans[k][0]:spans[k][1]]), float(span_weights[k])) for k in ranked]
        results.append({"class_id": class_id, "probability": float(full[class_id]), "words": shown,
                        "tokens": words, "weights": weights.tolist()})
    return results


def format_words(explanation: dict) -> str:
    """'free +2.41, prize +1.30, now -0.20': the words that moved the predicted class most (log-odds)."""
    return ", ".join(f"{word} {weight:+.2f}" for word, weight in explanation["words"])
