"""report.html: one self-contained page per run, evaluation or study (images inline as base64, no network).

The page reads the run directory's figures and JSON files and the figures given to it; it loads nothing
from anywhere else, so it can be mailed or archived as one file. A short inline script records on the
page whether every image decoded (`data-images="ok/total"` on <body>) and any script error
(`data-errors`), so a browser test can check that the page rendered.

    write_run("runs/spam-bow", metrics, wrong, explanations, config_dict)
"""
import base64
import html
import json
import os

from tfclf import files
from tfclf.evaluation import text_report

STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 4px; margin-top: 32px; }
table { border-collapse: collapse; margin: 8px 0; } td, th { border: 1px solid #ccc; padding: 3px 8px; }
td.n { text-align: right; font-variant-numeric: tabular-nums; } th { background: #f3f3f3; }
img { max-width: 100%; margin: 6px 0; } .figures img { max-width: 49%; vertical-align: top; }
.text { font-family: ui-monospace, monospace; line-height: 1.9; } .meta { color: #666; font-size: 0.9em; }
.wrong { border-left: 3px solid #c33; padding: 4px 10px; margin: 12px 0; }
"""
CHECK = """
var errors = [];
window.addEventListener("error", function (e) { errors.push(String(e.message)); });
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var ok = images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute("data-images", ok + "/" + images.length);
  document.body.setAttribute("data-errors", errors.join(" | "));
});
"""


def _image(path: str, alt: str) -> str:
    if not os.path.isfile(path):
        return ""
    with open(path, "rb") as handle:
        data = base64.b64encode(handle.read()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _table(header, rows) -> str:
    cells = "".join(f"<th>{html.escape(str(name))}</th>" for name in header)
    body = "".join("<tr>" + "".join(
        f'<td class="n">{value:.4f}</td>' if isinstance(value, float) else f"<td>{html.escape(str(value))}</td>"
        for value in row) + "</tr>" for row in rows)
    return f"<table><tr>{cells}</tr>{body}</table>"


def _section(title: str, *parts) -> str:
    return f"<h2>{html.escape(title)}</h2>\n" + "\n".join(part for part in parts if part)


def _figures(run_dir: str, *names) -> str:
    """The PNGs that exist, side by side when several (a lone figure keeps its full width)."""
    images = [image for image in (_image(os.path.join(run_dir, name), name) for name in names) if image]
    return f'<div class="{"figures" if len(images) > 1 else "figure"}">' + "".join(images) + "</div>" if images \
        else ""


def multi_label_section(test: dict, title: str, thresholds: dict) -> str:
    """Multi-label metrics: the averages, then per label precision / recall / F1 / support, its confusion
    counts (TP / FP / FN / TN) and its threshold."""
    headline = [("micro-F1", test["micro_f1"]), ("macro-F1", test["macro_f1"]), ("samples-F1", test["samples_f1"]),
                ("subset accuracy", test["subset_accuracy"]), ("Hamming loss", test["hamming_loss"]),
                ("loss", test["loss"])]
    per_label = [[name, row["precision"], row["recall"], row["f1"], row["support"], row["tp"], row["fp"], row["fn"],
                  row["tn"], float(thresholds.get(name, float("nan")))] for name, row in test["per_class"].items()]
    return _section(title, _table([name for name, _ in headline], [[value for _, value in headline]]),
                    _table(["label", "precision", "recall", "F1", "support", "TP", "FP", "FN", "TN", "threshold"],
                           per_label))


def metrics_section(test: dict, title: str = "Test metrics", argmax: dict = None) -> str:
    """Single-label metrics: the served decision's (and argmax's, when a threshold decides), per class."""
    headline = [("accuracy", test["accuracy"]), ("macro-F1", test["macro_f1"]),
                ("weighted-F1", test["weighted_f1"]), ("loss", test["loss"])]
    rows = [["served decision", *(value for _, value in headline)]]
    if argmax:
        rows.append(["argmax", argmax["accuracy"], argmax["macro_f1"], argmax["weighted_f1"], argmax["loss"]])
    per_class = [[name, row["precision"], row["recall"], row["f1"], row["support"]]
                 for name, row in test["per_class"].items()]
    return _section(title, _table(["", *(name for name, _ in headline)], rows),
                    _table(["class", "precision", "recall", "F1", "support"], per_class))


def decision_section(decision: dict, run_dir: str) -> str:
    """Calibration (temperature, ECE / Brier before and after) and the threshold beside argmax."""
    parts = []
    test, served = decision.get("test"), decision.get("served")
    if test:
        chosen = decision.get("calibration") or {}
        why = f" The temperature fitted on validation was {chosen['fitted']:.4f}, {chosen['reason']}." \
            if chosen.get("reason") else ""
        parts.append(f"<p>Temperature <b>{decision['temperature']:.4f}</b> "
                     f"({html.escape(text_report.calibration_choice(decision))}; never fitted on test); the export "
                     f"divides its logits by it.{html.escape(why)}</p>")
        parts.append(_table(["test", "before (T = 1)", "after"],
                            [["ECE (15 bins)", test["ece_before"], test["ece_after"]],
                             ["Brier score", test["brier_before"], test["brier_after"]],
                             ["NLL", test["nll_before"], test["nll_after"]]]))
    if served:
        parts.append(f"<p>Served probabilities (temperature {decision.get('temperature') or 1.0:.4f}): "
                     f"ECE <b>{served['ece']:.4f}</b>, Brier <b>{served['brier']:.4f}</b>.</p>")
    parts.append(_figures(run_dir, "reliability.png"))
    if decision.get("threshold") is not None:
        positive = html.escape(str(decision["positive_class"]))
        parts.append(f"<p>Threshold: <b>{positive}</b> when p &ge; <b>{decision['threshold']:.4f}</b> "
                     f"({html.escape(str(decision['threshold_mode']))}, chosen on validation).</p>")
        rows = []
        if decision.get("threshold_validation"):
            rows.append(["validation, threshold", *_prf(decision["threshold_validation"])])
        if decision.get("threshold_test"):
            rows += [["test, threshold", *_prf(decision["threshold_test"]["at_threshold"])],
                     ["test, argmax", *_prf(decision["threshold_test"]["argmax"])]]
        parts.append(_table(["", f"{positive} precision", "recall", "F1"], rows))
        parts.append(_figures(run_dir, "pr_curve.png"))
    return _section("Calibration and decision threshold", *parts)


def _prf(point: dict) -> list:
    return [point["precision"], point["recall"], point["f1"]]


def _highlighted(explanation: dict) -> str:
    """The text with each word's background red (supports the predicted class) or blue (against), its
    strength the word's share of the largest weight; the weight shows on hover."""
    weights = explanation["weights"]
    scale = max([abs(w) for w in weights] + [1e-12])
    spans = []
    for word, weight in zip(explanation["tokens"], weights):
        alpha = min(1.0, abs(weight) / scale) * 0.8
        color = f"rgba(220,40,40,{alpha:.2f})" if weight > 0 else f"rgba(40,90,220,{alpha:.2f})"
        spans.append(f'<span style="background:{color}" title="{weight:+.4f}">{html.escape(word)}</span>')
    return " ".join(spans)


def _wrong_items(wrong, explanations, confidence) -> list:
    """One block per confidently wrong row: true and predicted, `confidence(row)`, the text (highlighted by its
    explanation when there is one)."""
    items = []
    for index, (_, row) in enumerate(wrong.iterrows()):
        head = (f'<div class="meta">true <b>{html.escape(str(row["true"]))}</b>, predicted '
                f'<b>{html.escape(str(row["predicted"]) or "{}")}</b> {confidence(row)}</div>')
        if index < len(explanations):
            words = ", ".join(f"{html.escape(word)} {weight:+.2f}" for word, weight in explanations[index]["words"])
            body = (f'<div class="text">{_highlighted(explanations[index])}</div>'
                    f'<div class="meta">words that moved p most (log-odds drop when removed): {words}</div>')
        else:
            body = f'<div class="text">{html.escape(str(row["text"]))}</div>'
        items.append(f'<div class="wrong">{head}{body}</div>')
    return items


def wrong_section(wrong, explanations) -> str:
    """The most confidently wrong texts with the predicted class's probability, explained when explanations
    are given."""
    if wrong is None or not len(wrong):
        return _section("Most confidently wrong texts", "<p>No wrong predictions.</p>")
    items = _wrong_items(wrong, explanations, lambda row: f'with p = {row["confidence"]:.4f}')
    if not len(explanations):
        return _section("Most confidently wrong texts", *items)
    return _section("Most confidently wrong texts, explained",
                    "<p>Red words raised the predicted class's probability, blue ones lowered it (word "
                    "occlusion: how much the class's log-odds drop when the word is removed; hover a word for "
                    "its weight).</p>", *items)


def wrong_label_sets_section(wrong) -> str:
    """The most confidently wrong label sets, with the mean over labels of the probability of each decision
    taken (no one label's probability); no word explanations."""
    if wrong is None or not len(wrong):
        return _section("Most confidently wrong texts", "<p>No wrong predictions.</p>")
    return _section("Most confidently wrong label sets",
                    "<p>Confidence: the mean over labels of the probability of the decision taken (p where a "
                    "label is predicted, 1 - p where not).</p>",
                    *_wrong_items(wrong, [], lambda row: f'(confidence {row["confidence"]:.4f})'))


def page(title: str, sections) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style><script>{CHECK}</script></head>\n"
            f"<body><h1>{html.escape(title)}</h1>\n" + "\n".join(s for s in sections if s) + "\n</body></html>\n")


