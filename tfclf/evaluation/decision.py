"""From logits to what a run reports and its export serves: calibrated probabilities, then classes.

`Decision.fit` uses the validation split only: the temperature (calibration.py; kept only when it lowers the
NLL of held-out validation folds, see calibration.choose_temperature) and, for a binary task
with `--threshold auto`, the positive class's threshold (thresholds.py) on the calibrated probabilities.
`check` refuses impossible requests (a threshold on a 3-class task, an unknown positive class) before a
run directory exists. NumPy only; the export puts the same two numbers into its graph.

    >>> import numpy as np
    >>> config = DecisionConfig(calibration="none", threshold="0.3")
    >>> decision = Decision.fit(config, np.zeros((2, 2)), np.array([0, 1]), ["ham", "spam"], [0, 0, 1])
    >>> decision.positive_class, decision.predict(np.array([[0.75, 0.25], [0.65, 0.35]])).tolist()
    ('spam', [0, 1])
"""
import dataclasses

import numpy as np

from tfclf import choices
from tfclf.config import DecisionConfig, threshold_value
from tfclf.evaluation import calibration, thresholds


def minority_class(class_names, train_label_ids) -> int:
    """The class with the fewest training texts (the first of equals)."""
    return int(np.argmin(np.bincount(np.asarray(train_label_ids), minlength=len(class_names))))


def check(config: DecisionConfig, class_names, monitor: str = "val_macro_f1") -> None:
    """ValueError for a threshold that cannot apply to these classes (or a multi-label --monitor)."""
    if monitor not in choices.SINGLE_LABEL_MONITORS:
        raise ValueError(f"--monitor {monitor}: a multi-label metric, and the data is single-label; choose one "
                         f"of: {', '.join(choices.SINGLE_LABEL_MONITORS)}")
    if config.threshold != "argmax" and len(class_names) != 2:
        raise ValueError(f"--threshold {config.threshold}: thresholds apply to binary tasks, and the data has "
                         f"{len(class_names)} classes ({', '.join(class_names[:5])}); use --threshold argmax")
    if config.positive_class and config.positive_class not in class_names:
        raise ValueError(f"--positive-class {config.positive_class!r} is not a class of the data; choose one of: "
                         f"{', '.join(class_names[:10])}")


@dataclasses.dataclass(frozen=True)
class Decision(calibration.TemperatureScaled):
    temperature: float = 1.0
    threshold: float = None         # None: argmax
    positive_id: int = 1
    positive_class: str = ""
    mode: str = "argmax"            # argmax | best F1 | precision >= x | recall >= x | fixed
    validation: dict = None         # the threshold's validation precision, recall, F1 (and target reached)
    calibration: dict = None        # calibration.choose_temperature's record: fitted T, kept or not, and why

    @classmethod
    def fit(cls, config: DecisionConfig, val_logits, val_label_ids, class_names, train_label_ids) -> "Decision":
        check(config, class_names)
        val_label_ids = np.asarray(val_label_ids)
        chosen = calibration.choose_temperature(val_logits, val_label_ids) \
            if config.calibration == "temperature" else None
        positive_id = (class_names.index(config.positive_class) if config.positive_class
                       else minority_class(class_names, train_label_ids)) if len(class_names) == 2 else 1
        decision = cls(chosen["temperature"] if chosen else 1.0, None, positive_id,
                       class_names[positive_id] if len(class_names) == 2 else "", calibration=chosen)
        if config.threshold == "argmax":
            return decision
        scores = decision.probabilities(val_logits)[:, positive_id]
        positives = val_label_ids == positive_id
        if config.threshold == "auto":
            chosen = thresholds.choose(scores, positives, config.target_precision, config.target_recall)
            mode = thresholds.target_mode(config.target_precision, config.target_recall)
        else:
            chosen, mode = {**thresholds.point(scores, positives, threshold_value(config)), "reached": True}, "fixed"
        return dataclasses.replace(decision, threshold=chosen["threshold"], mode=mode, validation=chosen)

    def probabilities(self, logits) -> np.ndarray:
        """Calibrated probabilities (float32, as the export serves them)."""
        return calibration.softmax(np.asarray(logits, dtype=np.float64) / self.temperature).astype(np.float32)

    def predict(self, probabilities) -> np.ndarray:
        return thresholds.decide(probabilities, self.threshold, self.positive_id)

    def export_record(self) -> dict:
        """What the export's calibration.json says (beside the numbers inside its graph)."""
        thresholded = self.threshold is not None
        return {"temperature": self.temperature, "threshold": self.threshold,
                "positive_class": self.positive_class if thresholded else "",
                "positive_id": self.positive_id if thresholded else None, "threshold_mode": self.mode}

    def report(self, test_logits, test_label_ids) -> dict:
        """metrics.json's "decision": the temperature with test ECE / Brier / NLL before and after, and the
        threshold's test precision, recall and F1 beside argmax's."""
        test_label_ids = np.asarray(test_label_ids)
        record = {**self.export_record(), "fitted_on": "val", "temperature_at_bound": self.temperature_at_bound,
                  "calibration": self.calibration,
                  "test": calibration.summary(test_logits, test_label_ids, self.temperature)}
        if self.threshold is not None:
            scores = self.probabilities(test_logits)[:, self.positive_id]
            positives = test_label_ids == self.positive_id
            record["threshold_validation"] = self.validation
            record["threshold_test"] = {"at_threshold": thresholds.point(scores, positives, self.threshold),
                                        "argmax": thresholds.point(scores, positives, 0.5)}
        return record
