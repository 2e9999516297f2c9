"""One run end to end: data -> model -> fit -> evaluation artifacts, in one run directory.

The run is built in `<run_dir>.partial` and renamed to `<run_dir>` when every
artifact is written, so a failed or killed run never looks finished.

    >>> result = train(config.from_flat({"data": "sms_spam", "epochs": 1}))
    >>> result.metrics["test"]["macro_f1"]
"""
import dataclasses
import hashlib
import os
import shutil
import tempfile
import time

import numpy as np

from tfclf import config as config_lib
from tfclf import data, distill, distribute, encoders, export, losses, models, report, training, transformer
from tfclf._backend import keras


@dataclasses.dataclass
class Result:
    run_dir: str
    metrics: dict
    export_path: str = ""


def default_run_dir(config) -> str:
    """runs/<data>-<encoder>-<config digest>[-N]: the same command finds its own killed run again
    (and resumes it), while a finished run is never overwritten (the next free -N is used)."""
    name = os.path.splitext(os.path.basename(os.path.normpath(config.data.data)))[0]
    base = os.path.join("runs", f"{name}-{config.model.encoder}-{config.digest()}")
    path, number = base, 1
    while os.path.exists(os.path.join(path, "metrics.json")):
        number += 1
        path = f"{base}-{number}"
    return path


def resolve(config):
    """Fills the encoder-dependent defaults (lr, epochs, out) so config.json says what ran."""
    spec = models.MODELS[config.model.encoder]
    train = dataclasses.replace(config.train, lr=config.train.lr or spec["lr"],
                                epochs=config.train.epochs or spec["epochs"])
    model = config.model
    if spec["input"] == "tokens":  # may download or import: records the exact handles in config.json
        handles = encoders.resolve_handles(model.encoder, model.encoder_handle, model.preprocess_handle)
        model = dataclasses.replace(model, encoder_handle=handles["encoder"], preprocess_handle=handles["preprocess"])
    config = dataclasses.replace(config, train=train, model=model)
    return dataclasses.replace(config, out=config.out or default_run_dir(config))


def choose_seq_len(train_lengths, requested: int, maximum: int = 0) -> int:
    """The requested length, else the 95th percentile of training lengths (seed 004's method),
    capped at `maximum` (the encoder's position embeddings) when given."""
    length = requested or max(1, int(np.ceil(np.percentile(train_lengths, 95))))
    return min(length, maximum) if maximum else length


def _prepare_run_dir(path: str, digest: str) -> str:
    """The staging directory; a killed run of the same config (same digest) is kept, to resume."""
    if os.path.exists(os.path.join(path, "metrics.json")):
        raise ValueError(f"--out {path}: a finished run is already there; choose another --out or remove it")
    if os.path.exists(path) and os.listdir(path):
        raise ValueError(f"--out {path}: directory exists and is not empty; choose another --out")
    staging = path.rstrip("/") + ".partial"
    saved = os.path.join(staging, "config.json")
    if os.path.isdir(os.path.join(staging, "backup")) and os.path.exists(saved) and \
            config_lib.load(saved).digest() == digest:
        print(f"resuming the interrupted run in {staging} from its last backup")
        return staging
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    return staging


def train(config) -> Result:
    """Trains and evaluates one configuration; returns the run directory and metrics.json's content."""
    started = time.perf_counter()
    strategy = distribute.make_strategy(config.train.strategy)  # first: before any other TF work
    config = resolve(config)
    if not distribute.is_chief():  # multi-worker: only the chief writes the run directory and the export
        scratch = tempfile.mkdtemp(prefix="tfclf-worker-")
        # Saving is collective under MultiWorkerMirroredStrategy: workers export too, into scratch.
        config = dataclasses.replace(config, out=os.path.join(scratch, "run"),
                                     export=dataclasses.replace(config.export, export_dir=os.path.join(scratch, "m")))
        try:
            return _run(config, strategy, started)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return _run(config, strategy, started)


def _run(config, strategy, started: float) -> Result:
    table, stats = data.load(config.data)                      # I/O; errors before any directory exists
    splits = data.prepare(table, config.data, config.train.seed, source=stats["source"])
    spec = models.MODELS[config.model.encoder]
    pipeline = None
    if spec["input"] == "tokens":
        pipeline = transformer.TextEncoderPipeline(config.model.preprocess_handle)
        lengths = pipeline.lengths(splits.train["text"])
        seq_len = choose_seq_len(lengths, config.data.seq_len, maximum=512)
    else:
        lengths = data.word_lengths(splits.train["text"])
        seq_len = choose_seq_len(lengths, config.data.seq_len)
    staging = _prepare_run_dir(config.out, config.digest())
    try:
        metrics = _train_in(staging, config, strategy, splits, stats, spec, lengths, seq_len, pipeline, started)
    except (training.TrainingDiverged, KeyboardInterrupt):
        raise  # keep the staging directory and its last backup: the same command resumes
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if os.path.isdir(config.out):
        os.rmdir(config.out)  # empty: checked above
    os.replace(staging, config.out)
    return Result(config.out, metrics, metrics.get("export_path", ""))


