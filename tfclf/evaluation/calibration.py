"""Temperature scaling (Guo et al. 2017) and the calibration figures: ECE and the Brier score. NumPy only.

One scalar T divides the logits; it is fitted on the validation split by minimising the negative
log-likelihood, never on test. The NLL of softmax(z / T) is convex in 1 / T, hence unimodal in log T,
so a golden-section search on log T finds the minimum without scipy or gradients.

A temperature fitted on a few hundred texts can make an already calibrated model worse on new texts, so
`choose_temperature` keeps it only when it helps texts it was not fitted on by more than chance: in FOLDS-fold
cross-validation on the validation split (fit on the other folds, score the held-out fold) the held-out NLL
must fall by more than the noise of that gain (the larger of its standard error over the texts and over the
five folds' mean gains); otherwise T = 1.

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
FOLDS = 5  # cross-validation folds of choose_temperature (each fit sees 80% of the validation split)
MIN_FOLD_TEXTS = 10  # fewer validation texts per fold: too few to judge a temperature, T = 1
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


class TemperatureScaled:
    """What both decisions (decision.Decision, multilabel.MultiLabelDecision) share: a `temperature`."""

    @property
    def temperature_at_bound(self) -> bool:
        """Whether the kept temperature sits at the bound of its search (the fit found no minimum inside)."""
        return self.temperature != 1.0 and at_bound(self.temperature)


def negative_log_likelihood(logits, labels, temperature: float = 1.0) -> float:
    """Mean cross-entropy of softmax(logits / temperature) against integer labels."""
    return float(text_losses(logits, labels, temperature).mean())


def text_losses(logits, labels, temperature: float = 1.0) -> np.ndarray:
    """Each text's cross-entropy under softmax(logits / temperature)."""
    log_p = log_softmax(np.asarray(logits, dtype=np.float64) / temperature)
    return -log_p[np.arange(len(labels)), np.asarray(labels)]


def logits_ece(logits, labels) -> float:
    """The ECE of softmax(logits)."""
    return expected_calibration_error(softmax(logits), labels)


def choose_temperature(logits, labels, losses=text_losses, ece=logits_ece, folds: int = FOLDS,
                       seed: int = 0) -> dict:
    """The temperature to serve and why: {"temperature": the fitted T if kept else 1.0, "fitted": T fitted on
    all of `logits`, "kept", "reason", "folds", "fold_temperatures", "heldout": NLL and ECE of the held-out
    folds at T = 1 and at their fold's T, the NLL gain and its standard error}. `losses(logits, labels, T)`
    gives each text's loss, `ece(logits, labels)` the ECE of unscaled logits (multi-label: binary ones).

        >>> import numpy as np
        >>> rng = np.random.default_rng(1)
        >>> logits = rng.normal(0, 3, (400, 3))
        >>> labels = np.array([rng.choice(3, p=p) for p in softmax(logits)])   # calibrated by construction
        >>> choose_temperature(logits, labels)["temperature"]
        1.0
        >>> choose_temperature(4.0 * logits, labels)["kept"]                   # four times too sharp
        True
    """
    logits, labels = np.asarray(logits, dtype=np.float64), np.asarray(labels)
    mean_loss = lambda z, y, t: float(losses(z, y, t).mean())  # noqa: E731
    fitted = fit_temperature(logits, labels, loss=mean_loss)
    record = {"temperature": 1.0, "fitted": fitted, "kept": False, "folds": 0, "fold_temperatures": [],
              "heldout": None}
    if len(labels) < folds * MIN_FOLD_TEXTS:
        return {**record, "reason": f"{len(labels)} validation texts are too few to cross-validate a temperature "
                                    f"({folds} folds of at least {MIN_FOLD_TEXTS}); T = 1"}
    parts = np.array_split(np.random.default_rng(seed).permutation(len(labels)), folds)
    per_text_temperature = np.ones(len(labels))
    for part in parts:
        rest = np.setdiff1d(np.arange(len(labels)), part)
        per_text_temperature[part] = fit_temperature(logits[rest], labels[rest], loss=mean_loss)
    before = losses(logits, labels, 1.0)
    after = np.concatenate([losses(logits[part], labels[part], per_text_temperature[part][0]) for part in parts])
    before = np.concatenate([before[part] for part in parts])
    gain = before - after
    standard_error = float(gain.std(ddof=1) / np.sqrt(len(gain)))
    offsets = np.cumsum([0] + [len(part) for part in parts])
    fold_gains = np.array([gain[start:end].mean() for start, end in zip(offsets[:-1], offsets[1:])])
    fold_noise = float(fold_gains.std(ddof=1) / np.sqrt(folds))
    scaled = logits / per_text_temperature.reshape((-1,) + (1,) * (logits.ndim - 1))
    heldout = {"nll_before": float(before.mean()), "nll_after": float(after.mean()),
               "nll_gain": float(gain.mean()), "nll_gain_se": standard_error, "nll_gain_fold_se": fold_noise,
               "fold_gains": [float(value) for value in fold_gains],
               "ece_before": ece(logits, labels), "ece_after": ece(scaled, labels)}
    # The held-out NLL decides: a proper scoring rule, and the objective T is fitted for. The held-out ECE is
    # recorded but does not decide: with 15 bins over a few hundred texts it moves by chance more than T moves it.
    # The gain must exceed its noise. Simulated SMS-like logits (2 classes, 740 validation and 740 test texts, 60
    # draws per scale; notes/issue-28-defaults.md): on calibrated logits "gain > 0" kept a T in 15 of 60 draws and
    # raised test ECE by 0.0008 on average, as on the default MiniLM run (T = 1.122 kept, test ECE 0.0017 ->
    # 0.0071); with this margin 0 of 60 and +0.0000, while logits 0.8x, 1.3x or 1.6x off are still corrected in
    # 26, 13 and 48 of 60 draws, lowering test ECE on average by 0.0024, 0.0004 and 0.0041.
    noise = max(fold_noise, standard_error)
    kept = heldout["nll_gain"] > noise
    reason = (f"{'kept' if kept else 'not kept (T = 1)'}: the held-out NLL went {heldout['nll_before']:.4f} -> "
              f"{heldout['nll_after']:.4f} with each fold's own T (gain {heldout['nll_gain']:+.4f}, "
              f"{'above' if kept else 'not above'} its noise {noise:.4f}; ECE "
              f"{heldout['ece_before']:.4f} -> {heldout['ece_after']:.4f})")
    return {**record, "temperature": fitted if kept else 1.0, "kept": bool(kept), "reason": reason,
            "folds": folds, "fold_temperatures": [float(per_text_temperature[part][0]) for part in parts],
            "heldout": heldout}


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
