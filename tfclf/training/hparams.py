"""TensorBoard's HParams records of a run and of a grid, written with TensorBoard's own protos and no TensorFlow
(the grid process writes them too).

TensorBoard attaches a metric to the session (a run's hyper-parameters) whose directory is the longest parent
of the metric's run, so a run's session is written at `<run>/tensorboard/`, above the `train/` and
`validation/` runs of Keras' TensorBoard callback. The experiment (the table's hyper-parameter and metric
columns) is written once per log directory: at `<run>/tensorboard/` for a lone run, and at
`<grid>/hparams_experiment/` for a grid, whose trials then write only their sessions.

    write_run(config, "runs/x/tensorboard")                  # config text, session, experiment
    write_grid_experiment("runs/grid-lr", [trial.config for trial in trials])
"""
import json
import os
import socket
import time

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2, summary_v2
from tensorboard.plugins.text import summary_v2 as text_summary
from tensorboard.summary.writer import record_writer

from tfclf import config as config_lib, files

EXPERIMENT_DIRECTORY = "hparams_experiment"  # in a grid directory: the experiment of all its trials

# The epoch metrics of Keras' TensorBoard callback (tag, run below the session) in the table's columns.
METRICS = (
    summary_v2.Metric("epoch_macro_f1", group="validation", display_name="val macro-F1",
                      dataset_type=summary_v2.Metric.VALIDATION),
    summary_v2.Metric("epoch_accuracy", group="validation", display_name="val accuracy",
                      dataset_type=summary_v2.Metric.VALIDATION),
    summary_v2.Metric("epoch_loss", group="validation", display_name="val loss",
                      dataset_type=summary_v2.Metric.VALIDATION),
    summary_v2.Metric("epoch_loss", group="train", display_name="train loss",
                      dataset_type=summary_v2.Metric.TRAINING),
)


def flat_hparams(config) -> dict:
    """The config's scalar values as {"section.key": value}; tuples (e.g. text columns) are left out."""
    return {f"{section}.{key}": value for section, values in config.to_dict().items() if isinstance(values, dict)
            for key, value in values.items() if isinstance(value, (bool, int, float, str))}


def _hparam_info(name: str, values: list) -> api_pb2.HParamInfo:
    """One column: its type, the values the sessions take, and whether they differ (TensorBoard shows the
    differing columns first)."""
    distinct = sorted(set(values), key=repr)
    info = api_pb2.HParamInfo(name=name, differs=len(distinct) > 1)
    if all(isinstance(value, bool) for value in values):
        info.type = api_pb2.DATA_TYPE_BOOL
        info.domain_discrete.extend(distinct)
    elif all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in values):
        info.type = api_pb2.DATA_TYPE_FLOAT64
        info.domain_interval.min_value, info.domain_interval.max_value = min(values), max(values)
    elif all(isinstance(value, str) for value in values):
        info.type = api_pb2.DATA_TYPE_STRING
        info.domain_discrete.extend(distinct)
    return info


def experiment_summary(sessions: list) -> summary_pb2.Summary:
    """The experiment of the given sessions' hyper-parameters (dicts from flat_hparams) and of METRICS."""
    names = list(dict.fromkeys(name for hparams in sessions for name in hparams))
    experiment = api_pb2.Experiment(
        hparam_infos=[_hparam_info(name, [hparams[name] for hparams in sessions if name in hparams])
                      for name in names],
        metric_infos=[metric.as_proto() for metric in METRICS], time_created_secs=time.time())
    summary = summary_pb2.Summary()
    summary.value.add(tag=metadata.EXPERIMENT_TAG, tensor=metadata.NULL_TENSOR,
                      metadata=metadata.create_summary_metadata(plugin_data_pb2.HParamsPluginData(experiment=experiment)))
    return summary


def write_summaries(directory: str, summaries) -> str:
    """The summaries (step 0) in a new event file in `directory`, renamed into place when complete."""
    os.makedirs(directory, exist_ok=True)
    name = f"events.out.tfevents.{time.time():.6f}.{socket.gethostname()}.{os.getpid()}.hparams"
    path = os.path.join(directory, name)
    with files.atomic_write(path, "wb") as handle:
        writer = record_writer.RecordWriter(handle)
        writer.write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2").SerializeToString())
        for summary in summaries:
            writer.write(event_pb2.Event(wall_time=time.time(), step=0, summary=summary).SerializeToString())
    return path


def experiment_above(log_dir: str) -> str:
    """The grid experiment directory in a directory above `log_dir`, or "" (a lone run)."""
    directory = os.path.dirname(os.path.abspath(log_dir))
    while True:
        candidate = os.path.join(directory, EXPERIMENT_DIRECTORY)
        if os.path.isdir(candidate):
            return candidate
        if os.path.dirname(directory) == directory:
            return ""
        directory = os.path.dirname(directory)


def write_run(config, log_dir: str) -> None:
    """The full config as text and this run's HParams session in `log_dir` (the run's `tensorboard/`), with
    the experiment unless a grid above holds it (two experiments in one log directory: TensorBoard picks one)."""
    hparams = flat_hparams(config)
    summaries = [text_summary.text_pb("config", "```\n" + json.dumps(config.to_dict(), indent=2) + "\n```"),
                 summary_v2.hparams_pb(hparams, trial_id=config.digest())]
    if not experiment_above(log_dir):
        summaries.append(experiment_summary([hparams]))
    write_summaries(log_dir, summaries)


def write_grid_experiment(grid_dir: str, trial_configs) -> str:
    """The experiment of a grid's trials (flat config dicts, as given: before the family fills its defaults)
    in `<grid_dir>/hparams_experiment/`, replacing an earlier one; returns the event file's path."""
    directory = os.path.join(grid_dir, EXPERIMENT_DIRECTORY)
    earlier = os.listdir(directory) if os.path.isdir(directory) else []
    sessions = [flat_hparams(config_lib.from_flat(values)) for values in trial_configs]
    path = write_summaries(directory, [experiment_summary(sessions)])
    for name in earlier:
        os.remove(os.path.join(directory, name))
    return path
