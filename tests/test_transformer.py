"""Fine-tuning a locally built TF Hub encoder through the real hub.KerasLayer path."""
import os

import numpy as np
import pytest

from conftest import build_model
from tfclf import choices
from tfclf.jobs import training_run
from tfclf.models import tfhub as encoders, transformer
from tfclf._backend import tf


@pytest.mark.slow
# The packed native path learns here (cls pooling, dense head, fine-tuned; the toy's short texts fill packed rows, so
# "auto" packs them and builds the encoder natively: asserted below) and its unpacked export is checked. The other
# values learn in runs that train anyway (one run per value, not per combination; about 30 CPU-s a run): pooled
# pooling and the mlp head packed in test_packing's streamed run, mean pooling through the hub.KerasLayer path in
# test_savedmodel_encoder_... below, trained on windows in test_long_text's multi-label chunk run (mean pooling on
# packed rows scores as unpacked: test_packing's test_packed_scoring_agrees_...[mean]). The frozen encoder:
# test_a_frozen_encoder_trains_only_the_head_on_packed_rows below (a frozen run learnt the toy past 0.75 with
# 20 epochs, 39 CPU-s: a dense head on fixed features, the same fit as the fine-tuned runs).
def test_tiny_encoder_learns_separable_toy_set(toy_path, tiny_hub, small_config, capsys):
    config = small_config(toy_path, encoder="bert_small", encoder_handle=tiny_hub["encoder"],
                          preprocess_handle=tiny_hub["preprocess"], pooling="cls", head="dense", encoder_build="auto",
                          epochs=8, lr=2e-3, batch_size=16,
                          restore_best=False)  # the last epoch: no selection on 24 texts
    result = training_run.train(config)
    assert "packing the texts of each batch into rows of" in capsys.readouterr().out  # the native build, packed
    assert result.metrics["test"]["accuracy"] >= 0.85, result.metrics["test"]  # chance is 0.5
    assert result.metrics["seq_len"] <= 32
    assert result.metrics["precision"] == {"policy": "float32", "graph_rewrite": "none"}
    from test_export import _check_export_matches_run  # trained packed, exported one text per row: the same test
    _check_export_matches_run(result)  # probabilities, without tfclf (was test_packing's in-memory packed run)


@pytest.mark.slow  # a fit on packed rows (6-11 CPU-s); the quick loop keeps test_frozen_encoder_weights_do_not_change
def test_a_frozen_encoder_trains_only_the_head_on_packed_rows(tiny_hub):
    """--freeze-encoder on the packed native path (what `auto` builds for short texts): the model a run builds
    (family.build_packed) fitted on packed rows moves its mlp head and none of the encoder's weights."""
    from tfclf import config as config_lib
    from tfclf.tasks import kinds
    from tfclf.training import fit as training
    config = config_lib.from_flat({"encoder": "bert_small", "encoder_handle": tiny_hub["encoder"],
                                   "preprocess_handle": tiny_hub["preprocess"], "pooling": "pooled", "head": "mlp",
                                   "head_units": 16, "freeze_encoder": True, "lr": 3e-2, "warmup_ratio": 0.0})
    model = transformer.HubTransformer("bert_small").build_packed(config.model, config.train, 2, 16, [])
    objective = kinds.named("single_label").objective(config.train, 2, np.array([0, 1]))
    training.compile_model(model, config.train, config.train.lr, 10, objective)
    pipeline = transformer.TextEncoderPipeline(tiny_hub["preprocess"])
    batches = tf.data.Dataset.from_tensor_slices((["great film", "awful story"] * 4, [1, 0] * 4)).batch(8).map(
        pipeline.pack_fn(16, 32))  # as training feeds it: one text batch -> packed rows, a label per text
    packed, _ = next(iter(batches))
    assert packed["input_word_ids"].shape[0] < 8  # several texts per row
    encoder = model.classifier.get_layer("encoder")
    assert encoder.weights and not encoder.trainable_weights
    encoder_before = [v.numpy().copy() for v in encoder.weights]
    head_before = [model.classifier.get_layer(name).kernel.numpy().copy() for name in ("mlp_hidden", "logits")]
    model.fit(batches, epochs=3, verbose=0)
    assert all((b == v.numpy()).all() for b, v in zip(encoder_before, encoder.weights))
    assert all(np.abs(b - model.classifier.get_layer(name).kernel.numpy()).max() > 1e-4
               for b, name in zip(head_before, ("mlp_hidden", "logits")))


@pytest.mark.slow
def test_savedmodel_encoder_fine_tunes_learns_and_its_export_matches_in_a_tensorflow_only_process(
        toy_path, tiny_hub, small_config, capsys):
    """The TF Hub SavedModel through hub.KerasLayer (--encoder-build savedmodel: never packed), fine-tuned past
    the same bar, and its raw-string export scoring every test text (and an empty and a very long one) as the run
    did, in a process without tfclf or tensorflow_hub (this was test_export's transformer test)."""
    from test_export import _check_export_matches_run
    config = small_config(toy_path, encoder="bert_small", encoder_handle=tiny_hub["encoder"],
                          preprocess_handle=tiny_hub["preprocess"], pooling="mean", head="dense",
                          encoder_build="savedmodel", epochs=8, lr=2e-3, batch_size=16, restore_best=False)
    result = training_run.train(config)
    assert "packing" not in capsys.readouterr().out
    assert result.metrics["test"]["accuracy"] >= 0.85, result.metrics["test"]
    assert result.metrics["precision"] == {"policy": "float32", "graph_rewrite": "none"}
    _check_export_matches_run(result)


