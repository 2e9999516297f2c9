"""The jobs the commands run, each a short sequence of stages (stages.py):

    train(config) -> Result             python -m tfclf.run, grid trials, bench's tfclf arm
    evaluate_export(...) -> metrics      python -m tfclf.evaluate: an exported model on a labelled file
"""
import dataclasses
import json
import os
import shutil
import tempfile
import time

import numpy as np

from tfclf import config as config_lib, phases, progress, provenance, rundir, stages
from tfclf.data import multilabel as label_sets, readers, splits as splits_lib
from tfclf.evaluation import calibration, decision as decision_lib, explain, report, report_page, thresholds
from tfclf.evaluation import multilabel, multilabel_report
from tfclf.serving import export, predict
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
        if prepared.splits.multi_label:
            multilabel.check(config.decision, config.train)
        else:
            decision_lib.check(config.decision, prepared.class_names, config.train.monitor)
        if config.train.teacher:  # a damaged teacher is one line before the run directory exists
            export.verify(distill.resolve(config.train.teacher))
        phases.reached("prepared")
        staging = rundir.open_staging(config.out, config.digest(), overwrite, prepared.data_digest())
        try:
            metrics = _train_in(staging, prepared, strategy, started)
        except BaseException:
            # Work worth keeping (an epoch backup, the trained weights) stays for the same command to resume;
            # nothing half-written is left behind (a staging directory without such work is removed).
            rundir.keep_resumable(staging)
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
        progress.say(stages.budget_line(prepared))
        fitted = stages.fit(model, schedule, prepared, run_dir)
        stages.save_trained(model, fitted, run_dir)
        shutil.rmtree(os.path.join(run_dir, "backup"), ignore_errors=True)  # trained: nothing to resume
    phases.reached("trained")
    return model, fitted


