"""The figures of runs, evaluations, studies and serving load tests; the only module that imports matplotlib.

Each figure is written through files.atomic_write, so a killed run never leaves a half-written PNG.
The `*_figure` functions return the figure (tests look at it); the `*_plot` functions save it.
"""
import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402,F401
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn import metrics as sk_metrics  # noqa: E402

from tfclf import files  # noqa: E402
from tfclf.evaluation import calibration, thresholds  # noqa: E402


def save_figure(figure, path: str) -> None:
    with files.atomic_write(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)


# --- EDA --------------------------------------------------------------------

def short_count(value, thousands: int = 100_000) -> str:
    """A count for a bar label: 1234 as is, 374117 as 374k, 1753810 as 1.75M (labels of millions overlap);
    from `thousands` on in k (narrow bars: short_count(12345, 1000) is 12.3k)."""
    value = int(value)
    if value >= 1_000_000:
        return f"{value / 1e6:.3g}M"
    return f"{value / 1e3:.3g}k" if value >= thousands else str(value)



def class_distribution_figure(counts: pd.DataFrame, kind: str = "class", note: str = ""):
    """Bars of texts per `kind` (class; label, where a text with several labels counts under each, as `note`
    says) and split, a count on each bar; the legend in a row between the title and the axes, so it covers no bar; vertical counts and
    slanted names when many classes make the bars narrow. 6 inches wide up to 6 classes, as the length histogram
    beside it on the report page."""
    counts = counts.rename(columns={"val": "validation"})
    figure, axis = plt.subplots(figsize=(min(16.0, max(6.0, 1.2 + 0.8 * len(counts))), 3.8), layout="constrained")
    counts.plot.bar(ax=axis, rot=0, width=0.8)
    vertical = len(counts) > 3  # three bars per class: narrower than a 4-digit count
    for bars in axis.containers:
        axis.bar_label(bars, labels=[short_count(value) for value in bars.datavalues], fontsize=7, padding=2,
                       rotation=90 if vertical else 0)
    axis.margins(y=0.22 if vertical else 0.12)  # room for the counts above the tallest bar
    if len(counts) > 8 or max(len(str(name)) for name in counts.index) * len(counts) > 60:
        axis.tick_params(axis="x", labelrotation=30)
        plt.setp(axis.get_xticklabels(), ha="right", rotation_mode="anchor")
    axis.set(xlabel=kind, ylabel="texts")
    _title_and_legend(figure, axis, f"Texts per {kind} and split" + (f" ({note})" if note else ""))
    return figure


def _title_and_legend(figure, axis, title: str) -> None:
    """The title, then the legend in one row under it, both above the axes: a legend inside could cover data."""
    handles, labels = axis.get_legend_handles_labels()
    axis.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(handles), fontsize=8,
                frameon=False, borderaxespad=0.2)
    axis.set_title(title, pad=22)  # points: room for the legend's row


def length_histogram_figure(model_lengths, seq_len: int, length_unit: str, sample_size: int = 0):
    """Histogram of the training texts' lengths up to the 99.5th percentile (or 1.5 x seq_len), so a few huge
    texts do not squash it, with the cap marked; lengths are whole numbers, so every bin holds the same number
    of them (uneven bins drew false spikes). `sample_size`: the texts are a sample of that size."""
    model_lengths = np.asarray(model_lengths)
    limit = int(max(float(np.percentile(model_lengths, 99.5)), 1.5 * seq_len, 2.0))
    shown = model_lengths[model_lengths <= limit]
    low = int(shown.min()) if len(shown) else 0
    step = max(1, int(np.ceil((limit - low + 1) / 80)))  # at most 80 bins
    figure, axis = plt.subplots(figsize=(6, 3.8), layout="constrained")
    axis.hist(shown, bins=np.arange(low, limit + step + 1, step) - 0.5, color="tab:blue")
    axis.axvline(seq_len, color="tab:red", linestyle="--", label=f"cap: {seq_len} {length_unit}")
    hidden = len(model_lengths) - len(shown)
    # The note goes under the axis label, where no bar or line can be.
    note = f"\n{hidden} longer text{'s' * (hidden > 1)} not shown (max {model_lengths.max()})" if hidden else ""
    axis.set(xlabel=length_unit + (f" (bins of {step})" if step > 1 else "") + note, ylabel="texts")
    _title_and_legend(figure, axis, f"Training text length ({length_unit}"
                      + (f"; a uniform sample of {sample_size:,} texts)" if sample_size else ")"))
    return figure



