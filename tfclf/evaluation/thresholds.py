"""Decision thresholds for binary tasks: predict the positive class when its probability >= t. NumPy only.

`choose` picks t on the validation split: the t that maximises the positive class's F1, or the one
with the most recall at a required precision (`target_precision`), or the most precision at a
required recall (`target_recall`). `decide` applies a threshold as the exported model does.

    >>> import numpy as np
    >>> scores = np.array([0.9, 0.4, 0.35, 0.3, 0.1, 0.05])
    >>> positives = np.array([True, True, True, False, False, False])
    >>> round(choose(scores, positives)["threshold"], 4)    # between 0.35 and 0.3: all three positives
    0.325
    >>> point(scores, positives, 0.5)["f1"]                 # argmax (0.5) finds one of three
    0.5
"""
import numpy as np


def target_mode(target_precision: float, target_recall: float) -> str:
    """How a threshold is chosen on validation, in words (calibration.json's threshold_mode)."""
    return (f"precision >= {target_precision:g}" if target_precision else
            f"recall >= {target_recall:g}" if target_recall else "best F1")


def curve(scores, positives) -> dict:
    """Precision, recall and F1 of "positive when score >= t" for every distinct score t (highest first),
    with the threshold each point uses: halfway to the next lower score, so it sits between texts."""
    scores, positives = np.asarray(scores, dtype=np.float64), np.asarray(positives, dtype=bool)
    order = np.argsort(-scores, kind="stable")
    scores, positives = scores[order], positives[order]
    last = np.r_[scores[1:] != scores[:-1], True]  # the last text of each run of equal scores
    true_positives = np.cumsum(positives)[last]
    predicted = (np.arange(len(scores)) + 1)[last]
    distinct = scores[last]
    precision = true_positives / predicted
    recall = true_positives / max(int(positives.sum()), 1)
    with np.errstate(invalid="ignore"):
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    lower = np.r_[distinct[1:], 0.0]
    return {"threshold": (distinct + lower) / 2.0, "precision": precision, "recall": recall, "f1": f1}


def choose(scores, positives, target_precision: float = 0.0, target_recall: float = 0.0) -> dict:
    """The threshold and its validation precision, recall and F1; `reached` says whether a target was met
    (when a precision target cannot be met, the most precise threshold is returned)."""
    points = curve(scores, positives)
    reached = True
    if target_precision:
        ok = points["precision"] >= target_precision
        reached = bool(ok.any())
        # The most recall among the thresholds that reach the precision; else the most precise one.
        index = int(np.flatnonzero(ok)[-1]) if reached else int(np.argmax(points["precision"]))
    elif target_recall:
        ok = points["recall"] >= target_recall
        index = int(np.flatnonzero(ok)[np.argmax(points["precision"][ok])])
    else:
        index = int(np.argmax(points["f1"]))
    return {"threshold": float(points["threshold"][index]), "precision": float(points["precision"][index]),
            "recall": float(points["recall"][index]), "f1": float(points["f1"][index]), "reached": reached}


def point(scores, positives, threshold: float) -> dict:
    """Precision, recall and F1 of the positive class at one threshold."""
    predicted, positives = np.asarray(scores) >= threshold, np.asarray(positives, dtype=bool)
    true_positives = int((predicted & positives).sum())
    precision = true_positives / max(int(predicted.sum()), 1)
    recall = true_positives / max(int(positives.sum()), 1)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"threshold": float(threshold), "precision": precision, "recall": recall, "f1": f1}


def decide(probabilities, threshold: float = None, positive_id: int = 1) -> np.ndarray:
    """Class ids: argmax, or for a binary task with a threshold, the positive class when p >= threshold."""
    probabilities = np.asarray(probabilities)
    if threshold is None:
        return probabilities.argmax(axis=1)
    return np.where(probabilities[:, positive_id] >= threshold, positive_id, 1 - positive_id)
