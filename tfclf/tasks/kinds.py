"""Which task a run is: picked once from the data (`of_data`), recorded in the export (task.json), and read
back from it (`of_export`); the only place that asks.

    >>> named("multi_label").outputs
    ('probabilities', 'label_mask', 'label_names')
"""
from tfclf.tasks import multi_label, single_label

TASKS = {task.name: task for task in (single_label.SingleLabel(), multi_label.MultiLabel())}


def named(name: str):
    if name not in TASKS:
        raise ValueError(f"task {name!r} is unknown to this tfclf version; known: {', '.join(TASKS)}")
    return TASKS[name]


def of_data(splits):
    """The task of a run's data: multi-label when the reader found label sets."""
    return TASKS["multi_label" if splits.multi_label else "single_label"]


def of_export(exported):
    """The task of an exported model (serving/exported.ExportedModel): its task.json, or, in an export from
    before tasks were recorded, its calibration record (per-label thresholds: multi-label)."""
    if exported.task_name:
        return named(exported.task_name)
    return TASKS["multi_label" if exported.calibration.get("multi_label") else "single_label"]


def of_metrics(metrics: dict):
    """The task of a run's metrics.json (before tasks were recorded there: single-label)."""
    return named(metrics.get("task", "single_label"))
