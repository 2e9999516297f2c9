"""The multi-label run's test artifacts: predictions.csv, report.txt and reliability.png (of every (text,
label) pair), written atomically as report.py's; report.html comes from report_page as for single-label runs.

    write_artifacts(run_dir, frame, targets, probabilities, mask, metrics, decision, class_names, "test", "|")
"""
import os

import numpy as np
import pandas as pd

from tfclf.data import multilabel as label_sets
from tfclf.evaluation import multilabel, report


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
    with report.atomic_write(path) as handle:
        table.to_csv(handle, index=False)
    return table


def text_report(metrics: dict, wrong: pd.DataFrame, class_names, decision: dict, path: str) -> str:
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
    lines += report.decision_lines(decision)
    if thresholds:
        lines.append(f"thresholds: one per label ({decision.get('threshold_mode')} on validation, never below "
                     f"{multilabel.MIN_THRESHOLD}; 0.5 for a label without validation texts)")
    lines += ["", f"Most confidently wrong label sets (up to {len(wrong)}):"]
    for _, row in wrong.iterrows():
        lines.append(f"  true={row['true'] or '{}'} predicted={row['predicted'] or '{}'} "
                     f"confidence={row['confidence']:.3f}  {row['text'][:160]!r}")
    text = "\n".join(lines) + "\n"
    with report.atomic_write(path) as handle:
        handle.write(text)
    return text


def summary_line(metrics: dict) -> str:
    return (f"micro-F1 {metrics['micro_f1']:.4f}   macro-F1 {metrics['macro_f1']:.4f}   samples-F1 "
            f"{metrics['samples_f1']:.4f}   subset accuracy {metrics['subset_accuracy']:.4f}   Hamming loss "
            f"{metrics['hamming_loss']:.4f}   loss {metrics['loss']:.4f}")


def write_artifacts(run_dir: str, frame, targets, probabilities, mask, metrics: dict, decision: dict,
                    class_names, title: str, separator: str, panels=()) -> dict:
    """predictions.csv, report.txt and reliability.png (the (text, label) pairs of each (title,
    probabilities) panel, default the served ones). Returns {"wrong", "explanations"} for the report page."""
    predictions = write_predictions(frame, probabilities, mask, class_names, separator,
                                    os.path.join(run_dir, "predictions.csv"))
    wrong = report.confidently_wrong(predictions)
    text_report(metrics, wrong, class_names, decision, os.path.join(run_dir, "report.txt"))
    flat_labels = np.asarray(targets).reshape(-1).astype(int)
    report.reliability_plot([(name, multilabel.as_binary(p, targets)[0])
                             for name, p in (panels or [(title, probabilities)])],
                            flat_labels, os.path.join(run_dir, "reliability.png"), unit="pairs")
    return {"wrong": wrong, "explanations": []}
