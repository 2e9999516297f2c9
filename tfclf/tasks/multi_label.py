"""The multi-label task: a set of labels per text, one sigmoid per label.

Training fits binary cross-entropy per label (or its focal form), weighted per label with --class-weight
balanced, and tracks micro-, macro- and samples-F1, subset accuracy and Hamming loss; the decision
(evaluation/multilabel.py) is one temperature and a threshold per label fitted on validation; the held-out
report is per label, with its confusion counts, and the reliability diagram of every (text, label) pair.

    >>> import numpy as np
    >>> MultiLabel().metrics(np.array([[1, 0], [0, 1]]), None, np.array([[1, 0], [1, 1]]), ["a", "b"], 0.0)["micro_f1"]
    0.8
"""
import functools
import os

import numpy as np
import pandas as pd
from sklearn import metrics as sk_metrics

from tfclf import files
from tfclf.data import labelled, multilabel as label_sets
from tfclf.evaluation import calibration, multilabel, plots, report_page, text_report
from tfclf.tasks.task import Held, Objective, Task


class MultiLabel(Task):
    name = "multi_label"
    outputs = ("probabilities", "label_mask", "label_names")
    signature = "MultiLabelServing"
    # Not macro-F1: a rare label (TREC's ABBR, 13 test texts) swings it between validations, and early stopping
    # on that noise ended the default TREC runs below the 4-epoch quality micro-F1 reaches (notes/issue-28).
    default_monitor = "val_micro_f1"
    label_word = "label"
    counts_note = "a text counts under each of its labels"

    def check(self, config, class_names) -> None:
        multilabel.check(config.decision, config.train)

    def targets(self, frame, class_names) -> np.ndarray:
        return label_sets.targets(frame["labels"], class_names)

    # --- training ---

    def objective(self, train_config, num_classes: int, train_targets) -> Objective:
        """Label imbalance is in the loss: per-label (negative, positive) weights from the training targets."""
        from tfclf.training import fit, losses, metrics  # TensorFlow
        weights = fit.label_weights(train_targets, train_config.class_weight)
        return Objective(losses.build_multi_label(train_config, weights),
                         functools.partial(metrics.multi_label, num_classes))

    # --- the decision and held-out metrics ---

    def fit_decision(self, decision_config, val_logits, val_targets, splits, train_targets):
        return multilabel.MultiLabelDecision.fit(decision_config, val_logits, val_targets, splits.class_names,
                                                 splits.label_separator)

    def decision_notes(self, decision, decision_config, val_targets, class_names) -> list:
        unseen = [name for i, name in enumerate(class_names) if not np.asarray(val_targets)[:, i].any()]
        return [f"thresholds: label(s) {unseen[:5]} have no validation text; they keep "
                f"{multilabel.DEFAULT_THRESHOLD}"] if unseen else []

    def uncalibrated(self, logits) -> np.ndarray:
        return multilabel.sigmoid(logits)

    def loss(self, train_config, targets, logits) -> float:
        return multilabel.binary_cross_entropy(logits, targets)

    def served_loss(self, train_config, targets, probabilities, temperature) -> float:
        """The loss of an export's served probabilities: its temperature undone on the logits log(p / (1 - p))."""
        clipped = np.clip(probabilities.astype(np.float64), 1e-7, 1 - 1e-7)
        logits = (temperature or 1.0) * np.log(clipped / (1.0 - clipped))
        return multilabel.binary_cross_entropy(logits, targets)

    def metrics(self, targets, probabilities, predicted, class_names, loss: float) -> dict:
        return metrics(targets, probabilities, predicted, class_names, loss)

    # --- an export's outputs ---

    def served(self, outputs: dict) -> tuple:
        return outputs["probabilities"], outputs["label_mask"]

    def served_decision(self, record: dict, targets, probabilities) -> dict:
        """The export's temperature, per-label thresholds and separator with the ECE and Brier score of its
        served (text, label) probabilities on this data."""
        decision = {key: record.get(key) for key in ("multi_label", "temperature", "threshold", "thresholds",
                                                     "threshold_mode", "label_separator")}
        served = multilabel.as_binary(probabilities, targets)
        decision["served"] = {"ece": calibration.expected_calibration_error(*served),
                              "brier": calibration.brier_score(*served)}
        return decision

    def read_labelled(self, path: str, text_columns: tuple, label_column: str, class_names, trained_data: dict,
                      label_separator=None, label_columns=None):
        """The separator and 0/1 columns default to the ones the model was trained with."""
        separator = trained_data.get("label_separator", "") if label_separator is None else label_separator
        columns = tuple(trained_data.get("label_columns", ())) if label_columns is None else tuple(label_columns)
        return labelled.read_label_sets(path, text_columns, label_column, class_names, separator, columns)

    # --- artifacts and lines ---

    def check_explain(self) -> None:
        raise ValueError("--explain explains one predicted class and this model predicts label sets; drop --explain")

    def prediction_columns(self, outputs: dict, class_names) -> dict:
        """`predicted` (the label set) and every label's probability (`p_<label>`)."""
        return {"predicted": [names.decode() for names in outputs["label_names"]],
                **{f"p_{name}": outputs["probabilities"][:, index] for index, name in enumerate(class_names)}}

    def prediction_lines(self, texts, outputs: dict, class_names) -> list:
        """The predicted set (`{}` when no label passes its threshold), each chosen label's probability, the text."""
        lines = []
        for index, text in enumerate(texts):
            chosen = [f"{name} {outputs['probabilities'][index, k]:.4f}" for k, name in enumerate(class_names)
                      if outputs["label_mask"][index, k]]
            lines.append(f"{outputs['label_names'][index].decode() or '{}'}\t{', '.join(chosen) or '-'}\t{text}")
        return lines

    def write_artifacts(self, directory: str, held: Held, metrics: dict, decision: dict, class_names,
                        panels, curves=(), explain=None) -> dict:
        """predictions.csv, report.txt and reliability.png (the (text, label) pairs of each panel); no word
        explanations (they explain one predicted class)."""
        separator = decision.get("label_separator") or "|"
        predictions = write_predictions(held.rows, held.probabilities, held.predicted, class_names, separator,
                                        os.path.join(directory, "predictions.csv"))
        wrong = text_report.confidently_wrong(predictions)
        write_text_report(metrics, wrong, class_names, decision, os.path.join(directory, "report.txt"))
        plots.reliability_plot([(name, multilabel.as_binary(p, held.targets)[0]) for name, p in panels],
                               np.asarray(held.targets).reshape(-1).astype(int),
                               os.path.join(directory, "reliability.png"), unit="pairs")
        return {"wrong": wrong, "explanations": []}

    def more_summary_lines(self, test: dict) -> list:
        return [f"         micro-F1 {test['micro_f1']:.4f}, samples-F1 {test['samples_f1']:.4f}, Hamming loss "
                f"{test['hamming_loss']:.4f} (accuracy: subset accuracy; thresholds per label in report.txt)"]

    def evaluation_line(self, metrics: dict, served: dict) -> str:
        return (f"micro-F1 {metrics['micro_f1']:.4f}, macro-F1 {metrics['macro_f1']:.4f}, samples-F1 "
                f"{metrics['samples_f1']:.4f}, subset accuracy {metrics['subset_accuracy']:.4f}, Hamming loss "
                f"{metrics['hamming_loss']:.4f}")

    def metrics_section(self, test: dict, title: str, decision: dict, argmax: dict = None) -> str:
        return report_page.multi_label_section(test, title, decision.get("thresholds") or {})

    def wrong_section(self, page: dict) -> str:
        return report_page.wrong_label_sets_section(page["wrong"])


