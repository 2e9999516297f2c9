"""The training run: `train(config) -> Result` trains, evaluates on the held-out splits and exports one
configuration in its run directory, as a short sequence of stages (stages.py). The run's task (tasks/) decides
the loss, the metrics, the decision fitted on validation and what the report shows; the steps are the same.

    python -m tfclf.run, grid trials, bench's tfclf arm:   result = training_run.train(config)
"""
import dataclasses
import os
import shutil
import tempfile
import time

from tfclf import config as config_lib, files, phases, progress, provenance, rundir, stages
from tfclf.evaluation import eda, explain, plots, report_page
from tfclf.serving import export
from tfclf.tasks import task as task_lib
from tfclf.training import distill, distribute, fit as fit_lib


@dataclasses.dataclass
class Result:
    run_dir: str
    metrics: dict
    export_path: str = ""


def train(config, prepared: stages.Prepared = None, overwrite: bool = False) -> Result:
    """Trains, evaluates and exports one configuration in its run directory. `prepared` (from
    stages.prepare on the same resolved config) skips reading the data again; `overwrite` discards
    another config's interrupted run in the same --out."""
    started = time.perf_counter()
    strategy = distribute.make_strategy(config.train.strategy)  # first: before any other TF work
    config = prepared.config if prepared else stages.resolve(config)
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
        prepared = prepared or stages.prepare(config)  # errors in the data come before the run directory
        prepared.task.check(config, prepared.class_names)
        if config.train.teacher:  # a damaged teacher is one line before the run directory exists
            export.verify(distill.resolve(config.train.teacher))
        phases.reached("prepared")
        staging = rundir.open_staging(config.out, config.digest(), overwrite, prepared.data_digest())
        try:
            metrics = _train_in(staging, prepared, strategy, started)
        except BaseException:
            # Work worth keeping (an epoch backup, the trained weights) stays for the same command to resume;
            # a staging directory without any is removed, so nothing half-written is left behind.
            if not rundir.resumable(staging):
                shutil.rmtree(staging, ignore_errors=True)
            raise
        phases.reached("finishing")
        rundir.finish(staging, config.out)
    return Result(config.out, metrics, metrics.get("export_path", ""))


def _fit_or_resume(run_dir: str, prepared: stages.Prepared, strategy):
    """The trained model and its fit record: trained now, or loaded when an earlier attempt had finished
    training before it was interrupted."""
    config = prepared.config
    fit_lib.seed_everything(config.train.seed, config.train.deterministic)
    progress.say(f"strategy {type(strategy).__name__}: {strategy.num_replicas_in_sync} replica(s), global batch "
          f"{config.train.batch_size}, per replica {distribute.per_replica_batch(config.train.batch_size, strategy)}")
    progress.say(f"building {config.model.encoder} ({prepared.family.name} family)")
    model, schedule = stages.build(prepared, strategy)
    fitted = stages.load_trained(model, run_dir)
    if fitted is None:
        steps = f" ({prepared.total_steps} steps)" if config.train.max_steps else ""
        progress.say(f"training {prepared.epochs} epoch(s){steps} on {prepared.train_examples} texts")
        fitted = stages.fit(model, schedule, prepared, run_dir)
        stages.save_trained(model, fitted, run_dir)
        shutil.rmtree(os.path.join(run_dir, "backup"), ignore_errors=True)  # trained: nothing to resume
    phases.reached("trained")
    return model, fitted


