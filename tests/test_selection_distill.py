"""Best-checkpoint selection by a validation metric, the streaming macro-F1, the progress line and
knowledge distillation from an exported teacher."""
import json
import os
import random

import numpy as np
import pytest
from sklearn.metrics import f1_score

from conftest import NEGATIVE, POSITIVE, FILLER, toy_rows, write_csv
from tfclf import config as config_lib
from tfclf.jobs import training_run
from tfclf.data import pipeline
from tfclf.training import losses, metrics


def test_macro_f1_metric_matches_scikit_learn_over_several_batches():
    rng = np.random.default_rng(0)
    labels, logits = rng.integers(0, 3, 50), rng.normal(size=(50, 3)).astype(np.float32)
    logits[:, 2] -= 5.0  # class 2 is never predicted: F1 0 for it, as scikit-learn counts it
    metric = metrics.single_label(3)[1]
    for start in range(0, 50, 16):
        metric.update_state(labels[start:start + 16], logits[start:start + 16])
    expected = f1_score(labels, logits.argmax(1), average="macro", zero_division=0)
    assert float(metric.result()) == pytest.approx(expected, abs=1e-6)


def test_distillation_loss_matches_hand_computed_value():
    train = config_lib.from_flat({"teacher": ".", "distill_alpha": 0.7, "distill_temperature": 2.0}).train
    logits = np.array([[1.0, -1.0], [0.2, 0.4]], np.float32)
    teacher = np.array([[0.3, 0.7], [0.9, 0.1]], np.float32)
    labels = np.array([0, 1])
    y_true = np.column_stack([labels, teacher]).astype(np.float32)

    def softmax(x):
        e = np.exp(x - x.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)
    soft_teacher, soft_student = softmax(np.log(teacher) / 2.0), softmax(logits / 2.0)
    kl = (soft_teacher * np.log(soft_teacher / soft_student)).sum(1)
    hard = -np.log(softmax(logits)[[0, 1], labels])
    expected = np.mean(0.7 * 4.0 * kl + 0.3 * hard)
    assert float(losses.build_training(train, 2)(y_true, logits)) == pytest.approx(expected, rel=1e-5)
    assert pipeline.labels_of(y_true).numpy().tolist() == [0, 1]


def test_the_best_epoch_by_the_monitored_metric_is_evaluated(tmp_path, small_config):
    # A constant, too-high learning rate makes the validation loss bounce: its best is not the last epoch.
    data = write_csv(tmp_path / "toy.csv", toy_rows(120, filler=6))
    result = training_run.train(small_config(data, epochs=8, lr=0.5, schedule="constant", warmup_ratio=0.0,
                                       monitor="val_loss", deterministic=True, skip_export=True))
    history, best = result.metrics["history"], result.metrics["best_checkpoint"]
    best_epoch = int(np.argmin(history["val_loss"])) + 1
    assert best["epoch"] == best_epoch < 8, history["val_loss"]
    assert result.metrics["evaluated_weights"] == "best"
    # The reported validation loss is the best epoch's, not the last one's.
    assert result.metrics["val"]["loss"] == pytest.approx(history["val_loss"][best_epoch - 1], rel=1e-3)
    assert result.metrics["val"]["loss"] < history["val_loss"][-1]
    # trained/ holds the evaluated (best) weights; the best checkpoint, a second copy, is gone.
    assert os.path.isfile(os.path.join(result.run_dir, "trained", "weights.index"))
    assert not os.path.exists(os.path.join(result.run_dir, "checkpoints"))


def test_progress_line_reports_examples_per_second(tmp_path, small_config, capsys):
    training_run.train(small_config(write_csv(tmp_path / "t.csv", toy_rows(40)), epochs=2, skip_export=True))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch 2/2")]
    rate = float(lines[-1].split(" train ex/s")[0].split()[-1])
    assert rate > 0 and "val_macro_f1" in lines[-1]


def _colour_rows(count: int, seed: int):
    """Texts with a sentiment word and a colour word; the label is the sentiment, while the
    teacher is trained to read the colour, so the two disagree on half the texts."""
    rng, rows = random.Random(seed), []
    for i in range(count):
        sentiment, colour = ("pos", "neg")[i % 2], rng.choice(["red", "blue"])
        words = rng.sample(FILLER, 3) + [rng.choice(POSITIVE if sentiment == "pos" else NEGATIVE), colour]
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "label": sentiment, "colour": "pos" if colour == "red" else "neg"})
    return rows


@pytest.mark.slow  # three trainings (~45 s); the quick loop keeps the loss (hand-computed) and the teacher refusal
def test_a_distilled_student_follows_its_teacher(tmp_path, small_config):
    rows = _colour_rows(240, seed=1)
    teacher_data = write_csv(tmp_path / "teacher.csv", [{"text": r["text"], "label": r["colour"]} for r in rows])
    student_data = write_csv(tmp_path / "student.csv", rows)
    teacher = training_run.train(small_config(teacher_data, out=str(tmp_path / "teacher"), epochs=6))
    assert teacher.metrics["test"]["accuracy"] > 0.95  # the teacher learned the colour rule

    def agreement(run):
        predictions = __import__("pandas").read_csv(os.path.join(run.run_dir, "predictions.csv"))
        colour = {r["text"]: r["colour"] for r in rows}
        return float(np.mean([colour[t] == p for t, p in zip(predictions["text"], predictions["predicted"])]))
    plain = training_run.train(small_config(student_data, out=str(tmp_path / "plain"), epochs=6, skip_export=True))
    distilled = training_run.train(small_config(student_data, out=str(tmp_path / "distilled"), epochs=6,
                                          skip_export=True, teacher=teacher.run_dir, distill_alpha=0.9,
                                          distill_temperature=2.0))
    assert plain.metrics["test"]["accuracy"] > 0.9  # without a teacher: the sentiment labels
    assert agreement(distilled) > 0.85 > 0.65 > agreement(plain)
    saved = json.load(open(os.path.join(distilled.run_dir, "config.json")))
    assert saved["train"]["teacher"] == teacher.run_dir


def test_teacher_with_other_classes_is_refused(tmp_path, small_config):
    teacher = training_run.train(small_config(write_csv(tmp_path / "a.csv", toy_rows(60)), out=str(tmp_path / "t"),
                                        epochs=1))
    other = write_csv(tmp_path / "b.csv", toy_rows(60, classes=("x", "y")))
    with pytest.raises(ValueError, match="differ from the data's"):
        training_run.train(small_config(other, out=str(tmp_path / "s"), teacher=teacher.run_dir, skip_export=True))
    assert not os.path.exists(tmp_path / "s") and not os.path.exists(tmp_path / "s.partial")