def metrics(targets, probabilities, predicted, class_names, loss: float) -> dict:
    """The multi-label metrics of a label mask: micro-, macro-, weighted- and samples-F1 (a text with no true
    and no predicted label scores 1), subset accuracy (also as `accuracy`), Hamming loss, and per label
    precision / recall / F1 / support with its confusion counts TP / FP / FN / TN."""
    targets, predicted = np.asarray(targets).astype(int), np.asarray(predicted).astype(int)
    precision, recall, f1, support = sk_metrics.precision_recall_fscore_support(targets, predicted, zero_division=0)
    per_class = {}
    for i, name in enumerate(class_names):
        truth, guess = targets[:, i] == 1, predicted[:, i] == 1
        per_class[name] = {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                           "support": int(support[i]), "tp": int((truth & guess).sum()),
                           "fp": int((~truth & guess).sum()), "fn": int((truth & ~guess).sum()),
                           "tn": int((~truth & ~guess).sum())}
    subset = float(sk_metrics.accuracy_score(targets, predicted))
    return {
        "micro_f1": float(sk_metrics.f1_score(targets, predicted, average="micro", zero_division=0)),
        "macro_f1": float(sk_metrics.f1_score(targets, predicted, average="macro", zero_division=0)),
        "weighted_f1": float(sk_metrics.f1_score(targets, predicted, average="weighted", zero_division=0)),
        "samples_f1": float(sk_metrics.f1_score(targets, predicted, average="samples", zero_division=1)),
        "subset_accuracy": subset, "accuracy": subset,
        "hamming_loss": float(sk_metrics.hamming_loss(targets, predicted)),
        "loss": float(loss), "per_class": per_class,
    }