def _train_in(run_dir: str, prepared: stages.Prepared, strategy, started: float) -> dict:
    config, splits = prepared.config, prepared.splits
    config_lib.save(config, os.path.join(run_dir, "config.json"))
    report.eda(splits, prepared.seq_len, prepared.family.length_unit, prepared.lengths["train"], run_dir,
               extra={**{key: prepared.stats[key] for key in ("decode_replacements", "skipped_files")
                         if key in prepared.stats}, "lengths": prepared.length_summary()})
    model, fitted = _fit_or_resume(run_dir, prepared, strategy)
    report.curves_plot(fitted.history, os.path.join(run_dir, "curves.png"), config.train.monitor,
                       fitted.best.get("epoch", 0))

    sizes = stages.split_sizes(prepared)
    progress.say(f"evaluating the {'best' if fitted.best and config.train.restore_best else 'last'} epoch's weights "
                 f"on {sizes['num_val']} validation and {sizes['num_test']} test texts")
    evaluate = _evaluate_multi_label if splits.multi_label else _evaluate
    metrics, page = evaluate(run_dir, prepared, model)
    phases.reached("evaluated")
    metrics.update({
        **stages.split_sizes(prepared),
        "seq_len": prepared.seq_len,
        "duplicates_removed": splits.summary["duplicates_removed"],
        "split_rule": splits.summary["split_rule"]["rule"],
        "train_examples_per_sec": fitted.examples_per_sec,
        "train_steps": fitted.steps,
        "training_stopped": fitted.stopped,
        "training_budget": stages.budget_record(prepared),
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
    report_page.write_run(run_dir, metrics, page["wrong"], page["explanations"], config.to_dict())
    report.write_json(os.path.join(run_dir, "metrics.json"), metrics)
    return metrics


def _evaluate(run_dir: str, prepared: stages.Prepared, model):
    """Validation and test metrics of the calibrated, thresholded decisions (temperature and threshold
    fitted on validation), test artifacts and plots. Returns (metrics, the report page's wrong texts)."""
    config, splits = prepared.config, prepared.splits
    scorer = stages.text_scorer(model, prepared)
    scored = {name: stages.score_split(model, prepared, name, scorer) for name in ("val", "test")}
    logits = {name: logits for name, (logits, _) in scored.items()}
    label_ids = {name: ids for name, (_, ids) in scored.items()}
    decision = decision_lib.Decision.fit(config.decision, logits["val"], label_ids["val"],
                                         splits.class_names, stages.train_label_ids(prepared))
    if decision.temperature_at_bound:
        progress.say(f"calibration: the temperature stopped at its bound {decision.temperature:g}: the validation "
                     "split's likelihood has no minimum inside (0.25, 20), e.g. every validation text is right")
    if decision.validation and not decision.validation["reached"]:
        progress.say(f"--target-precision {config.decision.target_precision:g} is not reached on validation at any "
                     f"threshold; using the most precise one (precision {decision.validation['precision']:.4f})")
    metrics, probabilities = {}, {}
    for name in ("val", "test"):
        probabilities[name] = decision.probabilities(logits[name])
        metrics[name] = stages.split_metrics(config.train, label_ids[name], probabilities[name],
                                             splits.class_names, decision.predict(probabilities[name]),
                                             calibration.softmax(logits[name]))
    if decision.threshold is not None:  # the same test texts by argmax, beside the threshold's
        metrics["test_argmax"] = stages.split_metrics(config.train, label_ids["test"], probabilities["test"],
                                                      splits.class_names,
                                                      loss_probabilities=calibration.softmax(logits["test"]))
    metrics["decision"] = decision.report(logits["test"], label_ids["test"])
    page = stages.write_test_artifacts(
        run_dir, stages.split_rows(prepared, "test"), label_ids["test"], probabilities["test"], metrics["test"],
        splits.class_names, "test",
        decision.predict(probabilities["test"]),
        lambda texts, ids: explain.occlusion(stages.probability_fn(model, prepared, decision.temperature), texts,
                                             predicted=ids), metrics["decision"])
    panels = [(_served_title(decision), probabilities["test"])]
    if config.decision.calibration != "none":
        panels.insert(0, ("test, before scaling (T = 1)", calibration.softmax(logits["test"])))
    stages.write_decision_plots(run_dir, label_ids["test"], panels, metrics["decision"],
                                [("validation", probabilities["val"], label_ids["val"]),
                                 ("test", probabilities["test"], label_ids["test"])])
    return metrics, page


def _served_title(decision) -> str:
    """The reliability panel of the served probabilities: its temperature, and the fitted one when not kept."""
    chosen = decision.calibration or {}
    dropped = f" (fitted {chosen['fitted']:.3f}, not kept)" if chosen and not chosen["kept"] else ""
    return f"test, temperature {decision.temperature:.3f}{dropped}"


def _evaluate_multi_label(run_dir: str, prepared: stages.Prepared, model):
    """_evaluate for label sets: one temperature and a threshold per label fitted on validation, the
    multi-label metrics of validation and test, test artifacts. Returns (metrics, the report page's rows)."""
    config, splits = prepared.config, prepared.splits
    scorer = stages.text_scorer(model, prepared)
    logits = {name: stages.score_logits(model, prepared, name, scorer) for name in ("val", "test")}
    targets = {name: splits.targets(name) for name in ("val", "test")}
    decision = multilabel.MultiLabelDecision.fit(config.decision, logits["val"], targets["val"], splits.class_names,
                                                 splits.label_separator)
    unseen = [name for i, name in enumerate(splits.class_names) if not targets["val"][:, i].any()]
    if unseen:
        progress.say(f"thresholds: label(s) {unseen[:5]} have no validation text; they keep "
                     f"{multilabel.DEFAULT_THRESHOLD}")
    metrics, probabilities = {}, {}
    for name in ("val", "test"):
        probabilities[name] = decision.probabilities(logits[name])
        metrics[name] = multilabel.metrics(targets[name], probabilities[name], decision.predict(probabilities[name]),
                                           splits.class_names,
                                           multilabel.binary_cross_entropy(logits[name], targets[name]))
    metrics["decision"] = decision.report(logits["test"], targets["test"])
    panels = [(_served_title(decision), probabilities["test"])]
    if config.decision.calibration != "none":
        panels.insert(0, ("test, before scaling (T = 1)", multilabel.sigmoid(logits["test"])))
    page = multilabel_report.write_artifacts(
        run_dir, splits.test, targets["test"], probabilities["test"], decision.predict(probabilities["test"]),
        metrics["test"], metrics["decision"], splits.class_names, "test", decision.separator, panels)
    return metrics, page


def evaluate_export(model_dir: str, data_path: str, text_columns: tuple, label_column: str, out: str,
                    label_separator: str = None, label_columns: tuple = None) -> dict:
    """Scores a labelled file with an exported model and writes the report a run writes for its test set,
    in `<out>.partial` renamed to `<out>` when complete; an existing non-empty `out` is never touched.
    A multi-label model reads label sets (`label_separator` / `label_columns`; None: as the model was trained)."""
    rundir.check_locations([rundir.Location("--out", out, "run"), rundir.Location("--model", model_dir, "input"),
                            rundir.Location("--data", data_path, "input")])
    if rundir.occupied(out):
        raise ValueError(f"--out {out}: exists and is not an empty directory (a run or an earlier evaluation?); "
                         "choose another --out")
    rundir.check_writable(os.path.dirname(os.path.abspath(out)), "--out")
    serve = export.load(model_dir)
    with open(os.path.join(model_dir, export.EXTRA, "labels.json"), encoding="utf-8") as handle:
        class_names = json.load(handle)
    if "label_names" in serve.structured_outputs:
        table = _label_sets(model_dir, data_path, text_columns, label_column, label_separator, label_columns,
                            class_names)
        score_and_report = _score_and_report_multi_label
    else:
        table = _labelled(data_path, text_columns, label_column, class_names)
        score_and_report = _score_and_report
    with rundir.locked(out):
        staging = rundir.staging_dir(out)
        if rundir.occupied(out) or rundir.resumable(staging):
            raise ValueError(f"--out {out}: holds a run or an interrupted run ({staging}); choose another --out")
        shutil.rmtree(staging, ignore_errors=True)
        os.makedirs(staging)
        metrics = score_and_report(staging, serve, model_dir, data_path, table, class_names)
        rundir.finish(staging, out)
    return metrics


def _labelled(data_path: str, text_columns: tuple, label_column: str, class_names):
    """A labelled file's table with each label's id among the model's classes."""
    table, _ = readers.read(data_path, text_columns, label_column)
    table, _ = splits_lib.validate(table, data_path, drop_invalid=False, min_classes=1)
    unknown = sorted(set(table["label"]) - set(class_names))
    if unknown:
        raise ValueError(f"{data_path}: labels {unknown[:5]} are not among the model's classes "
                         f"{class_names}; check --label-column")
    index = {name: i for i, name in enumerate(class_names)}
    table["label_id"] = table["label"].map(index).astype("int32")
    return table


def _label_sets(model_dir: str, data_path: str, text_columns: tuple, label_column: str, separator, columns,
                class_names):
    """A labelled file's table of label sets (column `labels`) for a multi-label model; the separator and
    0/1 columns default to the ones the model was trained with."""
    trained = export.read_extra(model_dir, "config.json", {}).get("data", {})
    separator = trained.get("label_separator", "") if separator is None else separator
    columns = tuple(trained.get("label_columns", ())) if columns is None else tuple(columns)
    table, _ = readers.read(data_path, text_columns, label_column, separator, columns)
    if "labels" not in table.columns:  # one label per row: each a set of one
        table["labels"] = [None if label is None or label != label else (str(label).strip(),)
                           for label in table["label"]]
    table, _ = splits_lib.validate_multi_label(table, data_path, drop_invalid=False)
    unknown = sorted({label for labels in table["labels"] for label in labels} - set(class_names))
    if unknown:
        raise ValueError(f"{data_path}: labels {unknown[:5]} are not among the model's labels {class_names[:10]}; "
                         "check --label-column / --label-separator / --label-columns")
    return table


def _score_and_report_multi_label(staging: str, serve, model_dir: str, data_path: str, table, class_names) -> dict:
    """_score_and_report for a multi-label export: its probabilities and label sets (its per-label thresholds
    apply), the multi-label metrics and the run's test artifacts in `staging`."""
    scored = predict.predict(serve, table["text"].tolist(), progress=True)
    probabilities, mask = scored["probabilities"], scored["label_mask"]
    targets = label_sets.targets(table["labels"], class_names)
    decision = export.read_extra(model_dir, export.CALIBRATION, {})
    decision = {key: decision.get(key) for key in ("multi_label", "temperature", "threshold", "thresholds",
                                                   "threshold_mode", "label_separator")}
    served = multilabel.as_binary(probabilities, targets)
    decision["served"] = {"ece": calibration.expected_calibration_error(*served),
                          "brier": calibration.brier_score(*served)}
    # The loss is the model's own: the export's temperature undone on the logits log(p / (1 - p)).
    clipped = np.clip(probabilities.astype(np.float64), 1e-7, 1 - 1e-7)
    logits = (decision["temperature"] or 1.0) * np.log(clipped / (1.0 - clipped))
    metrics = multilabel.metrics(targets, probabilities, mask, class_names,
                                 multilabel.binary_cross_entropy(logits, targets))
    title = os.path.basename(data_path)
    page = multilabel_report.write_artifacts(staging, table, targets, probabilities, mask, metrics, decision,
                                             class_names, title, decision.get("label_separator") or "|",
                                             [(f"{title}, as served", probabilities)])
    summary = {"test": metrics, "decision": decision, "model": model_dir, "data": data_path, "num_test": len(table)}
    report_page.write_evaluation(staging, summary, page["wrong"], page["explanations"])
    report.write_json(os.path.join(staging, "metrics.json"), summary)
    return metrics


def _score_and_report(staging: str, serve, model_dir: str, data_path: str, table, class_names) -> dict:
    """The export's probabilities and own decisions (its threshold applies) on `table`, and the run's test
    report for them in `staging`: metrics.json, predictions, plots, report.txt and report.html."""
    scored = predict.predict(serve, table["text"].tolist(), progress=True)
    probabilities, predicted = scored["probabilities"], scored["class_id"]
    decision = _served_decision(model_dir, table["label_id"], probabilities)
    # The loss is the model's own: the export's temperature undone (exact unless a probability underflowed).
    metrics = stages.split_metrics(_stored_train_config(model_dir), table["label_id"], probabilities, class_names,
                                   predicted, calibration.rescale(probabilities, decision["temperature"] or 1.0))
    title = os.path.basename(data_path)
    page = stages.write_test_artifacts(
        staging, table, table["label_id"], probabilities, metrics, class_names, title, predicted,
        lambda texts, ids: explain.occlusion(lambda batch: predict.predict(serve, batch)["probabilities"], texts,
                                             predicted=ids), decision)
    stages.write_decision_plots(staging, table["label_id"], [(f"{title}, as served", probabilities)], decision,
                                [(title, probabilities, table["label_id"])])
    summary = {"test": metrics, "decision": decision, "model": model_dir, "data": data_path, "num_test": len(table)}
    report_page.write_evaluation(staging, summary, page["wrong"], page["explanations"])
    report.write_json(os.path.join(staging, "metrics.json"), summary)
    return metrics


def _served_decision(model_dir: str, label_ids, probabilities) -> dict:
    """The export's temperature and threshold (calibration.json; none in older exports) with the ECE and
    Brier score of its served probabilities on this data, and the threshold's precision/recall/F1."""
    stored = export.read_extra(model_dir, export.CALIBRATION, {})
    decision = {key: stored.get(key) for key in ("temperature", "threshold", "positive_class", "positive_id",
                                                 "threshold_mode")}
    label_ids = np.asarray(label_ids)
    decision["served"] = {"ece": calibration.expected_calibration_error(probabilities, label_ids),
                          "brier": calibration.brier_score(probabilities, label_ids)}
    if decision["threshold"] is not None:
        scores, positives = probabilities[:, decision["positive_id"]], label_ids == decision["positive_id"]
        decision["threshold_test"] = {"at_threshold": thresholds.point(scores, positives, decision["threshold"]),
                                      "argmax": thresholds.point(scores, positives, 0.5)}
    return decision


def _stored_train_config(model_dir: str):
    """The training config stored in the export (so its loss is the one trained with); defaults if absent."""
    path = os.path.join(model_dir, export.EXTRA, "config.json")
    if not os.path.isfile(path):
        return config_lib.TrainConfig()
    with open(path, encoding="utf-8") as handle:
        stored = json.load(handle).get("train", {})
    names = {field.name for field in dataclasses.fields(config_lib.TrainConfig)}
    return config_lib.TrainConfig(**{key: value for key, value in stored.items() if key in names})
