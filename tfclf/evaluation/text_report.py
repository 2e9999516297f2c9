"""The text side of a held-out report: predictions.csv (written chunk by chunk), the most confidently wrong
texts, report.txt, and the calibration and threshold lines that report.txt, report.html and the terminal share.

    wrong = text_report.write_predictions(table, probabilities, class_names, "runs/x/predictions.csv", label_ids=ids)
"""
import numpy as np
import pandas as pd

from tfclf import files


def write_predictions(frames, probabilities, class_names, path: str, predicted=None, label_ids=None,
                      count: int = 10) -> pd.DataFrame:
    """predictions.csv, written chunk by chunk: where each text came from (`row`: file and line or data row,
    when known), the text as the user gave it (`raw_text`, else `text`), true and predicted class, the
    predicted class's probability, every class's. `frames`: one table or an iterable of chunks in the order
    of `probabilities`. Returns the `count` most confidently wrong rows (columns text: what the model read,
    true, predicted, confidence), when `label_ids` are given."""
    predicted = probabilities.argmax(axis=1) if predicted is None else np.asarray(predicted)
    confidence = probabilities[np.arange(len(predicted)), predicted]
    wanted = np.array([], dtype=np.int64)
    if label_ids is not None:
        wrong = np.flatnonzero(np.asarray(label_ids) != predicted)
        wanted = wrong[np.argsort(-confidence[wrong], kind="stable")[:count]]
    kept, start = {}, 0
    with files.atomic_write(path) as handle:
        for frame in ([frames] if isinstance(frames, pd.DataFrame) else frames):
            stop = start + len(frame)
            part = slice(start, stop)
            table = pd.DataFrame({"text": frame["raw_text" if "raw_text" in frame else "text"].to_numpy(),
                                  "true": frame["label"].to_numpy(),
                                  "predicted": [class_names[i] for i in predicted[part]],
                                  "confidence": confidence[part]})
            if "row" in frame:
                table.insert(0, "row", frame["row"].to_numpy())
            for i, name in enumerate(class_names):
                table[f"p_{name}"] = probabilities[part, i]
            table.to_csv(handle, index=False, header=start == 0)
            for position in wanted[(wanted >= start) & (wanted < stop)]:
                kept[int(position)] = {"text": frame["text"].iloc[position - start], **table.iloc[position - start][
                    ["true", "predicted", "confidence"]].to_dict()}
            start = stop
    if start != len(predicted):
        raise RuntimeError(f"{path}: {start} rows were written for {len(predicted)} predictions")
    return pd.DataFrame([kept[int(position)] for position in wanted], columns=["text", "true", "predicted", "confidence"])


def confidently_wrong(predictions: pd.DataFrame, count: int = 10) -> pd.DataFrame:
    """The `count` wrong predictions with the highest probability of the predicted class."""
    wrong = predictions[predictions["true"] != predictions["predicted"]]
    return wrong.sort_values("confidence", ascending=False, kind="stable").head(count)


