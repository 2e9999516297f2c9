"""Multi-label classification end to end: label sets read three ways, iterative stratification, sigmoid loss
and metrics (checked against hand computations and scikit-learn), per-label thresholds, a bag-of-words run
that learns a separable toy, its export, predict, evaluate, a grid on a multi-label metric, and a KerasHub run
killed mid-epoch that resumes, learns and exports (the tiny TF Hub transformer on label sets: test_long_text)."""
import json
import os
import random

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn import metrics as sk_metrics

from conftest import FILLER, tensorflow_only_predictions, write_csv, write_jsonl
from tfclf import config as config_lib, evaluate, grid, predict as predict_cli
from tfclf.jobs import training_run
from tfclf.data import readers, splits as splits_lib
from tfclf.evaluation import multilabel
from tfclf.tasks import multi_label

WORDS = {"sports": "goal match team score league coach".split(),
         "politics": "vote election senate policy minister party".split(),
         "tech": "software chip network robot code laptop".split()}
COMBINATIONS = [("sports",), ("politics",), ("tech",), ("politics", "sports"), ("politics", "tech"),
                ("sports", "tech"), ()]


def label_rows(count: int = 140, seed: int = 0):
    """Texts whose labels are exactly the topics whose words they hold (0, 1 or 2 topics), plus filler."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        labels = COMBINATIONS[i % len(COMBINATIONS)]
        words = rng.sample(FILLER, 2) + [word for label in labels for word in rng.sample(WORDS[label], 2)]
        rng.shuffle(words)
        rows.append({"text": " ".join(words) + f" {i}", "label": list(labels)})
    return rows


def _config(tmp_path, data, **overrides):
    values = {"data": data, "encoder": "bow", "out": str(tmp_path / "run"), "epochs": 10, "batch_size": 8,
              "embedding_dim": 16, "vocab_size": 300, "lr": 0.05, "export_dir": str(tmp_path / "saved_models"),
              **overrides}
    return config_lib.from_flat(values)


# --- data ---

def test_three_input_forms_read_the_same_label_sets(tmp_path):
    rows = label_rows(14)
    jsonl = write_jsonl(tmp_path / "d.jsonl", rows)
    separated = write_csv(tmp_path / "d.csv", [{"text": r["text"], "label": "|".join(r["label"])} for r in rows])
    columns = write_csv(tmp_path / "c.csv", [{"text": r["text"], **{k: int(k in r["label"]) for k in WORDS}}
                                              for r in rows], columns=("text", *WORDS))
    from_lists, _ = readers.read(jsonl, ("text",), "label")
    from_separator, _ = readers.read(separated, ("text",), "label", label_separator="|")
    from_columns, _ = readers.read(columns, ("text",), "label", label_columns=tuple(sorted(WORDS)))
    expected = [tuple(sorted(r["label"])) for r in rows]
    assert [tuple(sorted(s)) for s in from_lists["labels"]] == expected
    assert list(from_columns["labels"]) == expected  # 0/1 columns: in --label-columns order (sorted here)
    assert [tuple(sorted(s)) for s in from_separator["labels"][:6]] == expected[:6]
    assert from_lists["labels"][6] == () and from_columns["labels"][6] == ()  # [] and all-0: no label, valid
    assert pd.isna(from_separator["labels"][6])  # an empty cell is a missing label, as in single-label files


def test_iterative_stratification_keeps_every_label_in_every_split():
    rows = label_rows(140) + [{"text": f"rare robot chip {i}", "label": ["rare", "tech"]} for i in range(4)]
    table = pd.DataFrame({"text": [r["text"] for r in rows], "label": ["|".join(r["label"]) for r in rows],
                          "labels": [tuple(r["label"]) for r in rows], "row": [f"line {i}" for i in range(len(rows))]})
    splits = splits_lib.split(table, config_lib.DataConfig(data="sms_spam"), seed=3)
    assert splits.multi_label and splits.class_names == ["politics", "rare", "sports", "tech"]
    counts = splits.summary["class_counts"]
    for name in ("train", "val", "test"):
        assert all(counts[name][label] >= 1 for label in splits.class_names), counts
    assert counts["train"]["rare"] >= 2  # 4 texts: 70/15/15 as close as it gets
    for label in ("politics", "sports", "tech"):  # each label's 70/15/15 within one text
        total = sum(counts[name][label] for name in counts)
        assert abs(counts["train"][label] - 0.7 * total) <= 1.5, (label, counts)
    assert splits.targets("train").shape == (len(splits.train), 4)
    assert set(splits.train["text"]).isdisjoint(splits.test["text"])


@pytest.mark.parametrize("setup, message", [
    ({"label_columns": "sports,nope"}, "--label-columns names 'nope', which is not a column"),
    ({"label_columns": "sports,tech", "bad": True}, "column 'tech' holds '2'; --label-columns need 0 or 1"),
    ({"label_separator": "|", "rare": 2}, "label 'rare' occurs in 2 text(s) of the data; every label needs at least 3"),
    ({"label_separator": "|", "teacher": True}, "--teacher: distillation is for single-label"),
    ({"label_separator": "|", "monitor": "val_accuracy"}, "--monitor val_accuracy: not a multi-label metric"),
    ({"monitor": "val_hamming_loss"}, "--monitor val_hamming_loss: a multi-label metric, and the data is single-label"),
])
def test_bad_multi_label_inputs_fail_in_one_line(tmp_path, setup, message):
    rows = [{"text": r["text"], "label": "|".join(r["label"]) or "none",
             **{k: int(k in r["label"]) for k in WORDS}} for r in label_rows(70)]
    if setup.get("bad"):
        rows[5]["tech"] = 2
    rows += [{"text": f"rare thing {i}", "label": "rare|tech", "tech": 1} for i in range(setup.get("rare", 0))]
    data = write_csv(tmp_path / "d.csv", rows, columns=("text", "label", *WORDS))
    flags = {key: value for key, value in setup.items() if key not in ("bad", "rare")}
    if flags.pop("teacher", False):
        flags["teacher"] = str(tmp_path)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("|", r"\|")) as error:
        training_run.train(_config(tmp_path, data, epochs=1, **flags))
    assert "\n" not in str(error.value) and not os.path.exists(tmp_path / "run")


def test_separator_with_class_folders_is_refused(tmp_path):
    (tmp_path / "folders" / "a").mkdir(parents=True)
    with pytest.raises(ValueError, match="class folders, which are single-label"):
        _config(tmp_path, str(tmp_path / "folders"), label_separator="|")


# --- loss, metrics, thresholds ---

def test_sigmoid_loss_matches_a_hand_computation():
    from tfclf.training import losses
    logits, targets = np.array([[2.0, -1.0, 0.5]]), np.array([[1.0, 0.0, 1.0]])
    weights = np.array([[1.0, 3.0], [0.5, 1.0], [1.0, 1.0]])  # (negative, positive) per label
    p = 1 / (1 + np.exp(-logits[0]))
    terms = [-3.0 * np.log(p[0]), -0.5 * np.log(1 - p[1]), -np.log(p[2])]
    loss = losses.SigmoidLoss(weights).call(targets, logits).numpy()
    np.testing.assert_allclose(loss, [np.mean(terms)], rtol=1e-5)
    focal = losses.SigmoidLoss(np.ones((3, 2)), gamma=2.0, alpha=0.25).call(targets, logits).numpy()
    p_t, alpha_t = np.array([p[0], 1 - p[1], p[2]]), np.array([0.25, 0.75, 0.25])
    np.testing.assert_allclose(focal, [np.mean(alpha_t * (1 - p_t) ** 2 * -np.log(p_t))], rtol=1e-5)
    from tfclf.training import fit
    balanced = fit.label_weights(np.array([[1, 0], [0, 0], [0, 0], [0, 1]]), "balanced")
    np.testing.assert_allclose(balanced, [[4 / 6, 2.0], [4 / 6, 2.0]])  # a rare label's positives weigh more


def test_streaming_and_report_metrics_match_scikit_learn():
    from tfclf.training import metrics as keras_metrics
    rng = np.random.default_rng(0)
    targets = (rng.random((50, 4)) < 0.3).astype(np.float32)
    targets[:5] = 0.0  # texts without labels
    logits = rng.normal(size=(50, 4)).astype(np.float32) + 2 * (targets - 0.5)
    predicted = (logits >= 0).astype(int)
    expected = {"micro_f1": sk_metrics.f1_score(targets, predicted, average="micro"),
                "macro_f1": sk_metrics.f1_score(targets, predicted, average="macro"),
                "samples_f1": sk_metrics.f1_score(targets, predicted, average="samples", zero_division=1),
                "subset_accuracy": sk_metrics.accuracy_score(targets, predicted),
                "hamming_loss": sk_metrics.hamming_loss(targets, predicted)}
    streamed = {metric.name: metric for metric in keras_metrics.multi_label(4)}
    assert set(streamed) == set(expected)
    for kind, value in expected.items():
        metric = streamed[kind]
        for start in (0, 20, 40):  # streamed over batches
            metric.update_state(targets[start:start + 20], logits[start:start + 20])
        assert metric.result().numpy() == pytest.approx(value, abs=1e-6), kind
    report = multi_label.metrics(targets, None, predicted, list("abcd"), loss=0.0)
    assert {kind: report[kind] for kind in expected} == pytest.approx(expected)
    row = report["per_class"]["a"]
    assert row["tp"] + row["fn"] == row["support"] == int(targets[:, 0].sum())
    assert row["tp"] + row["fp"] + row["fn"] + row["tn"] == 50


def test_a_threshold_per_label_is_chosen_on_validation():
    rng = np.random.default_rng(1)
    targets = np.zeros((60, 3), dtype=int)
    targets[:30, 0] = 1
    targets[::3, 1] = 1                           # label 1: positives score around 0.3, negatives around 0.1
    scores = np.stack([np.where(targets[:, 0], 0.8, 0.2), np.where(targets[:, 1], 0.3, 0.1),
                       np.full(60, 0.01)], axis=1) + rng.uniform(-0.02, 0.02, (60, 3))
    logits = np.log(np.clip(scores, 1e-4, 1)) - np.log(np.clip(1 - scores, 1e-4, 1))
    config = config_lib.DecisionConfig(calibration="none")
    decision = multilabel.MultiLabelDecision.fit(config, logits, targets, ["a", "b", "c"])
    assert 0.3 < decision.thresholds[0] < 0.7 and 0.1 < decision.thresholds[1] < 0.3
    assert decision.thresholds[2] == multilabel.DEFAULT_THRESHOLD  # no validation positive: 0.5
    assert (decision.predict(decision.probabilities(logits))[:, :2] == targets[:, :2]).all()
    targets[0, 2] = 1  # one positive among scores of 0.01: F1's best threshold would be ~0.01, the floor holds
    floored = multilabel.MultiLabelDecision.fit(config, logits, targets, ["a", "b", "c"])
    assert floored.thresholds[2] == multilabel.MIN_THRESHOLD
    fixed = multilabel.MultiLabelDecision.fit(config_lib.DecisionConfig(calibration="none", threshold="0.4"),
                                              logits, targets, ["a", "b", "c"])
    assert fixed.thresholds == (0.4, 0.4, 0.4) and fixed.mode == "fixed"


# --- end to end ---

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One bag-of-words run on the JSONL toy (label lists): the run, its export and the data."""
    tmp_path = tmp_path_factory.mktemp("multilabel")
    data = write_jsonl(tmp_path / "toy.jsonl", label_rows(210))
    result = training_run.train(_config(tmp_path, data, monitor="val_micro_f1", class_weight="balanced"))
    return result, tmp_path