def _train_in(run_dir: str, prepared: stages.Prepared, strategy, started: float) -> dict:
    config, splits = prepared.config, prepared.splits
    config_lib.save(config, os.path.join(run_dir, "config.json"))
    eda.write(splits, prepared.seq_len, prepared.family.length_unit, prepared.lengths["train"], run_dir,
               extra={**{key: prepared.stats[key] for key in ("decode_replacements", "skipped_files")
                         if key in prepared.stats}, "lengths": prepared.length_summary()})
    model, fitted = _fit_or_resume(run_dir, prepared, strategy)
    plots.curves_plot(fitted.history, os.path.join(run_dir, "curves.png"), config.train.monitor,
                       fitted.best.get("epoch", 0))

    sizes = stages.split_sizes(prepared)
    progress.say(f"evaluating the {'best' if fitted.best and config.train.restore_best else 'last'} epoch's weights "
                 f"on {sizes['num_val']} validation and {sizes['num_test']} test texts")
    metrics, page = _evaluate(run_dir, prepared, model)
    phases.reached("evaluated")
    metrics.update({
        "task": prepared.task.name,
        **stages.split_sizes(prepared),
        "seq_len": prepared.seq_len,
        "duplicates_removed": splits.summary["duplicates_removed"],
        "split_rule": splits.summary["split_rule"]["rule"],
        "train_examples_per_sec": fitted.examples_per_sec,
        "train_steps": fitted.steps,
        "precision": fitted.precision,
        "best_checkpoint": {key: value for key, value in fitted.best.items() if key != "weights"},
        "evaluated_weights": "best" if fitted.best and config.train.restore_best else "last",
        "wall_seconds": time.perf_counter() - started,
        "history": {key: [float(v) for v in values] for key, values in fitted.history.items()},
        "config_digest": config.digest(),
        "environment": provenance.record(),
        "weights_sha256": stages.weights_digest(model),
        **getattr(model, "tfclf_info", {}),
    })
    if not config.export.skip_export:
        progress.say("exporting the raw-text SavedModel")
        metrics["export_path"] = stages.export_model(model, prepared, metrics, rundir.run_id(run_dir),
                                                     metrics["decision"])
        phases.reached("exported")
    report_page.write_run(run_dir, metrics, page["wrong"], page["explanations"], config.to_dict(),
                          prepared.task.metrics_section(metrics["test"], "Test metrics", metrics["decision"],
                                                        metrics.get("test_argmax")))
    files.write_json(os.path.join(run_dir, "metrics.json"), metrics)
    return metrics


def _evaluate(run_dir: str, prepared: stages.Prepared, model):
    """Validation and test metrics of the task's calibrated decisions (fitted on validation: temperature,
    thresholds), test artifacts and plots. Returns (metrics, the report page's wrong texts)."""
    config, task, class_names = prepared.config, prepared.task, prepared.class_names
    scorer = stages.text_scorer(model, prepared)
    scored = {name: stages.score_split(model, prepared, name, scorer) for name in ("val", "test")}
    logits = {name: logits for name, (logits, _) in scored.items()}
    targets = {name: targets for name, (_, targets) in scored.items()}
    decision = task.fit_decision(config.decision, logits["val"], targets["val"], prepared.splits,
                                 stages.train_targets(prepared))
    for note in task.decision_notes(decision, config.decision, targets["val"], class_names):
        progress.say(note)
    metrics, held = {}, {}
    for name in ("val", "test"):
        probabilities = decision.probabilities(logits[name])
        held[name] = task_lib.Held(name, None, targets[name], probabilities, decision.predict(probabilities))
        metrics[name] = task.metrics(targets[name], probabilities, held[name].predicted, class_names,
                                     task.loss(config.train, targets[name], logits[name]))
    test = dataclasses.replace(held["test"], rows=stages.split_rows(prepared, "test"))
    metrics.update(task.extra_metrics(config.train, test, decision, logits["test"], class_names))
    metrics["decision"] = decision.report(logits["test"], targets["test"])
    panels = [(_served_title(decision), test.probabilities)]
    if config.decision.calibration != "none":
        panels.insert(0, ("test, before scaling (T = 1)", task.uncalibrated(logits["test"])))
    page = task.write_artifacts(
        run_dir, test, metrics["test"], metrics["decision"], class_names, panels,
        [("validation", held["val"].probabilities, targets["val"]), ("test", test.probabilities, targets["test"])],
        lambda texts, ids: explain.occlusion(stages.probability_fn(model, prepared, decision.temperature), texts,
                                             predicted=ids))
    return metrics, page


def _served_title(decision) -> str:
    """The reliability panel of the served probabilities: its temperature, and the fitted one when not kept."""
    chosen = decision.calibration or {}
    dropped = f" (fitted {chosen['fitted']:.3f}, not kept)" if chosen and not chosen["kept"] else ""
    return f"test, temperature {decision.temperature:.3f}{dropped}"
