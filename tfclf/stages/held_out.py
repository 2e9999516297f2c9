"""Scoring the held-out splits with the trained model, and the task's evaluation of them: the decision fitted
on validation, validation and test metrics, the test artifacts and figures.

    scorer = text_scorer(model, prepared)
    logits, targets = score_split(model, prepared, "test", scorer)
    metrics, page = evaluate(run_dir, prepared, model)
"""
import dataclasses

import numpy as np
import pandas as pd

from tfclf import progress
from tfclf.data import pipeline
from tfclf.evaluation import explain, scoring
from tfclf.stages.preparing import Prepared
from tfclf.tasks import task as task_lib


def text_scorer(model, prepared: Prepared) -> tuple:
    """(model, tf.data map) that turn whole texts into logits: the trained model behind the input pipeline,
    or, with --long-text chunk, the family's raw-text model that windows each text and aggregates (the one
    the export serves; the split texts are already cleaned)."""
    if prepared.config.model.long_text != "chunk":
        return model, prepared.input_fn()
    return prepared.family.serving_model(model, prepared.config.model, prepared.seq_len), None


def score_logits(model, prepared: Prepared, split: str, scorer: tuple = None) -> np.ndarray:
    """Logits of one split's texts, in their order (scored shortest first for token models and for windowed
    texts). `scorer`: text_scorer's result, when the caller scores several splits."""
    scoring_model, map_fn = scorer or text_scorer(model, prepared)
    by_length = prepared.family.tokenized or prepared.config.model.long_text == "chunk"
    return scoring.predict_logits(scoring_model, getattr(prepared.splits, split)["text"],
                                  prepared.config.train.batch_size, map_fn,
                                  prepared.lengths[split] if by_length else None)


def score_split(model, prepared: Prepared, split: str, scorer: tuple = None) -> tuple:
    """(logits, the task's targets) of one split in its order: the in-memory split's, or the streamed split's (read in
    file order, at most --max-eval-examples texts)."""
    if not prepared.streamed:
        return (score_logits(model, prepared, split, scorer),
                prepared.task.targets(getattr(prepared.splits, split), prepared.class_names))
    scoring_model, map_fn = scorer or text_scorer(model, prepared)
    dataset = pipeline.stream_dataset(lambda: prepared.corpus.batches(split, limit=prepared.config.data.max_eval_examples),
                                      prepared.scoring_batch, map_fn=map_fn)
    logits = np.asarray(scoring_model.predict(dataset.map(lambda inputs, labels: inputs), verbose=0), np.float32)
    # The labels in the same order from a pass without the model (reading is cheap beside scoring; Keras'
    # predict is about 4x faster than a Python loop of predict_on_batch, measured on bow).
    labels = [ids for _, ids in prepared.corpus.batches(split, limit=prepared.config.data.max_eval_examples)]
    labels = np.concatenate(labels) if labels else np.zeros(0, np.int32)
    if len(labels) != len(logits):
        raise ValueError(f"{prepared.corpus.source}: {len(logits)} {split} texts scored but {len(labels)} labels read: "
                         "the files changed during the run; keep them unchanged while a run reads them, then run again")
    return logits, labels


def split_rows(prepared: Prepared, split: str):
    """The split's rows (text, raw_text, label, row) in score_split's order: the table, or chunks of the stream."""
    if not prepared.streamed:
        return getattr(prepared.splits, split)
    names = prepared.class_names
    return (pd.DataFrame({"text": texts, "raw_text": raw, "label": [names[i] for i in ids], "row": rows})
            for texts, ids, raw, rows in prepared.corpus.batches(split, batch_rows=20_000, with_rows=True,
                                                                 limit=prepared.config.data.max_eval_examples))


def probability_fn(model, prepared: Prepared, temperature: float):
    """texts -> calibrated probabilities with the in-memory model (what explanations call)."""
    scoring_model, map_fn = text_scorer(model, prepared)

    def predict(texts):
        logits = scoring.predict_logits(scoring_model, texts, prepared.config.train.batch_size, map_fn)
        return prepared.task.uncalibrated(logits / temperature)
    return predict


def evaluate(run_dir: str, prepared: Prepared, model):
    """Validation and test metrics of the task's calibrated decisions (fitted on validation: temperature,
    thresholds), test artifacts and plots. Returns (metrics, the report page's wrong texts)."""
    config, task, class_names = prepared.config, prepared.task, prepared.class_names
    scorer = text_scorer(model, prepared)
    scored = {name: score_split(model, prepared, name, scorer) for name in ("val", "test")}
    logits = {name: logits for name, (logits, _) in scored.items()}
    targets = {name: targets for name, (_, targets) in scored.items()}
    decision = task.fit_decision(config.decision, logits["val"], targets["val"], prepared.splits,
                                 prepared.train_targets())
    for note in task.decision_notes(decision, config.decision, targets["val"], class_names):
        progress.say(note)
    metrics, held = {}, {}
    for name in ("val", "test"):
        probabilities = decision.probabilities(logits[name])
        held[name] = task_lib.Held(name, None, targets[name], probabilities, decision.predict(probabilities))
        metrics[name] = task.metrics(targets[name], probabilities, held[name].predicted, class_names,
                                     task.loss(config.train, targets[name], logits[name]))
    test = dataclasses.replace(held["test"], rows=split_rows(prepared, "test"))
    metrics.update(task.extra_metrics(config.train, test, decision, logits["test"], class_names))
    metrics["decision"] = decision.report(logits["test"], targets["test"])
    panels = [(_served_title(decision), test.probabilities)]
    if config.decision.calibration != "none":
        panels.insert(0, ("test, before scaling (T = 1)", task.uncalibrated(logits["test"])))
    page = task.write_artifacts(
        run_dir, test, metrics["test"], metrics["decision"], class_names, panels,
        [("validation", held["val"].probabilities, targets["val"]), ("test", test.probabilities, targets["test"])],
        lambda texts, ids: explain.occlusion(probability_fn(model, prepared, decision.temperature), texts,
                                             predicted=ids))
    return metrics, page


def _served_title(decision) -> str:
    """The reliability panel of the served probabilities: its temperature, and the fitted one when not kept."""
    chosen = decision.calibration or {}
    dropped = f" (fitted {chosen['fitted']:.3f}, not kept)" if chosen and not chosen["kept"] else ""
    return f"test, temperature {decision.temperature:.3f}{dropped}"
