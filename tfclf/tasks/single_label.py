"""The single-label task: one class per text, softmax over the classes.

Training fits the configured loss (cross-entropy or focal, inside distillation with a teacher) and tracks
accuracy and macro-F1; the decision (evaluation/decision.py) is the temperature and, for a binary task, a
threshold fitted on validation; the held-out report is per class, with a confusion matrix, a reliability
diagram and, with a threshold, the positive class's precision-recall curve.

    >>> import numpy as np
    >>> SingleLabel().metrics(np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]]), None, ["a", "b"], 0.1)["accuracy"]
    1.0
"""
import functools
import os

import numpy as np
from sklearn import metrics as sk_metrics

from tfclf.data import labelled
from tfclf.evaluation import calibration, decision as decision_lib, plots, report_page, text_report, thresholds
from tfclf.tasks.task import Held, Objective, Task


class SingleLabel(Task):
    name = "single_label"
    outputs = ("probabilities", "class_id", "class_name")
    signature = "Serving"
    default_monitor = "val_macro_f1"

    def check(self, config, class_names) -> None:
        decision_lib.check(config.decision, class_names, config.train.monitor)

    def targets(self, frame, class_names) -> np.ndarray:
        return frame["label_id"].to_numpy()

    # --- training ---

    def objective(self, train_config, num_classes: int, train_targets) -> Objective:
        from tfclf.training import losses, metrics  # TensorFlow
        return Objective(losses.build_training(train_config, num_classes),
                         functools.partial(metrics.single_label, num_classes))

    def sample_weights(self, train_targets, num_classes: int, mode: str):
        from tfclf.training import fit  # TensorFlow
        return fit.class_sample_weights(train_targets, fit.class_weights(train_targets, num_classes, mode))

    # --- the decision and held-out metrics ---

    def fit_decision(self, decision_config, val_logits, val_targets, splits, train_targets):
        return decision_lib.Decision.fit(decision_config, val_logits, val_targets, splits.class_names, train_targets)

    def decision_notes(self, decision, decision_config, val_targets, class_names) -> list:
        notes = []
        if decision.temperature_at_bound:
            notes.append(f"calibration: the temperature stopped at its bound {decision.temperature:g}: the validation "
                         "split's likelihood has no minimum inside (0.25, 20), e.g. every validation text is right")
        if decision.validation and not decision.validation["reached"]:
            notes.append(f"--target-precision {decision_config.target_precision:g} is not reached on validation at "
                         f"any threshold; using the most precise one (precision {decision.validation['precision']:.4f})")
        return notes

    def uncalibrated(self, logits) -> np.ndarray:
        return calibration.softmax(logits)

    def loss(self, train_config, targets, logits) -> float:
        from tfclf.evaluation import scoring  # TensorFlow
        return scoring.mean_loss(train_config, targets, calibration.softmax(logits))

    def served_loss(self, train_config, targets, probabilities, temperature) -> float:
        """The loss of an export's served probabilities with its temperature undone (exact unless a probability
        underflowed): the model's own."""
        from tfclf.evaluation import scoring  # TensorFlow
        return scoring.mean_loss(train_config, targets, calibration.rescale(probabilities, temperature or 1.0))

    def metrics(self, targets, probabilities, predicted, class_names, loss: float) -> dict:
        """Accuracy, F1s and the per-class table of the `predicted` class ids (default: argmax), and `loss`."""
        label_ids = np.asarray(targets)
        predicted = probabilities.argmax(axis=1) if predicted is None else np.asarray(predicted)
        labels = list(range(len(class_names)))
        precision, recall, f1, support = sk_metrics.precision_recall_fscore_support(
            label_ids, predicted, labels=labels, zero_division=0)
        return {
            "accuracy": float(sk_metrics.accuracy_score(label_ids, predicted)),
            "macro_f1": float(sk_metrics.f1_score(label_ids, predicted, labels=labels, average="macro",
                                                  zero_division=0)),
            "weighted_f1": float(sk_metrics.f1_score(label_ids, predicted, labels=labels, average="weighted",
                                                     zero_division=0)),
            "loss": float(loss),
            "per_class": {name: {"precision": float(precision[i]), "recall": float(recall[i]),
                                 "f1": float(f1[i]), "support": int(support[i])}
                          for i, name in enumerate(class_names)},
        }

    def extra_metrics(self, train_config, held: Held, decision, logits, class_names) -> dict:
        """With a threshold, the same texts by argmax beside it (`test_argmax`)."""
        if decision.threshold is None:
            return {}
        return {"test_argmax": self.metrics(held.targets, held.probabilities, None, class_names,
                                            self.loss(train_config, held.targets, logits))}

    # --- an export's outputs ---

    def served(self, outputs: dict) -> tuple:
        return outputs["probabilities"], outputs["class_id"]

    def served_decision(self, record: dict, targets, probabilities) -> dict:
        """The export's temperature and threshold (none in older exports) with the ECE and Brier score of its
        served probabilities on this data, and the threshold's precision/recall/F1."""
        decision = {key: record.get(key) for key in ("temperature", "threshold", "positive_class", "positive_id",
                                                     "threshold_mode")}
        label_ids = np.asarray(targets)
        decision["served"] = {"ece": calibration.expected_calibration_error(probabilities, label_ids),
                              "brier": calibration.brier_score(probabilities, label_ids)}
        if decision["threshold"] is not None:
            scores, positives = probabilities[:, decision["positive_id"]], label_ids == decision["positive_id"]
            decision["threshold_test"] = {"at_threshold": thresholds.point(scores, positives, decision["threshold"]),
                                          "argmax": thresholds.point(scores, positives, 0.5)}
        return decision

    def read_labelled(self, path: str, text_columns: tuple, label_column: str, class_names, trained_data: dict,
                      label_separator=None, label_columns=None):
        return labelled.read_labels(path, text_columns, label_column, class_names)

    # --- artifacts and lines ---

    def prediction_columns(self, outputs: dict, class_names) -> dict:
        """`predicted`, its probability (`confidence`) and every class's (`p_<class>`)."""
        columns = {"predicted": [name.decode() for name in outputs["class_name"]],
                   "confidence": outputs["probabilities"][range(len(outputs["class_id"])), outputs["class_id"]]}
        return {**columns, **{f"p_{name}": outputs["probabilities"][:, index] for index, name in enumerate(class_names)}}

    def prediction_lines(self, texts, outputs: dict, class_names) -> list:
        """The class, its probability and the text."""
        return [f"{name.decode()}\t{outputs['probabilities'][index, class_id]:.4f}\t{text}"
                for index, (text, name, class_id) in enumerate(zip(texts, outputs["class_name"], outputs["class_id"]))]

    def write_artifacts(self, directory: str, held: Held, metrics: dict, decision: dict, class_names,
                        panels, curves=(), explain=None) -> dict:
        """predictions.csv, confusion_matrix.png, report.txt (the most confidently wrong texts explained by
        `explain` when given), reliability.png and, with a threshold, pr_curve.png."""
        label_ids, predicted = np.asarray(held.targets), np.asarray(held.predicted)
        wrong = text_report.write_predictions(held.rows, held.probabilities, class_names,
                                              os.path.join(directory, "predictions.csv"), predicted, label_ids)
        plots.confusion_matrix_plot(label_ids, predicted, class_names,
                                    os.path.join(directory, "confusion_matrix.png"), held.title)
        explanations = explain(wrong["text"].tolist(), [class_names.index(name) for name in wrong["predicted"]]) \
            if explain and len(wrong) else []
        text_report.text_report(metrics, wrong, explanations, class_names, os.path.join(directory, "report.txt"),
                                decision)
        plots.reliability_plot(panels, label_ids, os.path.join(directory, "reliability.png"))
        if decision.get("threshold") is not None and curves:
            positive = decision["positive_id"]
            plots.pr_curve_plot([(title, probabilities[:, positive], np.asarray(labels) == positive)
                                 for title, probabilities, labels in curves],
                                decision["threshold"], decision["positive_class"],
                                os.path.join(directory, "pr_curve.png"))
        return {"wrong": wrong, "explanations": explanations}

    def evaluation_line(self, metrics: dict, served: dict) -> str:
        return (f"accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}, ECE {served['ece']:.4f}, "
                f"Brier {served['brier']:.4f}")

    def metrics_section(self, test: dict, title: str, decision: dict, argmax: dict = None) -> str:
        return report_page.metrics_section(test, title, argmax)

    def wrong_section(self, page: dict) -> str:
        return report_page.wrong_section(page["wrong"], page["explanations"])