def text_report(metrics: dict, wrong: pd.DataFrame, explanations, class_names, path: str,
                decision: dict = None) -> str:
    """Classification report, calibration and threshold figures, and the most confidently wrong texts with
    the words that moved their prediction most (explanations, when given)."""
    lines = [f"{'class':<20}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
    for name in class_names:
        row = metrics["per_class"][name]
        lines.append(f"{name:<20}{row['precision']:>10.4f}{row['recall']:>10.4f}{row['f1']:>10.4f}{row['support']:>10d}")
    lines += ["", f"accuracy {metrics['accuracy']:.4f}   macro-F1 {metrics['macro_f1']:.4f}   "
                  f"weighted-F1 {metrics['weighted_f1']:.4f}   loss {metrics['loss']:.4f}"]
    lines += decision_lines(decision or {})
    lines += ["", f"Most confidently wrong examples (up to {len(wrong)}), with the words whose removal changes "
                  "the predicted class's probability most (weight: the drop in its log-odds):"]
    for index, (_, row) in enumerate(wrong.iterrows()):
        lines.append(f"  true={row['true']} predicted={row['predicted']} p={row['confidence']:.3f}  "
                     f"{row['text'][:160]!r}")
        if index < len(explanations):
            lines.append("      words: " + ", ".join(f"{word} {weight:+.2f}"
                                                     for word, weight in explanations[index]["words"]))
    return files.write_text(path, "\n".join(lines) + "\n")


def chosen_weights(metrics: dict) -> str:
    """Which weights a run evaluated, in words: the best validation (adaptive training: its step) or epoch,
    or the last one.

        >>> budget = {"adaptive": True, "steps_per_validation": 34}
        >>> chosen_weights({"best_checkpoint": {"epoch": 10, "monitor": "val_micro_f1", "value": 0.9275},
        ...                 "evaluated_weights": "best", "history": {"loss": [0.6] * 10}, "train_steps": 320,
        ...                 "training_budget": budget})  # the step cap (320) ended the last round early
        'validation 10 (step 320) of 10, best val_micro_f1 = 0.9275 on validation'
        >>> chosen_weights({"best_checkpoint": {}, "evaluated_weights": "last", "history": {"loss": [0.6] * 3}})
        'the last epoch (3)'
    """
    best = metrics.get("best_checkpoint") or {}
    rounds = len(next(iter(metrics.get("history", {}).values()), []))
    budget = metrics.get("training_budget") or {}
    unit = "validation" if budget.get("adaptive") else "epoch"
    if not best.get("epoch") or metrics.get("evaluated_weights") != "best":
        return f"the last {unit} ({rounds})"
    at = best["epoch"] * budget.get("steps_per_validation", 0)
    step = f" (step {min(at, metrics.get('train_steps') or at)})" if budget.get("adaptive") else ""
    return f"{unit} {best['epoch']}{step} of {rounds}, best {best['monitor']} = {best['value']:.4f} on validation"


def training_length(metrics: dict) -> str:
    """How long training ran and why it stopped ("" for a run that records no reason, e.g. a fixed --epochs).

        >>> training_length({"train_steps": 282, "training_stopped": "no val_macro_f1 gain above 0.005"})
        '282 steps; stopped: no val_macro_f1 gain above 0.005'
    """
    if not metrics.get("training_stopped"):
        return ""
    return f"{metrics.get('train_steps', 0)} steps; stopped: {metrics['training_stopped']}"


def calibration_choice(decision: dict) -> str:
    """Where the served temperature came from, in a few words (metrics.json's decision.calibration)."""
    chosen = decision.get("calibration")
    if not chosen:  # --calibration none, or a run from before the temperature was cross-validated
        return "fitted on validation" if decision.get("temperature", 1.0) != 1.0 else "no calibration"
    if chosen["kept"]:
        return (f"fitted on validation, kept: it lowered the NLL of {chosen['folds']} held-out folds by more than "
                "the folds' noise")
    held = chosen.get("heldout") or {}
    why = "no held-out gain" if held.get("nll_gain", 0.0) <= 0 else "its held-out gain is within the folds' noise"
    return f"the fitted {chosen['fitted']:.3f} not kept: {why}"


def decision_lines(decision: dict) -> list:
    """The calibration and threshold figures of metrics.json's "decision", as report lines."""
    lines, test = [], decision.get("test")
    if test:
        lines += ["", f"calibration: temperature {decision['temperature']:.3f} ({calibration_choice(decision)}); "
                      f"test ECE {test['ece_before']:.4f} -> {test['ece_after']:.4f}, Brier {test['brier_before']:.4f}"
                      f" -> {test['brier_after']:.4f}"]
        chosen = decision.get("calibration") or {}
        if chosen.get("reason"):
            lines.append(f"  fitted T = {chosen['fitted']:.3f} on validation, {chosen['reason']}")
    if decision.get("threshold") is not None and "threshold_test" in decision:
        at, argmax = decision["threshold_test"]["at_threshold"], decision["threshold_test"]["argmax"]
        lines += [f"threshold: {decision['positive_class']} when p >= {decision['threshold']:.4f} "
                  f"({decision['threshold_mode']} on validation); test {decision['positive_class']} "
                  f"precision/recall/F1 {at['precision']:.4f} / {at['recall']:.4f} / {at['f1']:.4f} "
                  f"(argmax: {argmax['precision']:.4f} / {argmax['recall']:.4f} / {argmax['f1']:.4f})"]
    return lines