# --- evaluation ---------------------------------------------------------------

def confusion_matrix_plot(label_ids, predicted, class_names, path: str, title: str) -> None:
    matrix = sk_metrics.confusion_matrix(label_ids, predicted, labels=range(len(class_names)))
    normalized = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = 2.2 + 0.6 * len(class_names)
    # Constrained layout keeps the second panel's class names and "true" label clear of the first panel.
    figure, axes = plt.subplots(1, 2, figsize=(2 * size + 1, size), layout="constrained")
    for axis, values, subtitle, fmt in ((axes[0], matrix, "counts", "d"),
                                        (axes[1], normalized, "row-normalized (recall)", ".2f")):
        axis.imshow(values, cmap="Blues", vmin=0)
        axis.set(title=f"{title}: {subtitle}", xlabel="predicted", ylabel="true",
                 xticks=range(len(class_names)), yticks=range(len(class_names)),
                 xticklabels=class_names, yticklabels=class_names)
        threshold = values.max() / 2 if values.max() else 0
        for (row, column), value in np.ndenumerate(values):
            axis.text(column, row, format(value, fmt), ha="center", va="center",
                      color="white" if value > threshold else "black")
    save_figure(figure, path)


def curves_figure(history: dict, monitor: str = "val_macro_f1", best_epoch: int = 0, unit: str = "epoch"):
    """Per epoch (or, in adaptive training, per validation: `unit`): the monitored metric (train and
    validation), the losses and the learning rate, each panel with the selected one marked (a dashed line
    labelled "best epoch N"). Returns the figure."""
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    metric = monitor[len("val_"):] if monitor.startswith("val_") else monitor
    panels = [(metric, [("", "train"), ("val_", "validation")])] if metric != "loss" else []
    panels += [("loss", [("", "train"), ("val_", "validation")]), ("learning_rate", [("", "learning rate")])]
    panels = [(key, series) for key, series in panels if any(prefix + key in history for prefix, _ in series)]
    figure, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.8), layout="constrained",
                                squeeze=False)
    for axis, (key, series) in zip(axes[0], panels):
        for prefix, label in series:
            if prefix + key in history:
                axis.plot(epochs, history[prefix + key][:len(epochs)], marker="o", label=label)
        if best_epoch:
            axis.axvline(best_epoch, color="tab:red", linestyle="--", alpha=0.7, label=f"best {unit.split(' (')[0]} {best_epoch}")
        title = f"{key} (monitored: {monitor})" if key == metric and metric != "loss" else key
        if key == "learning_rate":  # the schedule per step is in TensorBoard (tensorboard/steps)
            title = f"learning rate at each {unit.split(' (')[0]}'s end"
        axis.set(title=title, xlabel=unit, ylabel=key, xlim=(0.5, len(epochs) + 0.5))
        if len(epochs) <= 20:
            axis.set_xticks(epochs)
        else:
            axis.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    return figure


def curves_plot(history: dict, path: str, monitor: str = "val_macro_f1", best_epoch: int = 0,
                unit: str = "epoch") -> None:
    """curves_figure saved as a PNG (with the learning rate and the selected epoch)."""
    save_figure(curves_figure(history, monitor, best_epoch, unit), path)



COUNT_ROW = 1.025  # where the reliability diagram's counts stand: above every bar and gap (both end at <= 1)


def reliability_plot(panels, label_ids, path: str, unit: str = "texts") -> None:
    """Reliability diagrams side by side, one per (title, probabilities): accuracy per confidence bin (bars;
    texts per bin in a row above the diagram) against the diagonal; the hatched gap to the bin's mean confidence
    is the miscalibration. ECE in the title; the x axis starts at the lowest possible confidence, 1 / classes.
    `unit`: what is counted ("pairs" for multi-label runs' (text, label) pairs)."""
    save_figure(reliability_figure(panels, label_ids, unit), path)


