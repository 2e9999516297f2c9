"""Temperature scaling (Guo et al. 2017) and the calibration figures: ECE and the Brier score. NumPy only.

One scalar T divides the logits; it is fitted on the validation split by minimising the negative
log-likelihood, never on test. The NLL of softmax(z / T) is convex in 1 / T, hence unimodal in log T,
so a golden-section search on log T finds the minimum without scipy or gradients.

    >>> import numpy as np
    >>> logits = np.array([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0], [4.0, 0.0]])
    >>> labels = np.array([0, 1, 1, 0])                       # one confident mistake in four
    >>> temperature = fit_temperature(logits, labels)
    >>> temperature > 1.0                                     # over-confident: T softens the probabilities
    True
    >>> bool(expected_calibration_error(softmax(logits / temperature), labels)
    ...      < expected_calibration_error(softmax(logits), labels))
    True
"""
import numpy as np

BINS = 15  # equal-width confidence bins of the ECE, as Guo et al.
# Temperatures searched: 0.25 .. 20. When every validation text is right, the NLL keeps falling as T -> 0
# (ever sharper probabilities); the lower bound keeps such a fit from serving near-certainties.
LOG_T_RANGE = (np.log(0.25), np.log(20.0))


def softmax(logits) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def log_softmax(logits) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def rescale(probabilities, temperature: float) -> np.ndarray:
    """softmax(temperature * log p): undoes (or applies, with 1 / T) a temperature on probabilities."""
    log_p = np.log(np.clip(np.asarray(probabilities, dtype=np.float64), 1e-30, None))
    return softmax(temperature * log_p)


def at_bound(temperature: float) -> bool:
    """Whether a fitted temperature stopped at an end of the searched range (no interior minimum)."""
    return bool(np.min(np.abs(np.log(temperature) - np.array(LOG_T_RANGE))) < 1e-3)


def negative_log_likelihood(logits, labels, temperature: float = 1.0) -> float:
    """Mean cross-entropy of softmax(logits / temperature) against integer labels."""
    log_p = log_softmax(np.asarray(logits, dtype=np.float64) / temperature)
    return float(-log_p[np.arange(len(labels)), np.asarray(labels)].mean())


def fit_temperature(logits, labels, iterations: int = 80, loss=None) -> float:
    """The temperature minimising the NLL of `labels` under softmax(logits / T), T in [0.25, 20]; or
    `loss(logits, labels, T)` when given (multi-label: the binary cross-entropy of sigmoid(logits / T))."""
    objective = loss or negative_log_likelihood
    low, high = LOG_T_RANGE
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    loss_a = objective(logits, labels, np.exp(a))
    loss_b = objective(logits, labels, np.exp(b))
    for _ in range(iterations):  # each step keeps the bracket that holds the minimum (0.618x narrower)
        if loss_a < loss_b:
            high, b, loss_b = b, a, loss_a
            a = high - ratio * (high - low)
            loss_a = objective(logits, labels, np.exp(a))
        else:
            low, a, loss_a = a, b, loss_b
            b = low + ratio * (high - low)
            loss_b = objective(logits, labels, np.exp(b))
    return float(np.exp((low + high) / 2.0))


def reliability_bins(probabilities, labels, bins: int = BINS) -> dict:
    """Per equal-width bin of the top-class confidence: count, mean confidence and accuracy (NaN when empty)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(labels)
    # Bin b holds confidences in (b / bins, (b + 1) / bins]; a confidence of 0 cannot occur (>= 1 / classes).
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    count = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(index, weights=confidence, minlength=bins) / count
        accuracy = np.bincount(index, weights=correct, minlength=bins) / count
    return {"edges": np.linspace(0.0, 1.0, bins + 1), "count": count,
            "confidence": mean_confidence, "accuracy": accuracy}


def expected_calibration_error(probabilities, labels, bins: int = BINS) -> float:
    """Sum over bins of (share of texts in the bin) x |accuracy - mean confidence| (top-class confidence)."""
    table = reliability_bins(probabilities, labels, bins)
    filled = table["count"] > 0
    gaps = np.abs(table["accuracy"][filled] - table["confidence"][filled])
    return float((table["count"][filled] / table["count"].sum() * gaps).sum())


def brier_score(probabilities, labels) -> float:
    """Multi-class Brier score: mean over texts of sum_k (p_k - [k == label])^2 (0 is perfect, 2 the worst)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    onehot = np.eye(probabilities.shape[1])[np.asarray(labels)]
    return float(((probabilities - onehot) ** 2).sum(axis=1).mean())


def summary(logits, labels, temperature: float) -> dict:
    """ECE, Brier and NLL of one split before (T = 1) and after temperature scaling."""
    before, after = softmax(logits), softmax(np.asarray(logits, dtype=np.float64) / temperature)
    return {"ece_before": expected_calibration_error(before, labels),
            "ece_after": expected_calibration_error(after, labels),
            "brier_before": brier_score(before, labels), "brier_after": brier_score(after, labels),
            "nll_before": negative_log_likelihood(logits, labels),
            "nll_after": negative_log_likelihood(logits, labels, temperature)}
