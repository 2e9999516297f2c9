"""Predictions to trust: calibration, decision thresholds, explanations and the report page."""
import html.parser
import json
import os
import shutil
import subprocess
import tempfile

import numpy as np
import pandas as pd
import pytest

from conftest import FILLER, NEGATIVE, POSITIVE, toy_rows, write_csv
from tfclf import evaluate, predict as predict_cli, run
from tfclf.jobs import training_run
from tfclf.evaluation import calibration, explain, thresholds
from tfclf.serving import export

CHROMIUM = "/usr/bin/chromium"


# --- the math, on known numbers ---

def test_ece_and_brier_on_hand_computed_values():
    probabilities = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.3, 0.7]])
    labels = np.array([0, 1, 0, 1])
    # Bins: 0.9 holds two texts (accuracy 0.5, confidence 0.9), 0.6 one (1 vs 0.6), 0.7 one (1 vs 0.7).
    assert calibration.expected_calibration_error(probabilities, labels) == pytest.approx(
        0.5 * 0.4 + 0.25 * 0.4 + 0.25 * 0.3)
    assert calibration.brier_score(probabilities, labels) == pytest.approx((0.02 + 1.62 + 0.32 + 0.18) / 4)


def test_temperature_recovers_the_scale_of_overconfident_logits():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 2, size=(4000, 3))
    labels = np.array([rng.choice(3, p=p) for p in calibration.softmax(true_logits)])
    temperature = calibration.fit_temperature(4.0 * true_logits, labels)  # four times too sharp
    assert temperature == pytest.approx(4.0, rel=0.1)
    summary = calibration.summary(4.0 * true_logits, labels, temperature)
    assert summary["ece_after"] < summary["ece_before"] / 3 and summary["nll_after"] < summary["nll_before"]


def test_a_temperature_that_does_not_help_held_out_validation_texts_is_not_kept():
    """Calibrated logits: a T fitted on 300 validation texts is a little off 1 by chance; cross-validation on
    the validation split shows no held-out gain, so the decision serves T = 1 and says why."""
    from tfclf.config import DecisionConfig
    from tfclf.evaluation import decision as decision_lib
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 3, size=(300, 2))
    labels = np.array([rng.choice(2, p=p) for p in calibration.softmax(logits)])
    decision = decision_lib.Decision.fit(DecisionConfig(), logits, labels, ["ham", "spam"], [0, 1])
    chosen = decision.calibration
    assert chosen["fitted"] != pytest.approx(1.0, abs=1e-3)  # what was served before the rule
    assert decision.temperature == 1.0 and not chosen["kept"] and chosen["reason"].startswith("not kept (T = 1)")
    assert chosen["heldout"]["nll_after"] >= chosen["heldout"]["nll_before"] and chosen["folds"] == 5
    record = decision.report(logits, labels)
    assert record["calibration"]["fitted"] == chosen["fitted"] and record["test"]["ece_after"] == \
        record["test"]["ece_before"]
    # Four times too sharp: every fold's fit finds it, the held-out NLL drops, T is kept.
    sharp = decision_lib.Decision.fit(DecisionConfig(), 4.0 * logits, labels, ["ham", "spam"], [0, 1])
    assert sharp.calibration["kept"] and sharp.temperature == pytest.approx(4.0, rel=0.25)
    assert all(t > 2.5 for t in sharp.calibration["fold_temperatures"])
    # A held-out gain within its noise is not kept either (calibrated logits, seed 30: T = 0.81 lowers the
    # held-out NLL by 0.0027, less than its standard error 0.0062); "gain > 0" kept such T's.
    rng = np.random.default_rng(30)
    calm = rng.normal(0, 3, size=(300, 2))
    calm_labels = np.array([rng.choice(2, p=p) for p in calibration.softmax(calm)])
    within = calibration.choose_temperature(calm, calm_labels)
    assert 0 < within["heldout"]["nll_gain"] < within["heldout"]["nll_gain_se"] and not within["kept"]
    assert within["temperature"] == 1.0 and "not above its noise" in within["reason"]
    # Too few validation texts to cross-validate: T = 1, said.
    few = calibration.choose_temperature(4.0 * logits[:30], labels[:30])
    assert few["temperature"] == 1.0 and "too few" in few["reason"]