def reliability_figure(panels, label_ids, unit: str = "texts"):
    """reliability_plot's figure. Nothing drawn covers the data: the counts are a row above the diagram (no bar
    or gap reaches past accuracy or confidence 1), the legend sits below it."""
    figure, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 4.4), layout="constrained",
                                squeeze=False)
    for axis, (title, probabilities) in zip(axes[0], panels):
        table = calibration.reliability_bins(probabilities, label_ids)
        edges, filled = table["edges"], table["count"] > 0
        left, width = edges[:-1][filled], np.diff(edges)[filled]
        accuracy, confidence = table["accuracy"][filled], table["confidence"][filled]
        bars = axis.bar(left, accuracy, width=width, align="edge", color="tab:blue", edgecolor="white",
                        label="accuracy")
        for x, count in zip(left + width / 2, table["count"][filled]):
            axis.text(x, COUNT_ROW, short_count(count, 1_000), ha="center", va="bottom", fontsize=6)
        axis.bar(left, np.abs(confidence - accuracy), bottom=np.minimum(confidence, accuracy), width=width,
                 align="edge", fill=False, hatch="////", edgecolor="tab:red", linewidth=0,
                 label="gap to mean confidence")
        axis.plot([0, 1], [0, 1], color="black", linestyle="--", linewidth=1, label="perfect calibration")
        ece = calibration.expected_calibration_error(probabilities, label_ids)
        lowest = np.floor(len(edges[:-1]) / probabilities.shape[1]) / len(edges[:-1])
        counted = "(text, label) pairs" if unit == "pairs" else unit
        axis.set(title=f"{title}\nECE {ece:.4f} ({len(edges) - 1} bins, {len(label_ids):,} {counted})",
                 xlabel="confidence (p or 1 - p, whichever is larger)" if unit == "pairs"
                 else "confidence (top-class probability)",
                 ylabel="accuracy", xlim=(lowest, 1), ylim=(0, 1.1), yticks=np.linspace(0, 1, 6))
        axis.axhline(1.0, color="grey", linewidth=0.5)  # the row of counts lies above this line
        axis.plot([], [], linestyle="none", label=f"numbers on top: {unit} per bin")
        axis.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    return figure


def pr_curve_plot(curves, threshold: float, positive_class: str, path: str) -> None:
    """The positive class's precision-recall curve per (title, scores, positives), with the points of the
    chosen threshold (circle) and of argmax, p >= 0.5 (cross): the whole curve, and zoomed on the points."""
    figure, axes = plt.subplots(1, 2, figsize=(10, 4.5), layout="constrained")
    marked = []
    for (title, scores, positives), color in zip(curves, ("tab:blue", "tab:orange", "tab:green")):
        points = thresholds.curve(scores, positives)
        for axis in axes:
            axis.plot(points["recall"], points["precision"], color=color, label=title, marker=".", markersize=3)
        for value, marker, name in ((threshold, "o", f"p >= {threshold:.3f}"), (0.5, "x", "argmax p >= 0.5")):
            at = thresholds.point(scores, positives, value)
            marked.append((at["recall"], at["precision"]))
            for axis in axes:
                axis.plot(at["recall"], at["precision"], marker=marker, color=color, markersize=10,
                          linestyle="none", markerfacecolor="none", markeredgewidth=1.5,
                          label=f"{title}: {name} (F1 {at['f1']:.3f})")
    recall, precision = np.array(marked).T
    axes[0].set(title=f"precision-recall of '{positive_class}'", xlim=(0, 1.02), ylim=(0, 1.02))
    axes[1].set(title="zoomed on the marked points",
                xlim=(max(0, recall.min() - 0.1), min(1.02, recall.max() + 0.1)),
                ylim=(max(0, precision.min() - 0.1), min(1.02, precision.max() + 0.1)))
    for axis in axes:
        axis.set(xlabel="recall", ylabel="precision")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="lower left")
    save_figure(figure, path)


# --- grid studies ---------------------------------------------------------------

def grid_curves_plot(entries, key: str, path: str, limit: int = 12) -> None:
    """Validation metric per epoch, one line per trial (the best `limit`, in the given order)."""
    figure, axis = plt.subplots(figsize=(8, 4.5))
    for entry in entries[:limit]:
        values = entry.get("history", {}).get(key, [])
        axis.plot(np.arange(1, len(values) + 1), values, marker="o", markersize=3,
                  label=f"{entry['setting']} s{entry['seed']}")
    axis.set(title=f"{key} per epoch" + (f" (best {limit} of {len(entries)})" if len(entries) > limit else ""),
             xlabel="epoch", ylabel=key)
    axis.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    save_figure(figure, path)


