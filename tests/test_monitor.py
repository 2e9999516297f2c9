"""--monitor auto (the default): the task's metric, filled in once the data is read (val_macro_f1 for
single-label data, val_micro_f1 for multi-label), recorded in config.json, kept by a resumed run; an explicit
--monitor keeps its meaning and its checks."""
import json
import os

import pytest

from conftest import toy_rows, write_csv
from tfclf import config as config_lib
from tfclf.stages import preparing

WORDS = ("sports", "tech", "money")


def _multi_label_csv(path, n=90):
    rows = []
    for i in range(n):
        labels = [word for j, word in enumerate(WORDS) if (i >> j) & 1] or ["sports"]
        rows.append({"text": " ".join(f"{word} item{i % 7}" for word in labels), "label": "|".join(labels)})
    return write_csv(path, rows, columns=("text", "label"))


@pytest.mark.parametrize("kind, given, expected", [
    ("single", {}, "val_macro_f1"), ("multi", {}, "val_micro_f1"),
    ("multi", {"monitor": "val_loss"}, "val_loss"), ("single", {"monitor": "val_accuracy"}, "val_accuracy")])
def test_monitor_auto_becomes_the_tasks_metric_and_config_json_records_it(tmp_path, kind, given, expected):
    data = (write_csv(tmp_path / "d.csv", toy_rows(60)) if kind == "single" else _multi_label_csv(tmp_path / "d.csv"))
    extra = {"label_separator": "|"} if kind == "multi" else {}
    config = preparing.resolve(config_lib.from_flat({"data": data, "encoder": "bow", "out": str(tmp_path / "run"),
                                                     **extra, **given}))
    assert config.train.monitor == given.get("monitor", "auto")  # the task is not known before the data is read
    prepared = preparing.prepare(config)
    assert prepared.config.train.monitor == expected
    prepared.task.check(prepared.config, prepared.class_names)
    preparing.record(prepared, str(tmp_path))
    saved = json.load(open(tmp_path / "config.json"))
    assert saved["train"]["monitor"] == expected
    assert config_lib.digest_of(saved) == prepared.config.digest()
    short_texts = preparing.with_truncate(config, "head")  # --truncate auto, decided on the same read
    assert (config_lib.digest_of(saved) == short_texts.digest()) == bool(given)  # auto: the digest has the metric


def test_an_explicit_monitor_keeps_its_check():
    with pytest.raises(ValueError, match="--monitor val_micro_f1: a multi-label metric, and the data is single-label"):
        from tfclf.tasks import kinds
        config = config_lib.from_flat({"monitor": "val_micro_f1"})
        kinds.named("single_label").check(preparing.with_task_defaults(config, kinds.named("single_label")), ["a", "b"])


def test_an_interrupted_run_with_monitor_auto_resumes_with_the_same_metric(tmp_path, monkeypatch):
    from tfclf import faults
    from tfclf.jobs import training_run
    data = _multi_label_csv(tmp_path / "d.csv")
    monkeypatch.chdir(tmp_path)
    config = config_lib.from_flat({"data": data, "encoder": "bow", "label_separator": "|", "epochs": 2,
                                   "batch_size": 16, "embedding_dim": 8, "vocab_size": 100, "skip_export": True})
    reached = faults.reached

    def interrupt(point):
        if point == "trained":
            raise KeyboardInterrupt  # after the trained weights are saved: the run keeps them to resume
        reached(point)
    monkeypatch.setattr(faults, "reached", interrupt)
    with pytest.raises(KeyboardInterrupt):
        training_run.train(config)
    monkeypatch.setattr(faults, "reached", reached)
    staged = [name for name in os.listdir("runs") if name.endswith(".partial")]
    assert len(staged) == 1, staged
    saved = json.load(open(os.path.join("runs", staged[0], "config.json")))
    assert saved["train"]["monitor"] == "val_micro_f1"
    result = training_run.train(config)  # the same command: the same directory, resumed, not refused
    assert result.run_dir + ".partial" == os.path.join("runs", staged[0])
    assert result.metrics["best_checkpoint"]["monitor"] == "val_micro_f1"
    assert result.metrics["config_digest"] == config_lib.digest_of(saved)
    assert json.load(open(os.path.join(result.run_dir, "config.json"))) == saved