def test_the_multi_label_temperature_follows_the_same_rule():
    from tfclf.config import DecisionConfig
    from tfclf.evaluation import multilabel
    rng = np.random.default_rng(4)
    logits = rng.normal(0, 2, size=(300, 3))
    targets = (rng.random((300, 3)) < multilabel.sigmoid(logits)).astype(int)
    calibrated = multilabel.MultiLabelDecision.fit(DecisionConfig(), logits, targets, ["a", "b", "c"])
    assert calibrated.temperature == 1.0 and not calibrated.calibration["kept"]
    sharp = multilabel.MultiLabelDecision.fit(DecisionConfig(), 3.0 * logits, targets, ["a", "b", "c"])
    assert sharp.calibration["kept"] and sharp.temperature == pytest.approx(3.0, rel=0.25)


def test_threshold_targets_and_decisions():
    rng = np.random.default_rng(1)
    positives = rng.random(2000) < 0.1
    scores = np.clip(np.where(positives, 0.35, 0.1) + rng.normal(0, 0.08, 2000), 0, 1)  # positives rarely > 0.5
    best = thresholds.choose(scores, positives)
    assert best["f1"] > thresholds.point(scores, positives, 0.5)["f1"] + 0.3
    precise = thresholds.choose(scores, positives, target_precision=0.95)
    assert precise["precision"] >= 0.95 and precise["threshold"] > best["threshold"]
    assert thresholds.choose(scores, positives, target_recall=0.99)["recall"] >= 0.99
    assert not thresholds.choose(scores, positives, target_precision=1.01)["reached"]
    assert thresholds.decide(np.array([[0.7, 0.3], [0.8, 0.2]]), 0.25, 1).tolist() == [1, 0]


def test_occlusion_sends_every_variant_in_one_call_and_ranks_the_planted_word_first():
    calls = []

    def model(texts):
        calls.append(len(texts))
        score = np.array([3.0 * ("zebra" in t.split()) + 0.5 * ("free" in t.split()) for t in texts])
        return calibration.softmax(np.stack([np.zeros_like(score), score - 2.0], axis=1))
    texts = ["call free now zebra ok", "nothing here", ""]
    results = explain.occlusion(model, texts, top=3)
    assert calls == [1 + 5 + 1 + 2 + 1]  # each text and each of its words left out, in one call
    assert [word for word, _ in results[0]["words"]][:2] == ["zebra", "free"]
    assert results[0]["class_id"] == 1 and results[2]["words"] == []
    long = explain.occlusion(model, [" ".join(["w"] * 200 + ["zebra"])], max_units=10)[0]
    assert "zebra" in long["words"][0][0] and len(long["weights"]) == 201


# --- a hand-built model whose decision rests on one word, exported and explained ---

def _planted_word_model():
    """Strings -> logits [0, 6 [zebra] + [free] + [win] - 4]: 'zebra' alone decides the class."""
    from tfclf._backend import keras, tf

    def logits(text):
        words = tf.strings.split(text)
        count = lambda word: tf.reduce_sum(tf.cast(tf.ragged.map_flat_values(tf.equal, words, word), tf.float32),
                                           axis=1)
        score = 6.0 * count("zebra") + count("free") + count("win") - 4.0
        return tf.stack([tf.zeros_like(score), score], axis=1)
    text = keras.Input(shape=(), dtype=tf.string)
    return keras.Model(text, keras.layers.Lambda(logits)(text))


@pytest.fixture(scope="module")
def planted_export(tmp_path_factory):
    """The planted-word model exported with temperature 2 and the threshold p(spam) >= 0.2."""
    decision = {"temperature": 2.0, "threshold": 0.2, "positive_class": "spam", "positive_id": 1, "ece_after": 0.1}
    return export.export(_planted_word_model(), ["ham", "spam"], str(tmp_path_factory.mktemp("planted") / "m"), {},
                         decision)