def _train_in(run_dir, config, strategy, splits, stats, spec, lengths, seq_len, pipeline, started) -> dict:
    map_fn = pipeline.map_fn(seq_len, dynamic=not config.train.xla) if pipeline else None
    config_lib.save(config, os.path.join(run_dir, "config.json"))
    report.eda(splits, seq_len, spec["length_unit"], lengths, run_dir,
               extra={"decode_replacements": stats["decode_replacements"]})

    train_labels, val_labels = splits.train["label_id"], splits.val["label_id"]
    if config.train.teacher:  # the teacher scores train and validation texts once (I/O, before the model)
        train_labels, val_labels = (distill.pack(frame["label_id"], distill.teacher_probabilities(
            config.train.teacher, frame["text"], splits.class_names)) for frame in (splits.train, splits.val))
    training.seed_everything(config.train.seed, config.train.deterministic)
    num_classes = len(splits.class_names)
    batch = config.train.batch_size
    print(f"strategy {type(strategy).__name__}: {strategy.num_replicas_in_sync} replica(s), global batch {batch}, "
          f"per replica {distribute.per_replica_batch(batch, strategy)}")
    steps_per_epoch = int(np.ceil(len(splits.train) / batch))
    policy = training.precision_policy(config.train.mixed_precision)
    keras.mixed_precision.set_global_policy(policy)
    try:
        with strategy.scope():
            model = models.build_for_training(config.model, config.train, num_classes, seq_len,
                                              splits.train["text"])
            schedule = training.compile_model(model, config.train, num_classes, config.train.lr,
                                              steps_per_epoch * config.train.epochs)
    finally:
        keras.mixed_precision.set_global_policy("float32")  # layers keep the policy they were built with
    weights = training.class_weights(splits.train["label_id"], num_classes, config.train.class_weight)
    # Transformer batches are grouped by token length, so per-batch padding stays short.
    train_ds = data.make_dataset(splits.train["text"], train_labels, batch, shuffle=True, seed=config.train.seed,
                                 map_fn=map_fn, sample_weights=training.class_sample_weights(
                                     splits.train["label_id"], weights), lengths=lengths if pipeline else None)
    # Token lengths of the held-out texts, computed once: they group validation batches and order prediction.
    held_out_lengths = {name: pipeline.lengths(frame["text"]) if pipeline else None
                        for name, frame in (("val", splits.val), ("test", splits.test))}
    val_ds = data.make_dataset(splits.val["text"], val_labels, batch, map_fn=map_fn,
                               lengths=held_out_lengths["val"])
    training.log_config(config, os.path.join(run_dir, "tensorboard"))
    history, throughput, best = training.fit(model, train_ds, val_ds, config.train, len(splits.train),
                                             steps_per_epoch, schedule, run_dir)
    shutil.rmtree(os.path.join(run_dir, "backup"), ignore_errors=True)  # finished: nothing to resume
    report.curves_plot(history, os.path.join(run_dir, "curves.png"))

    loss_fn = losses.build(config.train, num_classes)
    metrics = {}
    for name, frame in (("val", splits.val), ("test", splits.test)):
        probabilities = training.predict_probabilities(model, frame["text"], batch, map_fn,
                                                       held_out_lengths[name])
        loss = training.mean_loss(loss_fn, frame["label_id"], probabilities)
        metrics[name] = report.classification_metrics(frame["label_id"].to_numpy(), probabilities,
                                                      splits.class_names, loss)
        if name == "test":
            predictions = report.write_predictions(frame, probabilities, splits.class_names,
                                                   os.path.join(run_dir, "predictions.csv"))
            report.confusion_matrix_plot(frame["label_id"], probabilities.argmax(axis=1), splits.class_names,
                                         os.path.join(run_dir, "confusion_matrix.png"), "test")
            report.text_report(metrics["test"], predictions, splits.class_names,
                               os.path.join(run_dir, "report.txt"))
    metrics.update({
        "num_train": len(splits.train), "num_val": len(splits.val), "num_test": len(splits.test),
        "seq_len": seq_len,
        "duplicates_removed": splits.summary["duplicates_removed"],
        "train_examples_per_sec": throughput.examples_per_sec,
        "best_checkpoint": {key: value for key, value in (best or {}).items() if key != "weights"},
        "evaluated_weights": "best" if best and config.train.restore_best else "last",
        "wall_seconds": time.perf_counter() - started,
        "history": {key: [float(v) for v in values] for key, values in history.items()},
        "config_digest": config.digest(),
        # Digest of the trained parameters: equal digests mean equal models (e.g. across workers).
        "weights_sha256": hashlib.sha256(b"".join(np.ascontiguousarray(w.numpy()).tobytes()
                                                  for w in model.trainable_weights)).hexdigest(),
        **getattr(model, "tfclf_info", {}),
    })
    if not config.export.skip_export:
        metrics["export_path"] = _export(model, config, splits.class_names, seq_len, metrics)
    report.write_json(os.path.join(run_dir, "metrics.json"), metrics)
    return metrics


def _export(model, config, class_names, seq_len: int, metrics: dict) -> str:
    """Exports a raw-string model: the preprocessing in front of token-id models."""
    if models.MODELS[config.model.encoder]["input"] == "tokens":
        model = transformer.raw_text_model(model, config.model.preprocess_handle, seq_len)
    name = config.export.export_name or os.path.basename(os.path.normpath(config.out))
    extra = {"config.json": config.to_dict(), "metrics.json": {k: v for k, v in metrics.items() if k != "history"}}
    return export.export(model, class_names, os.path.join(config.export.export_dir, name), extra)
