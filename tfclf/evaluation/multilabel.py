"""Multi-label decisions and metrics, NumPy only: sigmoid probabilities, one temperature, a threshold per label.

`MultiLabelDecision.fit` uses the validation split only. The temperature divides every label's logit
(fitted by minimising the validation binary cross-entropy, as softmax temperature scaling minimises the NLL, and
kept only when it lowers that loss on held-out validation folds: calibration.choose_temperature);
then each label gets the threshold that maximises its validation F1 (thresholds.choose; or the most recall at
--target-precision / the most precision at --target-recall), never below MIN_THRESHOLD; a label without
validation positives keeps 0.5. `--threshold <number>` fixes every label's threshold instead.

    >>> import numpy as np
    >>> from tfclf.config import DecisionConfig
    >>> logits = np.array([[2.0, -1.0], [1.0, -3.0], [-2.0, -0.5], [-1.0, 1.0]])
    >>> targets = np.array([[1, 0], [1, 0], [0, 1], [0, 1]])
    >>> decision = MultiLabelDecision.fit(DecisionConfig(calibration="none"), logits, targets, ["a", "b"])
    >>> decision.predict(decision.probabilities(logits)).tolist()      # b's threshold sits below 0.5
    [[1, 0], [1, 0], [0, 1], [0, 1]]
"""
import dataclasses

import numpy as np

from tfclf import choices
from tfclf.config import DecisionConfig, threshold_value
from tfclf.evaluation import calibration, thresholds

MIN_THRESHOLD = 0.05  # a label's threshold is never below this: a near-zero one would tag almost every text
DEFAULT_THRESHOLD = 0.5  # a label with no positive in validation has nothing to choose its threshold on


def sigmoid(logits) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -logits))


def binary_cross_entropy(logits, targets, temperature: float = 1.0) -> float:
    """Mean over texts and labels of -[y log sigmoid(z / T) + (1 - y) log sigmoid(-z / T)]."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    targets = np.asarray(targets, dtype=np.float64)
    return float((targets * np.logaddexp(0.0, -scaled) + (1.0 - targets) * np.logaddexp(0.0, scaled)).mean())


def text_losses(logits, targets, temperature: float = 1.0) -> np.ndarray:
    """Each text's binary cross-entropy, averaged over its labels (choose_temperature's per-text loss)."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    targets = np.asarray(targets, dtype=np.float64)
    return (targets * np.logaddexp(0.0, -scaled) + (1.0 - targets) * np.logaddexp(0.0, scaled)).mean(axis=1)


def logits_ece(logits, targets) -> float:
    """The ECE of every (text, label) pair's sigmoid(logits)."""
    return calibration.expected_calibration_error(*as_binary(sigmoid(logits), targets))


def as_binary(probabilities, targets) -> tuple:
    """Every (text, label) pair as a two-class prediction, [pairs, 2] probabilities and [pairs] labels: what
    the calibration figures (ECE, Brier, reliability diagram) of calibration.py take."""
    positive = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    return np.stack([1.0 - positive, positive], axis=1), np.asarray(targets).reshape(-1).astype(int)


def check(config: DecisionConfig, train_config) -> None:
    """ValueError for what multi-label data cannot do."""
    if config.positive_class:
        raise ValueError(f"--positive-class {config.positive_class!r}: multi-label data has a threshold per label, "
                         "chosen on validation; drop --positive-class")
    if train_config.monitor not in choices.MULTI_LABEL_MONITORS:
        raise ValueError(f"--monitor {train_config.monitor}: not a multi-label metric; choose one of: "
                         f"{', '.join(choices.MULTI_LABEL_MONITORS)}")
    if train_config.teacher:
        raise ValueError("--teacher: distillation is for single-label (softmax) tasks and this data is "
                         "multi-label; drop --teacher")


@dataclasses.dataclass(frozen=True)
class MultiLabelDecision(calibration.TemperatureScaled):
    temperature: float
    thresholds: tuple               # one per label, in class_names order
    class_names: tuple
    mode: str = "best F1"
    validation: dict = None         # label -> the threshold's validation precision, recall, F1
    separator: str = "|"            # joins the served label set (the data's --label-separator, else "|")
    calibration: dict = None        # calibration.choose_temperature's record: fitted T, kept or not, and why

    @classmethod
    def fit(cls, config: DecisionConfig, val_logits, val_targets, class_names,
            separator: str = "") -> "MultiLabelDecision":
        val_targets = np.asarray(val_targets) > 0.5
        chosen = calibration.choose_temperature(val_logits, val_targets, text_losses, logits_ece) \
            if config.calibration == "temperature" else None
        decision = cls(chosen["temperature"] if chosen else 1.0, (), tuple(class_names), separator=separator or "|",
                       calibration=chosen)
        scores = decision.probabilities(val_logits)
        fixed = threshold_value(config)
        chosen, validation = [], {}
        for index, name in enumerate(class_names):
            positives = val_targets[:, index]
            if fixed is not None:
                point = {**thresholds.point(scores[:, index], positives, fixed), "reached": True}
            elif not positives.any():
                point = {**thresholds.point(scores[:, index], positives, DEFAULT_THRESHOLD), "reached": False}
            else:
                point = thresholds.choose(scores[:, index], positives, config.target_precision, config.target_recall)
                if point["threshold"] < MIN_THRESHOLD:
                    point = {**thresholds.point(scores[:, index], positives, MIN_THRESHOLD),
                             "reached": point["reached"]}
            chosen.append(point["threshold"])
            validation[name] = point
        mode = "fixed" if fixed is not None else thresholds.target_mode(config.target_precision, config.target_recall)
        return dataclasses.replace(decision, thresholds=tuple(chosen), mode=mode, validation=validation)

    def probabilities(self, logits) -> np.ndarray:
        """Calibrated per-label probabilities (float32, as the export serves them)."""
        return sigmoid(np.asarray(logits, dtype=np.float64) / self.temperature).astype(np.float32)

    def predict(self, probabilities) -> np.ndarray:
        """The label mask, int32 [texts, labels]: p >= the label's threshold."""
        return (np.asarray(probabilities) >= np.asarray(self.thresholds, dtype=np.float32)).astype(np.int32)

    def export_record(self) -> dict:
        """What the export's calibration.json says (beside the numbers inside its graph)."""
        return {"multi_label": True, "temperature": self.temperature, "threshold": None,
                "thresholds": dict(zip(self.class_names, self.thresholds)), "threshold_mode": self.mode,
                "label_separator": self.separator}

    def report(self, test_logits, test_targets) -> dict:
        """metrics.json's "decision": temperature and thresholds, calibration figures of the (text, label)
        pairs on test before and after the temperature, each threshold's validation figures."""
        test_targets = np.asarray(test_targets)
        before = as_binary(sigmoid(test_logits), test_targets)
        after = as_binary(self.probabilities(test_logits), test_targets)
        test = {"ece_before": calibration.expected_calibration_error(*before),
                "ece_after": calibration.expected_calibration_error(*after),
                "brier_before": calibration.brier_score(*before), "brier_after": calibration.brier_score(*after),
                "nll_before": binary_cross_entropy(test_logits, test_targets),
                "nll_after": binary_cross_entropy(test_logits, test_targets, self.temperature)}
        return {**self.export_record(), "fitted_on": "val", "temperature_at_bound": self.temperature_at_bound,
                "calibration": self.calibration, "test": test, "threshold_validation": self.validation}