def write_predictions(frame: pd.DataFrame, probabilities, mask, class_names, separator: str, path: str) -> pd.DataFrame:
    """predictions.csv: text, true and predicted label sets, `confidence` (the mean over labels of the
    probability of the decision taken: p where the label is predicted, 1 - p where not), every label's p."""
    probabilities, mask = np.asarray(probabilities), np.asarray(mask)
    table = pd.DataFrame({
        "text": frame["text"].to_numpy(),
        "true": [label_sets.display(labels, separator) for labels in frame["labels"]],
        "predicted": [label_sets.display([name for name, on in zip(class_names, row) if on], separator)
                      for row in mask],
        "confidence": np.where(mask > 0, probabilities, 1.0 - probabilities).mean(axis=1)})
    for i, name in enumerate(class_names):
        table[f"p_{name}"] = probabilities[:, i]
    with files.atomic_write(path) as handle:
        table.to_csv(handle, index=False)
    return table


def write_text_report(metrics: dict, wrong: pd.DataFrame, class_names, decision: dict, path: str) -> str:
    """Per label precision / recall / F1 / support, its confusion counts and threshold; the multi-label
    averages; calibration; the most confidently wrong label sets."""
    thresholds = decision.get("thresholds") or {}
    lines = [f"{'label':<20}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}{'TP':>7}{'FP':>7}{'FN':>7}"
             f"{'TN':>7}{'threshold':>11}"]
    for name in class_names:
        row = metrics["per_class"][name]
        lines.append(f"{name:<20}{row['precision']:>10.4f}{row['recall']:>10.4f}{row['f1']:>10.4f}"
                     f"{row['support']:>9d}{row['tp']:>7d}{row['fp']:>7d}{row['fn']:>7d}{row['tn']:>7d}"
                     f"{thresholds.get(name, float('nan')):>11.4f}")
    lines += ["", summary_line(metrics)]
    lines += text_report.decision_lines(decision)
    if thresholds:
        lines.append(f"thresholds: one per label ({decision.get('threshold_mode')} on validation, never below "
                     f"{multilabel.MIN_THRESHOLD}; 0.5 for a label without validation texts)")
    lines += ["", f"Most confidently wrong label sets (up to {len(wrong)}):"]
    for _, row in wrong.iterrows():
        lines.append(f"  true={row['true'] or '{}'} predicted={row['predicted'] or '{}'} "
                     f"confidence={row['confidence']:.3f}  {row['text'][:160]!r}")
    return files.write_text(path, "\n".join(lines) + "\n")


def summary_line(metrics: dict) -> str:
    return (f"micro-F1 {metrics['micro_f1']:.4f}   macro-F1 {metrics['macro_f1']:.4f}   samples-F1 "
            f"{metrics['samples_f1']:.4f}   subset accuracy {metrics['subset_accuracy']:.4f}   Hamming loss "
            f"{metrics['hamming_loss']:.4f}   loss {metrics['loss']:.4f}")