def test_bow_learns_a_separable_multi_label_toy(trained):
    result, _ = trained
    test = result.metrics["test"]
    assert test["micro_f1"] > 0.85 and test["samples_f1"] > 0.85 and test["hamming_loss"] < 0.12
    assert result.metrics["best_checkpoint"]["monitor"] == "val_micro_f1"
    assert set(result.metrics["decision"]["thresholds"]) == set(WORDS)
    assert all(multilabel.MIN_THRESHOLD <= t < 1 for t in result.metrics["decision"]["thresholds"].values())
    report = open(os.path.join(result.run_dir, "report.txt")).read()
    assert "subset accuracy" in report and "TP" in report and "samples-F1" in open(
        os.path.join(result.run_dir, "report.html")).read()


def test_export_reproduces_the_run_and_serves_label_sets(trained):
    result, tmp_path = trained
    predictions = pd.read_csv(os.path.join(result.run_dir, "predictions.csv"), keep_default_na=False)
    texts = predictions["text"].tolist() + ["", "goal match vote election"]
    fresh = tensorflow_only_predictions(result.export_path, texts)
    assert fresh["imported"] == []
    expected = predictions[[f"p_{name}" for name in sorted(WORDS)]].to_numpy()
    np.testing.assert_allclose(np.array(fresh["p"])[:len(expected)], expected, atol=1e-5)
    assert fresh["name"][:len(expected)] == predictions["predicted"].tolist()
    assert fresh["name"][-1] == "politics|sports"
    thresholds = json.load(open(os.path.join(result.export_path, "assets.extra", "calibration.json")))["thresholds"]
    mask = np.array(fresh["mask"])
    assert (mask == (np.array(fresh["p"]) >= np.array([thresholds[n] for n in sorted(WORDS)]) - 1e-7)).all()


