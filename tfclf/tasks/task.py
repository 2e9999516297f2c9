"""What a task is: the one object that knows what a run predicts and how that is judged.

A family (models/) answers how a model is built and fed; a task answers everything that depends on what the
labels are (tensorflow/models' `Task`, keras-hub's `TextClassifier`): the loss and the Keras metrics of
training, the decision fitted on validation, the held-out metrics, the test artifacts and figures, the serving
signature of the export, how a labelled file is read, and the summary lines. The kinds:

    single_label.SingleLabel   softmax over classes: argmax, or a binary threshold
    multi_label.MultiLabel     one sigmoid per label: a threshold per label, label sets

`kinds.of_data(splits)` picks the task once (stages/preparing.prepare), the export records its name
(assets.extra/task.json) and `kinds.of_export(exported)` gets it back for evaluate and predict. No code outside
tasks/ (and the data readers) asks which kind a run is.
"""
import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Objective:
    """What training fits and tracks, for any family's Keras: the loss (plain TensorFlow math in a tf-keras
    Loss; the Keras 3 family wraps it) and `metrics(keras)`, the tracked metrics built in a Keras module
    (training/metrics.py)."""
    loss: object
    metrics: object


@dataclasses.dataclass
class Held:
    """A scored, labelled set, as a held-out report is written from it."""
    title: str                 # "test", or the evaluated file's name
    rows: object               # its table (or chunks of one, streamed), in the order of the arrays
    targets: np.ndarray        # the task's targets: label ids, or multi-hot rows
    probabilities: np.ndarray  # as served: calibrated
    predicted: np.ndarray      # the served decisions: class ids, or label masks


class Task:
    """The hooks every task fills; see single_label.py and multi_label.py."""

    name = ""            # recorded in the export (assets.extra/task.json) and metrics.json
    outputs = ()         # the export's serving outputs
    signature = ""       # its class in serving/signatures.py
    default_monitor = ""  # what --monitor auto becomes (stages/preparing.prepare)

    def check(self, config, class_names) -> None:
        """ValueError, before any directory exists, for what this task cannot do with `config`."""
        raise NotImplementedError

    def targets(self, frame, class_names) -> np.ndarray:
        """The targets of a labelled table (a split, or a file read by `read_labelled`)."""
        raise NotImplementedError

    def objective(self, train_config, num_classes: int, train_targets) -> Objective:
        raise NotImplementedError

    def sample_weights(self, train_targets, num_classes: int, mode: str):
        """Per-example training weights for --class-weight, or None."""
        return None

    def fit_decision(self, decision_config, val_logits, val_targets, splits, train_targets):
        """The decision fitted on validation: an object with probabilities(logits), predict(probabilities),
        export_record() and report(test_logits, test_targets)."""
        raise NotImplementedError

    def decision_notes(self, decision, decision_config, val_targets, class_names) -> list:
        """Lines for the terminal about what the fitted decision could not do."""
        return []

    def uncalibrated(self, logits) -> np.ndarray:
        """The model's own probabilities (temperature 1)."""
        raise NotImplementedError

    def loss(self, train_config, targets, logits) -> float:
        """The held-out loss of the model's own logits (comparable with the epochs' validation loss)."""
        raise NotImplementedError

    def served_logits(self, probabilities, temperature) -> np.ndarray:
        """Logits that give back the served `probabilities` at temperature 1 after dividing by `temperature`:
        the model's own, so that an export's loss is the run's."""
        raise NotImplementedError

    def metrics(self, targets, probabilities, predicted, class_names, loss: float) -> dict:
        raise NotImplementedError

    def extra_metrics(self, train_config, held: Held, decision, logits, class_names) -> dict:
        """Metrics beside the served decision's (the thresholded task's argmax), keyed for metrics.json."""
        return {}

    def served(self, outputs: dict) -> tuple:
        """(probabilities, decisions) of the serving signature's outputs."""
        raise NotImplementedError

    def served_decision(self, record: dict, targets, probabilities) -> dict:
        """An export's decision record (calibration.json) with the calibration figures of its served
        probabilities on a labelled file."""
        raise NotImplementedError

    def write_artifacts(self, directory: str, held: Held, metrics: dict, decision: dict, class_names,
                        panels, curves=(), explain=None) -> dict:
        """predictions.csv, report.txt and the figures of `held`; `panels` are (title, probabilities) of the
        reliability diagram, `curves` (title, probabilities, targets) of a threshold's precision-recall
        curve, `explain(texts, class ids)` explains the most confidently wrong texts. Returns the report
        page's {"wrong", "explanations"}."""
        raise NotImplementedError

    def serving_module(self, model, class_names, decision: dict):
        """The tf.Module the export saves (the task's signature with `decision`'s temperature and thresholds in
        its graph): its `serve` function is the serving signature."""
        from tfclf.serving import signatures  # TensorFlow
        return getattr(signatures, self.signature).from_record(model, class_names, decision)

    def read_labelled(self, path: str, text_columns: tuple, label_column: str, class_names, trained_data: dict,
                      label_separator=None, label_columns=None):
        """A labelled file's table for an exported model of this task (`trained_data`: the export's
        config.json "data", whose label format is the default)."""
        raise NotImplementedError

    def check_explain(self) -> None:
        """ValueError when --explain cannot explain this task's predictions."""

    def prediction_columns(self, outputs: dict, class_names) -> dict:
        """`tfclf.predict --input`'s added columns (name -> values) for the serving outputs."""
        raise NotImplementedError

    def prediction_lines(self, texts, outputs: dict, class_names) -> list:
        """`tfclf.predict`'s line per text."""
        raise NotImplementedError

    def summary_lines(self, test: dict) -> list:
        """The terminal's test lines after a run: the headline, the task's own figures, then per class."""
        width = max(len(name) for name in test["per_class"])
        return [f"test     accuracy {test['accuracy']:.4f}, macro-F1 {test['macro_f1']:.4f}, loss {test['loss']:.4f}",
                *self.more_summary_lines(test),
                *(f"         {name:<{width}}  precision {row['precision']:.4f}  recall {row['recall']:.4f}  "
                  f"F1 {row['f1']:.4f}  ({row['support']} texts)" for name, row in test["per_class"].items())]

    def more_summary_lines(self, test: dict) -> list:
        return []

    def evaluation_line(self, metrics: dict, served: dict) -> str:
        """`tfclf.evaluate`'s one line of metrics."""
        raise NotImplementedError

    label_word = "class"  # what report.html's data table and the class-count figure call a class
    counts_note = ""      # how a text is counted in the class-count figure, when not once

    def report_sections(self, test: dict, title: str, decision: dict, page: dict, argmax: dict = None) -> dict:
        """report.html's task-specific parts (report_page.write_run): the data table's label word, the metrics
        section and the most confidently wrong texts (`page`: write_artifacts' result)."""
        return {"label_word": self.label_word, "metrics": self.metrics_section(test, title, decision, argmax),
                "wrong": self.wrong_section(page)}

    def metrics_section(self, test: dict, title: str, decision: dict, argmax: dict = None) -> str:
        """report.html's metrics section."""
        raise NotImplementedError

    def wrong_section(self, page: dict) -> str:
        """report.html's most confidently wrong texts (`page`: write_artifacts' result)."""
        raise NotImplementedError
