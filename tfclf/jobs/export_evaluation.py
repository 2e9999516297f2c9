"""An exported model on a labelled file: `python -m tfclf.evaluate`'s job.

The model's task (read back from the export) reads the file, turns the served outputs into metrics and writes
the report a run writes for its test set, in `<out>.partial` renamed to `<out>` when complete.

    metrics = export_evaluation.evaluate_export("saved_models/spam/1", "new.csv", ("text",), "label", "runs/eval")
"""
import os
import shutil

from tfclf import files, rundir
from tfclf.evaluation import explain, report_page
from tfclf.serving import exported
from tfclf.tasks import kinds, task as task_lib


def evaluate_export(model_dir: str, data_path: str, text_columns: tuple, label_column: str, out: str,
                    label_separator: str = None, label_columns: tuple = None) -> dict:
    """Scores a labelled file with an exported model and writes its report in `out`; an existing non-empty
    `out` is never touched. A multi-label model reads label sets (`label_separator` / `label_columns`; None: as
    the model was trained). Returns the metrics, and metrics.json holds them with the served decision."""
    rundir.check_locations([rundir.Location("--out", out, "run"), rundir.Location("--model", model_dir, "input"),
                            rundir.Location("--data", data_path, "input")])
    if rundir.occupied(out):
        raise ValueError(f"--out {out}: exists and is not an empty directory (a run or an earlier evaluation?); "
                         "choose another --out")
    rundir.check_writable(os.path.dirname(os.path.abspath(out)), "--out")
    model = exported.ExportedModel(model_dir)
    task = kinds.of_export(model)
    table = task.read_labelled(data_path, text_columns, label_column, model.class_names, model.config.get("data", {}),
                               label_separator, label_columns)
    with rundir.locked(out):
        staging = rundir.staging_dir(out)
        if rundir.occupied(out) or rundir.resumable(staging):
            raise ValueError(f"--out {out}: holds a run or an interrupted run ({staging}); choose another --out")
        shutil.rmtree(staging, ignore_errors=True)
        os.makedirs(staging)
        metrics = _score_and_report(staging, model, task, data_path, table)
        rundir.finish(staging, out)
    return metrics


def _score_and_report(staging: str, model: exported.ExportedModel, task, data_path: str, table) -> dict:
    """The export's probabilities and own decisions (its thresholds apply) on `table`, and the run's test
    report for them in `staging`: metrics.json, predictions, plots, report.txt and report.html."""
    class_names, title = model.class_names, os.path.basename(data_path)
    probabilities, predicted = task.served(model.predict(table["text"].tolist(), progress=True))
    targets = task.targets(table, class_names)
    decision = task.served_decision(model.calibration, targets, probabilities)
    metrics = task.metrics(targets, probabilities, predicted, class_names,
                           task.served_loss(model.train_config(), targets, probabilities, decision["temperature"]))
    held = task_lib.Held(title, table, targets, probabilities, predicted)
    page = task.write_artifacts(
        staging, held, metrics, decision, class_names, [(f"{title}, as served", probabilities)],
        [(title, probabilities, targets)],
        lambda texts, ids: explain.occlusion(lambda batch: model.predict(batch)["probabilities"], texts,
                                             predicted=ids))
    summary = {"task": task.name, "test": metrics, "decision": decision, "model": model.path, "data": data_path,
               "num_test": len(table)}
    report_page.write_evaluation(staging, summary, task.report_sections(metrics, "Metrics", decision, page))
    files.write_json(os.path.join(staging, "metrics.json"), summary)
    return metrics