def write(path: str, title: str, sections) -> str:
    return files.write_text(path, page(title, sections))


def _data_section(run_dir: str, metrics: dict, label_word: str) -> str:
    eda_path = os.path.join(run_dir, "eda.json")
    eda = json.load(open(eda_path, encoding="utf-8")) if os.path.isfile(eda_path) else {}
    counts = eda.get("class_counts", {})
    rows = [[name, *(counts.get(split, {}).get(name, "") for split in ("train", "val", "test"))]
            for name in eda.get("class_names", [])]
    removed = metrics.get("duplicates_removed", {})
    text = (f"<p>{metrics.get('num_train')} train / {metrics.get('num_val')} validation / "
            f"{metrics.get('num_test')} test texts; duplicates of earlier splits removed: "
            f"{removed.get('val', 0)} validation, {removed.get('test', 0)} test. Sequence length cap "
            f"{metrics.get('seq_len')} {html.escape(str(eda.get('length_unit', '')))}.{_long_text(eda)}</p>")
    return _section("Data", text, _table([label_word, "train", "validation", "test"], rows),
                    _figures(run_dir, "class_distribution.png", "length_histogram.png"))


def _long_text(eda: dict) -> str:
    """What happened to the texts longer than the cap (eda.json's `lengths`), or ''."""
    lengths = eda.get("lengths", {})
    train = lengths.get("train", {})
    if not train.get("over_cap"):
        return ""
    what = (f"chunked into overlapping windows, {train['windows_per_text_mean']:.1f} per training text on average "
            f"(at most {train['windows_per_text_max']}); the epochs' validation figures are of windows, the test "
            "report's of whole texts" if lengths.get("long_text") == "chunk"
            else f"cut to their {html.escape(str(lengths.get('truncate', 'head')))}")
    return (f" {train['share_over_cap']:.1%} of the training texts are longer (by {train['excess_p50']:.0f} at the "
            f"median, {train['excess_max']} at most): {what}.")


