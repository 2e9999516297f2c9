"""The training run: `train(config) -> Result` trains, evaluates on the held-out splits and exports one
configuration in its run directory, as a short sequence of stages (stages/). The run's task (tasks/) decides
the loss, the metrics, the decision fitted on validation and what the report shows; the steps are the same.

    python -m tfclf.run, grid trials, bench's tfclf arm:   result = training_run.train(config)
"""
import dataclasses
import os
import shutil
import tempfile
import time

from tfclf import faults, files, progress, provenance, rundir
from tfclf.evaluation import report_page
from tfclf.stages import exporting, fitting, held_out, preparing
from tfclf.training import distill, distribute


@dataclasses.dataclass
class Result:
    run_dir: str
    metrics: dict
    export_path: str = ""


def train(config, prepared: preparing.Prepared = None, overwrite: bool = False) -> Result:
    """Trains, evaluates and exports one configuration in its run directory. `prepared` (from
    preparing.prepare on the same resolved config) skips reading the data again; `overwrite` discards
    another config's interrupted run in the same --out."""
    started = time.perf_counter()
    strategy = distribute.make_strategy(config.train.strategy)  # first: before any other TF work
    config = prepared.config if prepared else preparing.resolve(config)
    if not distribute.is_chief():  # multi-worker: only the chief writes the run directory and the export
        scratch = tempfile.mkdtemp(prefix="tfclf-worker-")
        # Saving is collective under MultiWorkerMirroredStrategy: workers export too, into scratch.
        config = dataclasses.replace(config, out=os.path.join(scratch, "run"),
                                     export=dataclasses.replace(config.export, export_dir=os.path.join(scratch, "m")))
        prepared = dataclasses.replace(prepared, config=config) if prepared else None
        try:
            return _run(config, strategy, started, prepared, overwrite)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return _run(config, strategy, started, prepared, overwrite)


def _run(config, strategy, started: float, prepared, overwrite: bool) -> Result:
    rundir.check_locations(rundir.run_locations(config))
    rundir.check_writable(os.path.dirname(os.path.abspath(config.out)), "--out")
    if not config.export.skip_export:
        rundir.check_writable(config.export.export_dir, "--export-dir")
    with rundir.locked(config.out):
        rundir.check_not_finished(config.out)
        prepared = prepared or preparing.prepare(config)  # errors in the data come before the run directory
        prepared.task.check(prepared.config, prepared.class_names)  # --monitor auto is the task's metric here
        if config.train.teacher:  # a damaged teacher is one line before the run directory exists
            distill.verify(config.train.teacher)
        faults.reached("prepared")
        # The digest of what runs (config.json's): with --monitor auto filled in, unlike the directory's name.
        staging = rundir.open_staging(config.out, prepared.config.digest(), overwrite, prepared.data_digest())
        try:
            metrics = _train_in(staging, prepared, strategy, started)
        except BaseException:
            # Work worth keeping (an epoch backup, the trained weights) stays for the same command to resume;
            # nothing half-written is left behind (a staging directory without such work is removed).
            rundir.keep_resumable(staging)
            raise
        faults.reached("finishing")
        rundir.finish(staging, config.out)
    return Result(config.out, metrics, metrics.get("export_path", ""))


def _train_in(run_dir: str, prepared: preparing.Prepared, strategy, started: float) -> dict:
    config, splits = prepared.config, prepared.splits
    preparing.record(prepared, run_dir)
    model, fitted = fitting.fit_or_resume(run_dir, prepared, strategy)
    sizes = prepared.split_sizes()
    progress.say(f"evaluating the {'best' if fitted.best and config.train.restore_best else 'last'} epoch's weights "
                 f"on {sizes['num_val']} validation and {sizes['num_test']} test texts")
    metrics, page = held_out.evaluate(run_dir, prepared, model)
    faults.reached("evaluated")
    metrics.update({
        "task": prepared.task.name,
        **sizes,
        "seq_len": prepared.seq_len,
        "duplicates_removed": splits.summary["duplicates_removed"],
        "split_rule": splits.summary["split_rule"]["rule"],
        **{key: splits.summary[key] for key in ("emptied_by_cleaning", "emptied_dropped_from_training",
                                                "emptied_scored") if splits.summary.get("emptied_by_cleaning")},
        "train_examples_per_sec": fitted.examples_per_sec,
        "train_steps": fitted.steps,
        "training_stopped": fitted.stopped,
        "training_budget": fitting.budget_record(prepared),
        "precision": fitted.precision,
        "best_checkpoint": {key: value for key, value in fitted.best.items() if key != "weights"},
        "evaluated_weights": "best" if fitted.best and config.train.restore_best else "last",
        "wall_seconds": time.perf_counter() - started,
        "history": {key: [float(v) for v in values] for key, values in fitted.history.items()},
        "config_digest": config.digest(),
        "environment": provenance.record(),
        "weights_sha256": fitting.weights_digest(model),
        **getattr(model, "tfclf_info", {}),
    })
    if not config.export.skip_export:
        progress.say("exporting the raw-text SavedModel")
        metrics["export_path"] = exporting.export_model(model, prepared, metrics, rundir.run_id(run_dir),
                                                        metrics["decision"])
        faults.reached("exported")
    report_page.write_run(run_dir, metrics, config.to_dict(), prepared.task.report_sections(
        metrics["test"], "Test metrics", metrics["decision"], page, metrics.get("test_argmax")))
    files.write_json(os.path.join(run_dir, "metrics.json"), metrics)
    return metrics