def test_export_divides_by_the_temperature_and_applies_the_threshold_in_the_graph(planted_export, capsys):
    from tfclf._backend import tf
    assert export.read_extra(planted_export, export.CALIBRATION)["temperature"] == 2.0
    served = export.load(planted_export)(text=tf.constant(["zebra free", "free win", "hello"]))
    expected = calibration.softmax(np.array([[0, 3.0], [0, -2.0], [0, -4.0]]) / 2.0)
    np.testing.assert_allclose(served["probabilities"].numpy(), expected, atol=1e-6)
    # p(spam) = 0.82, 0.27, 0.12: argmax says spam, ham, ham; the threshold 0.2 says spam, spam, ham.
    assert served["class_id"].numpy().tolist() == [1, 1, 0]
    assert predict_cli.main(["--model", planted_export, "--explain", "win a free zebra today", "hello there"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("spam\t") and lines[1].strip().startswith("words: zebra +")
    assert lines[2].startswith("ham\t") and lines[3].strip().startswith("words: ")


def test_predict_explain_puts_the_planted_word_first_wherever_it_stands(planted_export, tmp_path):
    words = "win big prizes free entry text now".split()
    texts = [" ".join(words[:k] + ["zebra"] + words[k:]) for k in range(len(words) + 1)]
    source = write_csv(tmp_path / "in.csv", [{"text": t, "label": ""} for t in texts])
    assert predict_cli.main(["--model", planted_export, "--explain", "--input", source,
                             "--output", str(tmp_path / "o.csv")]) == 0
    scored = pd.read_csv(tmp_path / "o.csv")
    assert (scored["predicted"] == "spam").all()
    assert scored["explanation"].str.startswith("zebra +").all(), scored["explanation"].tolist()


# --- real runs ---

def _noisy_rows(count: int, flip: float, seed: int = 0):
    """Texts of one sentiment word, two filler words and a number, with a share of the labels flipped: a
    model that fits them is over-confident on new texts, and its decisions rest on the sentiment word."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        label = ("neg", "pos")[i % 2]
        words = [*rng.choice(FILLER, 2, replace=False), rng.choice(POSITIVE if label == "pos" else NEGATIVE)]
        rng.shuffle(words)
        flipped = rng.random() < flip
        rows.append({"text": " ".join(words) + f" {i}", "label": {"neg": "pos", "pos": "neg"}[label] if flipped
                     else label})
    return rows


@pytest.fixture(scope="module")
def overconfident_run(tmp_path_factory):
    """bow fitted hard (high rate, many epochs) to labels of which 15% are flipped; 180 validation texts, so that
    the cross-validated temperature's gain can stand out of its noise (on 90 it did not)."""
    from tfclf import config as config_lib
    root = tmp_path_factory.mktemp("overconfident")
    config = config_lib.from_flat({
        "data": write_csv(root / "t.csv", _noisy_rows(600, 0.15)), "encoder": "bow", "out": str(root / "run"),
        "epochs": 10, "batch_size": 16, "embedding_dim": 16, "vocab_size": 300, "lr": 0.03, "val_fraction": 0.3,
        "monitor": "val_loss", "restore_best": False, "threshold": "auto", "export_dir": str(root / "saved_models")})
    return training_run.train(config)


def test_temperature_scaling_lowers_the_ece_of_an_overconfident_model(overconfident_run, tmp_path):
    decision = overconfident_run.metrics["decision"]
    assert decision["temperature"] > 1.5  # fitted on validation: the probabilities were too sharp
    assert decision["calibration"]["kept"] and decision["calibration"]["heldout"]["nll_after"] < \
        decision["calibration"]["heldout"]["nll_before"]  # and it helped held-out validation folds
    assert decision["test"]["ece_after"] < decision["test"]["ece_before"]
    assert decision["test"]["nll_after"] < decision["test"]["nll_before"]
    stored = export.read_extra(overconfident_run.export_path, export.CALIBRATION)
    assert stored["temperature"] == decision["temperature"] and stored["test"]["ece_after"] == \
        decision["test"]["ece_after"]
    # The export serves the calibrated probabilities (test_export checks this in a fresh process too).
    from tfclf._backend import tf
    predictions = pd.read_csv(os.path.join(overconfident_run.run_dir, "predictions.csv"), keep_default_na=False)
    served = export.load(overconfident_run.export_path)(text=tf.constant(predictions["text"].tolist()))
    np.testing.assert_allclose(served["probabilities"].numpy(), predictions[["p_neg", "p_pos"]].to_numpy(),
                               atol=1e-5)


def test_the_report_explains_the_confidently_wrong_texts_as_the_export_does(overconfident_run):
    """The run explains with its in-memory model; `predict --explain` through the SavedModel must agree."""
    from tfclf.evaluation import text_report
    from tfclf.serving import predict
    text = open(os.path.join(overconfident_run.run_dir, "report.txt")).read()
    assert "calibration: temperature" in text and "kept: it lowered the NLL of 5 held-out folds by more" in text \
        and "fitted T = " in text
    in_report = [line.strip()[len("words: "):] for line in text.splitlines() if line.strip().startswith("words:")]
    predictions = pd.read_csv(os.path.join(overconfident_run.run_dir, "predictions.csv"), keep_default_na=False)
    wrong = text_report.confidently_wrong(predictions)
    assert len(in_report) == len(wrong) == 10  # flipped labels make confident mistakes
    serve = export.load(overconfident_run.export_path)
    through_export = explain.occlusion(lambda texts: predict.predict(serve, texts)["probabilities"],
                                       wrong["text"].tolist(), predicted=[("neg", "pos").index(name)
                                                                          for name in wrong["predicted"]])
    assert [explain.format_words(e) for e in through_export] == in_report


def _imbalanced_rows():
    rows = toy_rows(400, filler=1)
    return [row for i, row in enumerate(rows) if row["label"] == "neg" or i % 8 == 1]  # 200 neg, 25 pos


@pytest.fixture(scope="module")
def threshold_run(tmp_path_factory):
    """An under-trained bow on an imbalanced set: ranks well, but p(pos) stays below 0.5."""
    from tfclf import config as config_lib
    root = tmp_path_factory.mktemp("threshold")
    config = config_lib.from_flat({
        "data": write_csv(root / "t.csv", _imbalanced_rows()), "encoder": "bow", "out": str(root / "run"),
        "epochs": 2, "batch_size": 16, "embedding_dim": 8, "vocab_size": 300, "lr": 0.01,
        "threshold": "auto", "export_dir": str(root / "saved_models")})
    return training_run.train(config)


def test_the_chosen_threshold_beats_argmax_on_the_minority_class(threshold_run):
    metrics = threshold_run.metrics
    decision = metrics["decision"]
    assert decision["positive_class"] == "pos" and decision["threshold_mode"] == "best F1"
    at, argmax = decision["threshold_test"]["at_threshold"], decision["threshold_test"]["argmax"]
    assert at["f1"] > argmax["f1"] + 0.2, decision
    assert metrics["test"]["per_class"]["pos"]["f1"] == pytest.approx(at["f1"])
    assert metrics["test_argmax"]["per_class"]["pos"]["f1"] == pytest.approx(argmax["f1"])
    assert os.path.getsize(os.path.join(threshold_run.run_dir, "pr_curve.png")) > 0


def test_evaluate_uses_the_exported_threshold_and_reports_calibration(threshold_run, tmp_path):
    predictions = pd.read_csv(os.path.join(threshold_run.run_dir, "predictions.csv"), keep_default_na=False)
    source = write_csv(tmp_path / "test.csv", [{"text": t, "label": y} for t, y in
                                                zip(predictions["text"], predictions["true"])])
    assert evaluate.main(["--model", threshold_run.export_path, "--data", source, "--out", str(tmp_path / "ev")]) == 0
    evaluated = json.load(open(tmp_path / "ev" / "metrics.json"))
    assert evaluated["test"]["per_class"]["pos"]["f1"] == pytest.approx(
        threshold_run.metrics["test"]["per_class"]["pos"]["f1"])
    assert evaluated["decision"]["threshold"] == threshold_run.metrics["decision"]["threshold"]
    assert evaluated["decision"]["served"]["ece"] == pytest.approx(
        threshold_run.metrics["decision"]["test"]["ece_after"], abs=1e-4)
    scored = pd.read_csv(tmp_path / "ev" / "predictions.csv", keep_default_na=False)
    assert scored["predicted"].tolist() == predictions["predicted"].tolist()
    assert (tmp_path / "ev" / "report.html").stat().st_size > 0


@pytest.mark.parametrize("flags, message", [
    (["--threshold", "auto"], "--threshold auto: thresholds apply to binary tasks, and the data has 3 classes"),
    (["--threshold", "1.5"], "--threshold '1.5': give argmax or auto or a probability between 0 and 1"),
    (["--threshold", "auto", "--target-precision", "0.9", "--target-recall", "0.9"], "exclude each other"),
    (["--target-recall", "0.9"], "add --threshold auto"),
    (["--calibration", "platt"], "--calibration 'platt' is unknown; choose one of: temperature, none"),
    (["--positive-class", "spam"], "--positive-class 'spam' is not a class of the data; choose one of: neg, neutral"),
])
def test_impossible_decisions_are_one_line_before_any_run_directory(flags, message, tmp_path, capsys):
    data = write_csv(tmp_path / "t.csv", toy_rows(60, classes=("neg", "pos", "neutral")))
    out = tmp_path / "run"
    assert run.main(["--data", data, "--out", str(out), "--encoder", "bow", *flags]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tfclf: error: ") and message in lines[0], lines
    assert not out.exists() and not (tmp_path / "run.partial").exists()


# --- the report page ---

class _Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources, self.links, self.headings, self.text = [], [], [], []
        self._heading = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.sources += [attrs["src"]] if "src" in attrs else []
        self.links += [attrs["href"]] if "href" in attrs else []
        self._heading = tag == "h2"

    def handle_data(self, data):
        self.text.append(data)
        if self._heading:
            self.headings.append(data)
            self._heading = False


def test_report_page_is_self_contained_and_holds_every_section(overconfident_run):
    source = open(os.path.join(overconfident_run.run_dir, "report.html"), encoding="utf-8").read()
    page = _Page()
    page.feed(source)
    assert len(page.sources) == 6 and all(src.startswith("data:image/png;base64,") for src in page.sources)
    assert page.links == []  # nothing to fetch
    assert page.headings == ["Data", "Training", "Test metrics", "Confusion matrix (test)",
                             "Calibration and decision threshold", "Most confidently wrong texts, explained",
                             "Config"][:len(page.headings)] and len(page.headings) == 7
    text = " ".join(page.text)
    metrics = overconfident_run.metrics
    for value in (metrics["test"]["accuracy"], metrics["test"]["macro_f1"], metrics["decision"]["threshold"],
                  metrics["decision"]["temperature"], metrics["decision"]["test"]["ece_after"]):
        assert f"{value:.4f}" in text
    assert source.count('<div class="wrong">') == 10 and source.count(",0.80)\"") >= 10  # each text highlighted


def _chromium(url: str, *flags) -> subprocess.CompletedProcess:
    profile = tempfile.mkdtemp(prefix="tfclf-chromium-")
    try:
        return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                               "--no-first-run", "--disable-background-networking", "--disable-component-update",
                               "--disable-sync", f"--user-data-dir={profile}", *flags, url],
                              capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no {CHROMIUM}: install Debian's chromium package to "
                                                          "render the report page in a real browser")
def test_report_page_renders_in_headless_chromium(overconfident_run, tmp_path):
    url = "file://" + os.path.abspath(os.path.join(overconfident_run.run_dir, "report.html"))
    shot = tmp_path / "report.png"
    result = _chromium(url, f"--screenshot={shot}", "--window-size=1200,3000")
    assert result.returncode == 0 and shot.stat().st_size > 20000, result.stderr[-2000:]
    dom = _chromium(url, "--dump-dom", "--virtual-time-budget=2000")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-images="6/6"' in dom.stdout and 'data-errors=""' in dom.stdout, dom.stdout[:300]
    test = overconfident_run.metrics["test"]
    assert f"{test['accuracy']:.4f}" in dom.stdout and f"{test['macro_f1']:.4f}" in dom.stdout


def test_a_study_page_shows_the_table_plots_and_the_selected_setting(tmp_path):
    from tfclf.studies import results, study
    spec = study.parse({"base": {"data": write_csv(tmp_path / "t.csv", toy_rows(40)), "encoder": "bow"},
                        "grid": {"lr": [0.01, 0.1]}, "seeds": [42]}, "s.yaml")
    trials = study.expand(spec, str(tmp_path / "grid"))
    entries = {}
    for trial, value in zip(trials, (0.8, 0.9)):
        scores = {"accuracy": value, "macro_f1": value, "weighted_f1": value, "loss": 1 - value}
        entries[trial.digest] = {"trial": trial.digest, "setting": trial.setting, "params": trial.params,
                                 "seed": 42, "status": "ok", "error": "", "val": scores, "test": scores,
                                 "history": {"val_macro_f1": [value - 0.1, value]}}
    (tmp_path / "grid").mkdir()
    results.write_results(spec, trials, entries, str(tmp_path / "grid"))
    page = _Page()
    page.feed((tmp_path / "grid" / "report.html").read_text())
    text = " ".join(page.text)
    assert "Selected on validation: lr=0.1 seed 42: test macro_f1 0.9000" in text
    assert len(page.sources) == 2 and all(src.startswith("data:image/png") for src in page.sources)