def _name(directory: str) -> str:
    """The finished directory's name: pages are written in the staging directory, `<out>.partial`."""
    name = os.path.basename(os.path.normpath(directory))
    return name[:-len(".partial")] if name.endswith(".partial") else name


def write_run(run_dir: str, metrics: dict, config: dict, task_sections: dict) -> str:
    """report.html of a run: data, EDA plots, curves, test metrics, confusion matrix, calibration and threshold,
    the most confidently wrong texts explained, and the config. `task_sections` (the task's
    report_sections): "label_word" of the data table, the "metrics" and "wrong" sections."""
    chosen = f"<p>Evaluated weights: {html.escape(text_report.chosen_weights(metrics))}.</p>"
    length = text_report.training_length(metrics)
    if length:
        chosen += f"<p>Training: {html.escape(length)}.</p>"
    model = config.get("model", {}).get("encoder", "")
    sections = [
        f'<p class="meta">data {html.escape(str(config.get("data", {}).get("data", "")))}, encoder '
        f'{html.escape(str(model))}, {metrics.get("wall_seconds", 0):.0f} s</p>',
        _data_section(run_dir, metrics, task_sections["label_word"]),
        _section("Training", chosen, _figures(run_dir, "curves.png")),
        task_sections["metrics"],
        _section("Confusion matrix (test)", _figures(run_dir, "confusion_matrix.png"))
        if os.path.isfile(os.path.join(run_dir, "confusion_matrix.png")) else "",  # multi-label: in the metrics
        decision_section(metrics.get("decision", {}), run_dir),
        task_sections["wrong"],
        _section("Config", "<details><summary>config.json</summary><pre>"
                 + html.escape(json.dumps(config, indent=2)) + "</pre></details>"),
    ]
    return write(os.path.join(run_dir, "report.html"), f"tfclf run: {_name(run_dir)}", sections)


def write_evaluation(out: str, summary: dict, task_sections: dict) -> str:
    """report.html of `tfclf.evaluate`: an exported model on a labelled file (`task_sections`: see write_run)."""
    sections = [f'<p class="meta">model {html.escape(summary["model"])}, data {html.escape(summary["data"])}, '
                f'{summary["num_test"]} texts</p>',
                task_sections["metrics"],
                _section("Confusion matrix", _figures(out, "confusion_matrix.png"))
                if os.path.isfile(os.path.join(out, "confusion_matrix.png")) else "",
                decision_section(summary.get("decision", {}), out),
                task_sections["wrong"]]
    return write(os.path.join(out, "report.html"), f"tfclf evaluation: {_name(out)}", sections)


def write_study(out: str, name: str, frame, columns, selected: str, figures) -> str:
    """report.html of a grid: the results table (validation columns), the plots and the selected setting's
    test metrics (reported once)."""
    rows = [[value for value in row] for row in frame[columns].itertuples(index=False)]
    sections = [_section("Results (sorted by the validation metric; selection uses validation only)",
                         _table(columns, rows)),
                _section("Selected setting", f"<p>{html.escape(selected)}</p>"),
                _section("Plots", _figures(out, *figures))]
    return write(os.path.join(out, "report.html"), f"tfclf study: {name}", sections)
