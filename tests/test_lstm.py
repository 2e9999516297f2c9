"""Recurrent family: learning, GloVe rows, pyramid shapes and masks, cuDNN-compatible settings, export."""
import numpy as np
import pytest

from conftest import toy_rows, write_csv, build_model
from tfclf.jobs import training_run
from tfclf.models import recurrent as lstm
from tfclf._backend import keras, tf


@pytest.mark.slow
# bilstm learns (past the same bar) and its export is checked in test_stream's
# test_token_families_train_on_a_stream_and_their_export_reproduces_the_run[bilstm]: the same model on a stream of
# shards, one run for what two runs tested (this file's bilstm case trained and exported it in memory).
@pytest.mark.parametrize("encoder, layers", [("lstm", 1), ("pyramid_lstm", 3), ("gru", 1)])
def test_recurrent_models_learn_separable_toy_set(encoder, layers, toy_path, small_config):
    config = small_config(toy_path, encoder=encoder, rnn_units=16, rnn_layers=layers, epochs=8, lr=1e-2,
                          batch_size=16, skip_export=True)
    result = training_run.train(config)
    assert result.metrics["test"]["accuracy"] >= 0.85  # chance: 0.5


def test_glove_vectors_land_in_the_right_rows_and_coverage_is_reported(tmp_path, small_config):
    path = write_csv(tmp_path / "t.csv", toy_rows(60))
    glove = tmp_path / "glove.txt"
    vectors = {"great": [1.0, 2.0, 3.0], "awful": [-1.0, -2.0, -3.0], "unseenword": [9.0, 9.0, 9.0]}
    glove.write_text("".join(f"{word} {' '.join(map(str, v))}\n" for word, v in vectors.items()))
    config = small_config(path, encoder="lstm", glove=str(glove), freeze_embeddings=True, rnn_units=8, epochs=1)
    from tfclf.data import splits as data
    splits = data.split(data.load(config.data)[0], config.data, 0)
    model = build_model(config.model, 2, 8, splits.train["text"])
    vocabulary = model.get_layer("vectorizer").get_vocabulary()
    matrix = model.get_layer("embedding").get_weights()[0]
    assert matrix.shape[1] == 3 and not model.get_layer("embedding").trainable
    np.testing.assert_array_equal(matrix[vocabulary.index("great")], [1, 2, 3])
    np.testing.assert_array_equal(matrix[vocabulary.index("awful")], [-1, -2, -3])
    np.testing.assert_array_equal(matrix[vocabulary.index("the")], [0, 0, 0])
    info = model.tfclf_info
    assert info["glove_dim"] == 3 and info["glove_vocabulary_coverage"] == pytest.approx(2 / (len(vocabulary) - 2))
    assert 0 < info["glove_token_coverage"] < 1


def test_bad_glove_line_is_a_clear_error(tmp_path):
    glove = tmp_path / "g.txt"
    glove.write_text("a 1 2 3\nb 1 2\n")
    with pytest.raises(ValueError, match="g.txt line 2: 2 values, expected 3"):
        lstm.read_glove(str(glove), ["", "[UNK]", "b"])


@pytest.mark.parametrize("steps", [7, 8])
def test_pair_concat_halves_time_for_odd_and_even_lengths(steps):
    values = tf.reshape(tf.range(2 * steps * 3, dtype=tf.float32), [2, steps, 3])
    mask = tf.sequence_mask([steps, 3], steps)
    layer = lstm.PairConcat()
    out, out_mask = layer(values, mask=mask), layer.compute_mask(values, mask)
    assert out.shape == (2, (steps + 1) // 2, 6)
    np.testing.assert_array_equal(out[0, 0].numpy(), np.concatenate([values[0, 0], values[0, 1]]))
    assert out_mask.numpy()[1].tolist() == [True, True] + [False] * ((steps + 1) // 2 - 2)


def test_pyramid_widths_double_per_level(toy_path, small_config):
    config = small_config(toy_path, encoder="pyramid_lstm", rnn_units=8, rnn_layers=4)  # (64 built 512-unit LSTMs)
    model = build_model(config.model, 3, 11, ["a b c", "d e"])
    assert [model.get_layer(f"lstm_{i}").units for i in range(4)] == [8, 16, 32, 64]
    assert model.get_layer("pair_concat_2").output_shape[-1] == 2 * 32


def test_recurrent_layers_keep_cudnn_compatible_settings(toy_path, small_config):
    for encoder in ("lstm", "bigru"):
        model = build_model(small_config(toy_path, encoder=encoder).model, 2, 8, ["a b"])
        layers = [l.forward_layer if isinstance(l, keras.layers.Bidirectional) else l for l in model.layers]
        recurrent = [l for l in layers if isinstance(l, (keras.layers.LSTM, keras.layers.GRU))]
        assert recurrent
        for layer in recurrent:
            cfg = layer.get_config()
            assert (cfg["activation"], cfg["recurrent_activation"], cfg["recurrent_dropout"], cfg["unroll"],
                    cfg["use_bias"]) == ("tanh", "sigmoid", 0.0, False, True)
            assert cfg.get("reset_after", True)


def test_padding_is_masked(toy_path, small_config):
    """Extra padding (a longer sequence length) does not change an LSTM's prediction."""
    config = small_config(toy_path, encoder="lstm", rnn_units=8)
    keras.utils.set_random_seed(0)
    short = build_model(config.model, 2, 6, ["great film", "awful story here"])
    keras.utils.set_random_seed(0)
    long = build_model(config.model, 2, 30, ["great film", "awful story here"])
    long.set_weights(short.get_weights())
    texts = tf.constant(["great film", "awful story"])
    np.testing.assert_allclose(short(texts).numpy(), long(texts).numpy(), atol=1e-6)