def metric_vs_plot(frame: pd.DataFrame, axis_name: str, group_by, metric: str, path: str) -> None:
    """`metric` (mean over seeds, bars: min-max) against a numeric axis, one line per value of the other
    axes (e.g. validation macro-F1 vs learning rate, one line per optimizer)."""
    groups = frame[group_by].fillna("-").map(str).agg(" ".join, axis=1) if group_by else "all"
    frame = frame.assign(_x=frame[axis_name].astype(float), _group=groups)
    figure, axis = plt.subplots(figsize=(7.5, 4.5))
    for group, rows in frame.groupby("_group", sort=True):
        stats = rows.groupby("_x")[metric].agg(["mean", "min", "max"]).sort_index()
        axis.errorbar(stats.index, stats["mean"], yerr=[stats["mean"] - stats["min"], stats["max"] - stats["mean"]],
                      marker="o", capsize=3, label=group)
    values = sorted(frame["_x"].unique())
    if values[0] > 0 and (axis_name.endswith("lr") or values[-1] / values[0] >= 10):  # learning rates: log axis
        axis.set_xscale("log")
        axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axis.set_xticks(values, [f"{value:g}" for value in values])
    axis.set(title=f"{metric} vs {axis_name}", xlabel=axis_name, ylabel=metric)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, title=" ".join(group_by) or None)
    save_figure(figure, path)


# --- serving load tests -----------------------------------------------------------

def serve_load_plot(runs, path: str, title: str) -> None:
    """`tfclf bench-serve`: texts/s and p50/p99 latency against concurrency, batching on vs off."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.3))
    levels = sorted({run["concurrency"] for run in runs})
    positions = {level: index for index, level in enumerate(levels)}
    highest = {level: max(run["texts_per_second"] for run in runs if run["concurrency"] == level) for level in levels}
    for setting, color in (("on", "tab:blue"), ("off", "tab:orange")):
        rows = sorted((run for run in runs if run["batching"] == setting), key=lambda run: run["concurrency"])
        if not rows:
            continue
        x = [positions[run["concurrency"]] for run in rows]
        label = f"batching {setting} (max batch {rows[0]['max_batch_size']})"
        left.plot(x, [run["texts_per_second"] for run in rows], marker="o", color=color, label=label)
        for xi, run in zip(x, rows):
            offset = 6 if run["texts_per_second"] >= highest[run["concurrency"]] else -13  # the lower one below
            errors = f"\n{run['errors']} errors" if run["errors"] else ""
            left.annotate(f"{run['texts_per_second']:.0f}{errors}", (xi, run["texts_per_second"]),
                          textcoords="offset points", xytext=(0, offset), ha="center", fontsize=8, color=color)
        right.plot(x, [run["p50_ms"] for run in rows], marker="o", color=color, label=f"p50, batching {setting}")
        right.plot(x, [run["p99_ms"] for run in rows], marker="^", linestyle="--", color=color,
                   label=f"p99, batching {setting}")
    for axis in (left, right):
        axis.set_xticks(range(len(levels)), [str(level) for level in levels])
        axis.set_xlabel("concurrent closed-loop clients")
        axis.grid(alpha=0.3)
    top = max([run["texts_per_second"] for run in runs] + [1])
    left.set(title="throughput", ylabel="texts per second", ylim=(0, top * 1.25))  # room for the labels
    right.set(title="latency", ylabel="milliseconds (log scale)", yscale="log")
    left.legend(fontsize=8, loc="best")
    right.legend(fontsize=8, loc="upper left")
    figure.suptitle(title, fontsize=10)
    save_figure(figure, path)


def serve_soak_plot(samples, path: str, title: str) -> None:
    """`tfclf bench-serve --soak`: the server's RSS over the soak, first and last minute shaded."""
    seconds = np.array([second for second, _ in samples], dtype=float)
    megabytes = np.array([rss for _, rss in samples], dtype=float) / 2**20
    figure, axis = plt.subplots(figsize=(8, 3.8))
    axis.plot(seconds, megabytes, color="tab:blue")
    if len(seconds):
        axis.axvspan(0, min(60, seconds[-1]), color="tab:green", alpha=0.12, label="first minute")
        axis.axvspan(max(0, seconds[-1] - 60), seconds[-1], color="tab:red", alpha=0.12, label="last minute")
    axis.set(title=title, xlabel="seconds since the soak started", ylabel="server RSS (MiB)")
    axis.set_ylim(0, max(megabytes.max() * 1.15, 1) if len(megabytes) else 1)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="lower right")
    save_figure(figure, path)