@pytest.mark.parametrize("native", [False, True])
def test_frozen_encoder_weights_do_not_change(native, tiny_hub):
    from tfclf import config as config_lib
    model_config = config_lib.from_flat({"encoder": "bert_small", "freeze_encoder": True}).model
    model = transformer.build_classifier(model_config, 2, tiny_hub["encoder"], native=native)
    encoder = model.get_layer("encoder")
    assert encoder.trainable_weights == [] and len(model.trainable_weights) == 2


def test_pipeline_pads_batches_to_their_longest_text(tiny_hub):
    pipeline = transformer.TextEncoderPipeline(tiny_hub["preprocess"])
    texts = tf.constant(["great", "the movie was a great film and it was really quite boring"])
    tokens, _ = pipeline.map_fn(64)(texts, tf.constant([0, 1]))
    assert tokens["input_word_ids"].shape == (2, 16)  # 14 tokens rounded up to 16, not 64
    assert tokens["input_mask"].numpy().sum(axis=1).tolist() == [3, 14]
    assert pipeline.lengths(["great", "the movie"]).tolist() == [3, 4]


def test_raw_text_model_equals_token_pipeline(tiny_hub):
    from tfclf import config as config_lib
    model_config = config_lib.from_flat({"encoder": "bert_small", "pooling": "mean"}).model
    classifier = transformer.build_classifier(model_config, 3, tiny_hub["encoder"])
    texts = ["great film", "boring story and really sad", "the"]
    pipeline = transformer.TextEncoderPipeline(tiny_hub["preprocess"])
    tokens, _ = pipeline.map_fn(32)(tf.constant(texts), tf.constant([0, 0, 0]))
    end_to_end = transformer.raw_text_model(classifier, config_lib.ModelConfig(preprocess_handle=tiny_hub["preprocess"]), 32)
    np.testing.assert_allclose(end_to_end(tf.constant(texts)).numpy(), classifier(tokens).numpy(), atol=1e-5)


def test_offline_hub_download_is_one_actionable_line(tmp_path, monkeypatch):
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path))
    with pytest.raises(ValueError) as error:
        encoders.resolve("http://127.0.0.1:9/tensorflow/bert_en_uncased_preprocess/3")
    message = str(error.value)
    assert message.startswith("cannot download TF Hub model http://127.0.0.1:9/") and "--encoder-handle DIR" in message
    assert "\n" not in message


def test_local_directory_that_is_not_a_saved_model_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="not a SavedModel directory"):
        encoders.resolve(str(tmp_path))


def test_table_pairs_each_encoder_with_its_preprocessor():
    table = choices.ENCODERS
    assert table["bert_small"]["encoder"].endswith("small_bert/bert_en_uncased_L-4_H-512_A-8/2")
    assert table["electra_base"]["preprocess"] == table["electra_small"]["preprocess"] == choices.UNCASED
    assert "albert_en_preprocess" in table["albert_base"]["preprocess"]
    assert table["bert_base_cased"]["preprocess"] == choices.CASED
    assert len([name for name in table if name.startswith("small_bert_")]) == 24


def test_hub_keras_layer_is_built_in_one_function():
    root = os.path.join(os.path.dirname(__file__), "..", "tfclf")
    calls = {os.path.relpath(os.path.join(folder, name), root): open(os.path.join(folder, name)).read().count(
        "hub.KerasLayer(") for folder, _, names in os.walk(root) for name in names if name.endswith(".py")}
    assert {name: count for name, count in calls.items() if count} == {os.path.join("models", "tfhub.py"): 1}


def test_discriminative_learning_rates_move_encoder_and_head_differently(tiny_hub, tmp_path):
    """With encoder lr 0-ish and a large head lr, the head changes and the encoder barely does."""
    from tfclf import config as config_lib
    from tfclf.tasks import kinds
    from tfclf.training import fit as training
    config = config_lib.from_flat({"encoder": "bert_small", "encoder_handle": tiny_hub["encoder"],
                                   "preprocess_handle": tiny_hub["preprocess"], "encoder_lr": 1e-9,
                                   "head_lr": 1e-2, "lr": 1e-3, "warmup_ratio": 0.0, "schedule": "constant"})
    model = build_model(config.model, config.train, 2, 16, [])
    objective = kinds.named("single_label").objective(config.train, 2, np.array([0, 1]))
    schedule = training.compile_model(model, config.train, config.train.lr, 10, objective)
    pipeline = transformer.TextEncoderPipeline(tiny_hub["preprocess"])
    tokens, labels = pipeline.map_fn(16)(tf.constant(["great film", "awful story"] * 4), tf.constant([1, 0] * 4))
    encoder_before = [v.numpy().copy() for v in model.get_layer("encoder").trainable_variables]
    head_before = model.get_layer("logits").kernel.numpy().copy()
    model.fit(tokens, labels, epochs=3, verbose=0)
    encoder_change = max(np.abs(b - v.numpy()).max()
                         for b, v in zip(encoder_before, model.get_layer("encoder").trainable_variables))
    head_change = np.abs(head_before - model.get_layer("logits").kernel.numpy()).max()
    assert encoder_change < 1e-6 < 1e-3 < head_change
    assert schedule.peak == pytest.approx(1e-2) and model.encoder_optimizer is not model.optimizer