def test_predict_and_evaluate_clis_on_label_sets(trained, capsys):
    result, tmp_path = trained
    capsys.readouterr()
    assert predict_cli.main(["--model", result.export_path, "team coach goal 1", "robot code vote senate 2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split("\t")[0] == "sports" and lines[1].split("\t")[0] == "politics|tech"
    new = write_csv(tmp_path / "new.csv", [{"text": r["text"], "tags": ";".join(r["label"]) or "x"}
                                           for r in label_rows(42, seed=5) if r["label"]], columns=("text", "tags"))
    out = tmp_path / "ev"
    assert evaluate.main(["--model", result.export_path, "--data", new, "--label-column", "tags",
                          "--label-separator", ";", "--out", str(out)]) == 0
    metrics = json.load(open(out / "metrics.json"))
    assert metrics["num_test"] == 36 and metrics["test"]["micro_f1"] > 0.8
    assert metrics["decision"]["thresholds"] == result.metrics["decision"]["thresholds"]
    assert (out / "report.html").exists() and (out / "predictions.csv").exists()
    assert "micro-F1" in capsys.readouterr().out
    unknown = write_csv(tmp_path / "unknown.csv", [{"text": "a b", "tags": "sports;cooking"}], columns=("text", "tags"))
    assert evaluate.main(["--model", result.export_path, "--data", unknown, "--label-column", "tags",
                          "--label-separator", ";", "--out", str(tmp_path / "e2")]) == 2
    assert "labels ['cooking'] are not among the model's labels" in capsys.readouterr().err


def test_study_tables_sort_lower_is_better_multi_label_metrics_first(tmp_path):
    from tfclf.studies import study
    spec = study.parse({"base": {"encoder": "bow", "label_separator": "|", "monitor": "val_hamming_loss"},
                        "grid": {"lr": [0.1, 0.01, 0.001]}, "select": "val.hamming_loss"}, "s.yaml")
    trials = study.expand(spec, str(tmp_path))
    entries = {}
    for trial, hamming in zip(trials, (0.2, 0.05, 0.1)):
        metrics = {split: {"accuracy": 0.5, "macro_f1": 0.5, "weighted_f1": 0.5, "loss": 0.3, "micro_f1": 0.6,
                           "samples_f1": 0.6, "subset_accuracy": 0.4, "hamming_loss": hamming} for split in ("val", "test")}
        entries[trial.digest] = study.entry_from_metrics(trial, metrics)
    frame = study.table(spec, trials, entries)
    assert frame["val_hamming_loss"].tolist() == [0.05, 0.1, 0.2] and frame["lr"].iloc[0] == "0.01"
    assert not spec.higher_is_better


@pytest.mark.slow
def test_a_grid_selects_on_a_lower_is_better_multi_label_metric(tmp_path, trials_in_process):
    data = write_csv(tmp_path / "toy.csv", [{"text": r["text"], "label": "|".join(r["label"]) or "-"}
                                             for r in label_rows(70) if r["label"]])
    spec = {"base": {"data": data, "encoder": "bow", "epochs": 2, "batch_size": 8, "embedding_dim": 8,
                     "vocab_size": 200, "label_separator": "|", "monitor": "val_hamming_loss"},
            "grid": {"lr": [0.05, 0.0001]}, "select": "val.hamming_loss", "seeds": [42]}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert grid.main([str(path), "--out", str(tmp_path / "grid")]) == 0
    table = pd.read_csv(tmp_path / "grid" / "results.csv")
    assert list(table["status"]) == ["ok", "ok"]
    assert table["val_hamming_loss"].iloc[0] <= table["val_hamming_loss"].iloc[1]  # lower is better: first
    assert "val_micro_f1" in table.columns


# The tiny transformer's multi-label run and export: test_long_text's
# test_multi_label_transformer_chunks_train_on_windows_and_the_export_aggregates_before_the_sigmoid (one run for three).


@pytest.mark.slow
def test_a_kerashub_multi_label_run_killed_mid_epoch_resumes_from_its_keras_3_backup_learns_and_exports(
        tmp_path, capsys):
    """The KerasHub (Keras 3) family on label sets, one run for what two runs tested (test_kerashub's killed run and
    a multi-label run of its own): killed at the first batch of its second epoch, the same command resumes from the
    Keras 3 backup, learns the toy, selects on val_samples_f1 and exports what it evaluated (a process without
    tfclf scores every test text as the run did). The kill is the run's files as they are on disk there, copied
    before this process stops the run (a SIGKILLed process writes nothing more: test_faults' kill points do the
    same); real mid-epoch SIGKILLs of a process: test_training, test_stream, test_budget."""
    import contextlib
    import kerashub_fixtures
    from conftest import killed_at
    from tfclf import run
    preset = kerashub_fixtures.write_tiny_preset(str(tmp_path / "preset"),
                                                 FILLER + [w for words in WORDS.values() for w in words])
    args = ["--data", write_jsonl(tmp_path / "toy.jsonl", label_rows(140)), "--encoder", f"kerashub:{preset}",
            "--epochs", "4", "--lr", "5e-3", "--batch-size", "16", "--pooling", "mean", "--monitor", "val_samples_f1",
            "--out", "run", "--export-dir", "models"]
    work, killed = tmp_path / "work", tmp_path / "killed"
    work.mkdir()
    with contextlib.chdir(work), killed_at("epoch_mid", work, killed):
        run.main(args)
    assert not (killed / "run").exists() and (killed / "run.partial").is_dir()
    capsys.readouterr()
    with contextlib.chdir(killed):
        assert run.main(args) == 0  # the same command again
    rerun = capsys.readouterr().out
    assert "resumes from its last backup" in rerun
    assert "epoch 1/4" not in rerun and "epoch 2/4" in rerun
    metrics = json.loads((killed / "run" / "metrics.json").read_text())
    assert len(metrics["history"]["loss"]) == 4
    assert metrics["best_checkpoint"]["monitor"] == "val_samples_f1"
    assert metrics["test"]["micro_f1"] > 0.5, metrics["test"]
    predictions = pd.read_csv(killed / "run" / "predictions.csv", keep_default_na=False)
    fresh = tensorflow_only_predictions(os.path.join(killed, metrics["export_path"]), predictions["text"].tolist())
    np.testing.assert_allclose(np.array(fresh["p"]), predictions[[f"p_{n}" for n in sorted(WORDS)]].to_numpy(),
                               atol=1e-5)
    assert fresh["name"] == predictions["predicted"].tolist()
