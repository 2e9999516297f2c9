"""Sequence packing: first-fit rows, block-diagonal masks, restarting positions, pooling per text, and
scoring that agrees with the unpacked classifier (the export's) on a tiny natively built encoder."""
import dataclasses

import numpy as np
import pytest

from conftest import toy_rows
from tfclf import config as config_lib
from tfclf._backend import tf
from tfclf.models import packing, transformer


def test_first_fit_puts_every_text_whole_in_a_row_without_overlap():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 40, 200)
    rows, offsets, count = packing.first_fit(lengths, 64)
    assert count < len(lengths) / 2  # short texts share rows
    assert count <= int(np.ceil(lengths.sum() / 64 * 1.25))  # and the rows are dense
    for row in range(count):
        inside = np.flatnonzero(rows == row)
        spans = sorted((offsets[i], offsets[i] + lengths[i]) for i in inside)
        assert spans[-1][1] <= 64 and all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))


def test_packed_inputs_mask_attention_per_text_and_restart_positions():
    tokens = tf.ragged.constant([[101, 5, 6, 102], [101, 7, 102], [101, 8, 9, 10, 11, 102]], dtype=tf.int32)
    packed = packing.pack_tokens(tokens, 8)
    words, segments = packed["input_word_ids"].numpy(), packed["segment_ids"].numpy()
    positions, starts = packed["position_ids"].numpy(), packed["text_starts"].numpy()
    assert words.shape == (2, 8)  # 6 + (4 + 3) tokens: two rows of 8
    for text, ids in enumerate(tokens.to_list()):
        where = np.flatnonzero(segments.reshape(-1) == text + 1)
        assert words.reshape(-1)[where].tolist() == ids and positions.reshape(-1)[where].tolist() == list(range(len(ids)))
        assert where[0] == starts[text] and words.reshape(-1)[starts[text]] == 101
    assert (words[segments == 0] == 0).all()
    mask = packing.attention_mask(packed["segment_ids"], tf.float32).numpy()
    for row in range(2):
        for i in range(8):
            for j in range(8):
                same = segments[row, i] == segments[row, j] and segments[row, j] > 0
                assert mask[row, i, j] == float(same)


def test_mean_and_cls_pooling_are_per_text():
    segments = tf.constant([[1, 1, 2, 2, 2, 0]])
    sequence = tf.reshape(tf.range(6, dtype=tf.float32), [1, 6, 1]) * tf.ones([1, 1, 2])
    inputs = {"segment_ids": segments, "text_starts": tf.constant([0, 2])}
    assert packing.pool_texts(sequence, inputs, "mean").numpy()[:, 0].tolist() == [0.5, 3.0]
    assert packing.pool_texts(sequence, inputs, "cls").numpy()[:, 0].tolist() == [0.0, 2.0]


def _model_config(tiny_hub, pooling):
    config = config_lib.from_flat({"encoder": "bert_small", "encoder_handle": tiny_hub["encoder"],
                                   "preprocess_handle": tiny_hub["preprocess"], "pooling": pooling,
                                   "pack_length": 48})
    return config.model


# cls is slow: pooled and mean run the same packed scoring, and test_mean_and_cls_pooling_are_per_text checks cls
# pooling per text quickly
@pytest.mark.parametrize("pooling", ["pooled", pytest.param("cls", marks=pytest.mark.slow), "mean"])
def test_packed_scoring_agrees_with_the_unpacked_classifier(tiny_hub, pooling):
    tf.keras.utils.set_random_seed(0)
    model_config = _model_config(tiny_hub, pooling)
    classifier = transformer.build_classifier(model_config, 3, tiny_hub["encoder"], native=True)
    packed_model = packing.PackedClassifier(classifier, pooling)
    texts = tf.constant([row["text"] for row in toy_rows(12, filler=2)])
    pipeline = transformer.TextEncoderPipeline(tiny_hub["preprocess"])
    (unpacked_inputs,) = pipeline.map_fn(24)(texts)
    (packed_inputs,) = pipeline.pack_fn(24, 48)(texts)
    assert packed_inputs["input_word_ids"].shape[0] < len(texts)  # several texts per row
    expected = classifier(unpacked_inputs, training=False).numpy()
    got = packed_model(packed_inputs, training=False).numpy()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert np.abs(expected).max() > 1e-3  # not trivially equal


def test_auto_packs_short_texts_of_an_imported_encoder_only(tiny_hub):
    family = transformer.HubTransformer("bert_small")
    model_config, train = _model_config(tiny_hub, "pooled"), config_lib.TrainConfig()
    assert family.packs(model_config, train, np.full(10, 12), 32)
    assert not family.packs(model_config, train, np.full(10, 30), 32)  # a row of 48 holds one text of 30
    assert not family.packs(dataclasses.replace(model_config, pack="off"), train, np.full(10, 12), 32)
    assert not family.packs(dataclasses.replace(model_config, encoder_build="savedmodel"), train, np.full(10, 12), 32)


@pytest.mark.slow
# In memory ("off") was a run of its own here; test_transformer's packed cls run now checks its unpacked export.
# Pooled pooling and the mlp head: this is the run in which they learn packed (test_transformer's learning test).
@pytest.mark.parametrize("stream", ["on"])
def test_a_packed_run_learns_and_its_unpacked_export_reproduces_the_test_probabilities(stream, tmp_path, tiny_hub,
                                                                                     capsys):
    import pandas as pd
    from conftest import shrunk_config, write_csv
    from tfclf.jobs import training_run
    from tfclf.serving import export, predict
    data = write_csv(tmp_path / "toy.csv", toy_rows(400 if stream == "on" else 200, filler=2))  # as test_stream's
    config = shrunk_config(tmp_path, data, encoder="bert_small", encoder_handle=tiny_hub["encoder"],
                           preprocess_handle=tiny_hub["preprocess"], epochs=6 if stream == "on" else 4, lr=2e-3,
                           batch_size=16, pooling="pooled", head="mlp", head_units=32,
                           pack_length=32, stream=stream, restore_best=False)
    result = training_run.train(config)
    assert "packing the texts of each batch into rows of 32 tokens" in capsys.readouterr().out
    assert result.metrics["test"]["accuracy"] >= 0.85, result.metrics["test"]
    # Streamed: the hash split, tokenized per batch inside tf.data (was also test_stream's transformer run).
    assert result.metrics["split_rule"] == ("hash" if stream == "on" else "stratified")
    predictions = pd.read_csv(f"{result.run_dir}/predictions.csv", keep_default_na=False)
    fresh = predict.predict(export.load(result.export_path), predictions["text"].tolist())["probabilities"]
    np.testing.assert_allclose(fresh, predictions[["p_neg", "p_pos"]].to_numpy(), atol=1e-5)
