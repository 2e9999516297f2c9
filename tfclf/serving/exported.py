"""One reader of an exported model: its serving function (verified first) and the files beside it.

predict, evaluate, distillation and the server read an export only through `ExportedModel`, so every file of
`assets.extra/` (labels.json, calibration.json, config.json, task.json) is read in one place, with one default
for an older export that lacks it.

    model = ExportedModel.open("saved_models/spam")          # a run directory, a model root or a version
    model.class_names, model.predict(["WIN a prize now"])["class_name"]
"""
import dataclasses
import functools

from tfclf import config as config_lib
from tfclf.serving import export, predict


class ExportedModel:
    """An export at `path` (a saved_models/<name>/<version> directory), loaded and verified (export.load)."""

    def __init__(self, path: str):
        self.path = path
        self.serve = export.load(path)

    @classmethod
    def open(cls, path: str, flag: str = "--model") -> "ExportedModel":
        """A run directory (its export), a model root (its newest version) or a version directory;
        `flag` names the option in errors."""
        return cls(export.resolve(path, flag))

    @functools.cached_property
    def class_names(self) -> list:
        return export.read_extra(self.path, "labels.json", [])

    @functools.cached_property
    def calibration(self) -> dict:
        """The decision record (calibration.json): temperature, thresholds; {} in an export without it."""
        return export.read_extra(self.path, export.CALIBRATION, {})

    @functools.cached_property
    def config(self) -> dict:
        """The run's config.json as saved (a dict; {} in an export without it)."""
        return export.read_extra(self.path, "config.json", {})

    @functools.cached_property
    def task_name(self) -> str:
        """The task recorded at export (task.json), "" in an export from before tasks were recorded."""
        return export.read_extra(self.path, export.TASK, {}).get("name", "")

    def train_config(self) -> config_lib.TrainConfig:
        """The training config the model was trained with (so its loss is the one trained with); defaults for
        the keys an older export lacks."""
        stored = self.config.get("train", {})
        names = {field.name for field in dataclasses.fields(config_lib.TrainConfig)}
        return config_lib.TrainConfig(**{key: value for key, value in stored.items() if key in names})

    def predict(self, texts, batch_size: int = 256, progress: bool = False) -> dict:
        """The serving function's outputs for `texts` as NumPy arrays (predict.predict)."""
        return predict.predict(self.serve, texts, batch_size, progress)

