"""A study's results: results.csv, results.md (validation only, then the selected setting's test metrics)
and the comparison plots."""
import os

from tfclf import files
from tfclf.evaluation import plots, report_page
from tfclf.studies import study as study_lib


def _cell(column: str, value) -> str:
    if isinstance(value, float):
        if value != value:  # NaN: a failed trial, or a key this variant does not set
            return "-"
        return f"{value:.1f}" if column in ("train_examples_per_sec", "wall_seconds", "examples_per_sec") \
            else f"{value:.4f}"
    return str(value) if str(value) else '""'


def _markdown(frame, columns) -> str:
    header = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    rows = ["| " + " | ".join(_cell(c, v) for c, v in zip(columns, row)) + " |"
            for row in frame[columns].itertuples(index=False)]
    return header + "\n".join(rows) + "\n"


def write_results(study, trials, entries, out: str, seeds_summary=None) -> str:
    """results.csv (every column, test included), results.md (validation only, then the selected trial's
    test metrics, reported once) and the comparison plots. Returns the Markdown."""
    frame = study_lib.table(study, trials, entries)
    if frame.empty:
        return "no finished trials\n"
    with files.atomic_write(os.path.join(out, "results.csv")) as handle:
        frame.to_csv(handle, index=False)
    metric = study.metric
    axes = list(dict.fromkeys(key for t in trials for key in t.params))
    columns = axes + ["seed", f"val_{metric}", "val_accuracy", "val_loss", "train_examples_per_sec",
                      "wall_seconds", "status"]
    text = [f"# {study.name}\n", f"{len(frame)} trial(s), sorted by {study.select} (selection uses validation only; "
            "test metrics are in results.csv).\n", _markdown(frame, list(dict.fromkeys(columns)))]
    failed = frame[frame["status"] != "ok"]
    for _, row in failed.iterrows():
        text.append(f"- failed: {row['setting']} seed={row['seed']}: {row['error']}\n")
    ok = frame[frame["status"] == "ok"]
    selected = "no finished trial"
    if seeds_summary is not None and not seeds_summary.empty:
        best = seeds_summary.iloc[0]
        text.append("\n## Settings over seeds (mean ± std)\n\n" + _markdown(seeds_summary.assign(
            val=[f"{m:.4f} ± {s:.4f}" for m, s in zip(seeds_summary.val_mean, seeds_summary.val_std)]),
            ["setting", "seeds", "val", "examples_per_sec"]))
        selected = (f"Selected on validation: **{best['setting']}** over {best['seeds']} seeds; test {metric} "
                    f"{best['test_mean']:.4f} ± {best['test_std']:.4f}.")
        text.append(f"\n{selected}\n")
    elif not ok.empty:
        best = ok.iloc[0]
        selected = (f"Selected on validation: **{best['setting']}** seed {best['seed']}: test {metric} "
                    f"{best[f'test_{metric}']:.4f}, test accuracy {best['test_accuracy']:.4f}.")
        text.append(f"\n{selected}\n")
    markdown = "".join(text)
    with files.atomic_write(os.path.join(out, "results.md")) as handle:
        handle.write(markdown)
    plots.grid_curves_plot([entries[t] for t in dict.fromkeys(frame["trial"]) if entries[t]["status"] == "ok"],
                            f"val_{metric}", os.path.join(out, "curves.png"))
    figures = ["curves.png"]
    numeric = [axis for axis in study.grid if len(study.grid[axis]) > 1 and all(map(_is_number, study.grid[axis]))]
    if numeric and not ok.empty:
        axis = "lr" if "lr" in numeric else numeric[0]
        plots.metric_vs_plot(ok, axis, [a for a in axes if a != axis], f"val_{metric}",
                              os.path.join(out, f"metric_vs_{axis}.png"))
        figures.append(f"metric_vs_{axis}.png")
    report_page.write_study(out, study.name, frame, list(dict.fromkeys(columns)), selected.replace("**", ""),
                            figures)
    return markdown


def _is_number(value) -> bool:
    try:
        float(value)
        return True
    except ValueError:
        return False
