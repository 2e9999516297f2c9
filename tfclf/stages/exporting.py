"""The last stage: the raw-string model (the run's cleaning, the family's preprocessing, the model) exported
with the task's serving signature as the next version of saved_models/<name>/."""
import os

from tfclf import rundir
from tfclf.serving import export
from tfclf.stages.preparing import Prepared


def export_model(model, prepared: Prepared, metrics: dict, run_id: str, decision: dict = None) -> str:
    """Exports the raw-string model (the run's cleaning, then the family's preprocessing, then the model) as
    the next version, or returns the version this run (`run_id`) had already exported before it was killed."""
    config = prepared.config
    model_root = rundir.export_root(config)
    done = export.find_version(model_root, run_id)
    if done:
        print(f"export: {done} is this run's own export, written before it was interrupted; kept")
        return done
    serving = prepared.family.raw_text_model(model, config.model, prepared.seq_len, config.data.clean)
    extra = {"config.json": config.to_dict(), "metrics.json": {k: v for k, v in metrics.items() if k != "history"},
             "run.json": {"run_id": run_id, "run_dir": os.path.abspath(config.out),
                          "environment": metrics.get("environment"), "precision": metrics.get("precision")},
             export.TASK: {"name": prepared.task.name}}
    module = prepared.task.serving_module(serving, prepared.class_names, decision or {})
    return export.export(serving, prepared.class_names, model_root, extra, decision, module)
