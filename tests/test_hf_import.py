"""The Hugging Face importer reproduces the checkpoint's forward pass and WordPiece tokenization."""
import os

import numpy as np
import pytest

import hf_fixtures
from tfclf.models import hf_checkpoint
from tfclf._backend import hub, tf


@pytest.fixture(scope="session")
def imported(tmp_path_factory):
    """(config, weights, handles) of a tiny BERT imported once for the whole run (both xdist workers)."""
    import pickle
    from conftest import built_once

    def build(root):
        config, weights = hf_fixtures.write_tiny_bert(root / "src")
        (root / "weights.pickle").write_bytes(pickle.dumps((config, weights)))
        return {"weights": str(root / "weights.pickle"),
                "handles": hf_checkpoint.import_checkpoint(str(root / "src"), str(root / "dst"), seq_length=12)}
    built = built_once(tmp_path_factory, "hf_import", build)
    with open(built["weights"], "rb") as handle:
        config, weights = pickle.load(handle)
    return config, weights, built["handles"]


def test_sequence_output_matches_numpy_reference(imported):
    config, weights, handles = imported
    rng = np.random.default_rng(1)
    ids = rng.integers(5, len(hf_fixtures.VOCAB), size=(3, 10))
    ids[:, 0] = 2
    mask = np.ones_like(ids)
    mask[1, 6:] = 0
    mask[2, 3:] = 0
    ids[mask == 0] = 0
    types = np.zeros_like(ids)
    types[0, 5:] = 1
    encoder = hub.KerasLayer(handles["encoder"], trainable=True)
    outputs = encoder({"input_word_ids": tf.constant(ids, tf.int32), "input_mask": tf.constant(mask, tf.int32),
                       "input_type_ids": tf.constant(types, tf.int32)})
    sequence, pooled = hf_fixtures.numpy_bert(config, weights, ids, mask, types)
    valid = mask.astype(bool)
    np.testing.assert_allclose(outputs["sequence_output"].numpy()[valid], sequence[valid], atol=1e-4)
    np.testing.assert_allclose(outputs["pooled_output"].numpy(), pooled, atol=1e-4)
    assert len(outputs["encoder_outputs"]) == config["num_hidden_layers"]
    assert len(encoder.trainable_weights) > 0


@pytest.fixture(scope="module")
def imported_preprocess(imported):
    """The imported preprocessor SavedModel, loaded once for the 5 texts (a load is about 2.5 CPU-s)."""
    return hub.load(imported[2]["preprocess"])


def wordpiece_reference(text):
    """Hugging Face BasicTokenizer + WordPiece, uncased, written out for this tiny vocabulary."""
    import unicodedata
    vocab = {token: i for i, token in enumerate(hf_fixtures.VOCAB)}
    text = "".join(f" {ch} " if 0x4E00 <= ord(ch) <= 0x9FFF else ch for ch in text.lower())
    text = "".join(ch for ch in unicodedata.normalize("NFD", text) if unicodedata.category(ch) != "Mn")
    words = []
    for word in text.split():
        current = ""
        for ch in word:
            if unicodedata.category(ch).startswith("P") or ch in "$+<=>^`|~":
                words += [current, ch] if current else [ch]
                current = ""
            else:
                current += ch
        if current:
            words.append(current)
    ids = []
    for word in words:
        start, pieces = 0, []
        while start < len(word):
            end = len(word)
            while end > start and (("##" if start else "") + word[start:end]) not in vocab:
                end -= 1
            if end == start:
                pieces = [vocab["[UNK]"]]
                break
            pieces.append(vocab[("##" if start else "") + word[start:end]])
            start = end
        ids += pieces
    return ids


@pytest.mark.parametrize("text", ["The cat sat on the mat.", "Café, DOGS! unbelievable", "hello 中文 friend",
                                  "zebra's call now!!", "FREE prize"])
def test_preprocessor_matches_wordpiece_reference(imported_preprocess, text):
    preprocess = imported_preprocess
    tokens = preprocess.tokenize(tf.constant([text]))
    assert tokens.merge_dims(-2, -1)[0].numpy().tolist() == wordpiece_reference(text)
    packed = preprocess(tf.constant([text]))
    expected = [2] + wordpiece_reference(text)[:10] + [3]
    assert packed["input_word_ids"][0].numpy().tolist()[:len(expected)] == expected
    assert packed["input_word_ids"].shape[1] == 12


def test_missing_checkpoint_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="model.safetensors not found"):
        (tmp_path / "config.json").write_text("{}")
        hf_checkpoint.read_checkpoint(str(tmp_path))


# slow: a second import, 23 s; the quick loop keeps the importer through the `imported` fixture
@pytest.mark.slow
def test_import_cli_writes_handles_and_rejects_bad_source(tmp_path, capsys):
    from tfclf import import_hf
    hf_fixtures.write_tiny_bert(tmp_path / "src", model_type="electra")
    assert import_hf.main([str(tmp_path / "src"), "--out", str(tmp_path / "dst")]) == 0
    assert "--encoder-handle" in capsys.readouterr().out
    assert (tmp_path / "dst" / "encoder" / "saved_model.pb").exists()
    assert (tmp_path / "dst" / "encoder" / "assets" / "vocab.txt").exists()
    assert import_hf.main([str(tmp_path / "nothing"), "--out", str(tmp_path / "x")]) == 2
    assert "config.json not found" in capsys.readouterr().err and not (tmp_path / "x").exists()


@pytest.mark.slow
def test_minilm_l6_imports_from_the_wheel_once_and_embeds(tmp_path, monkeypatch):
    """Real pretrained weights: imported into the cache on first use, reused after."""
    from tfclf.models import tfhub as encoders, transformer
    monkeypatch.setenv("TFCLF_CACHE_DIR", str(tmp_path))
    handles = encoders.resolve_handles("minilm_l6")  # known before any import: the config is complete early
    assert not os.path.exists(handles["encoder"]) and handles["encoder"].startswith(str(tmp_path))
    assert encoders.resolve(handles["encoder"]) == handles["encoder"]  # first use imports
    stamp = os.path.getmtime(os.path.join(handles["encoder"], "saved_model.pb"))
    assert encoders.resolve_handles("minilm_l6") == handles
    assert encoders.resolve(handles["preprocess"]) == handles["preprocess"]
    assert os.path.getmtime(os.path.join(handles["encoder"], "saved_model.pb")) == stamp  # not imported again
    pipeline = transformer.TextEncoderPipeline(handles["preprocess"])
    tokens, _ = pipeline.map_fn(32)(tf.constant(["a cat sat on the mat", "a kitten sat on a rug",
                                                 "stock markets fell sharply today"]), tf.constant([0, 0, 0]))
    outputs = encoders.load_hub(handles["encoder"])(tokens)
    assert outputs["sequence_output"].shape[-1] == 384
    mask = tf.cast(tokens["input_mask"], tf.float32)[..., None]
    mean = tf.reduce_sum(outputs["sequence_output"] * mask, 1) / tf.reduce_sum(mask, 1)
    mean = tf.math.l2_normalize(mean, axis=1).numpy()
    # Sentence-transformer semantics survive the import: the paraphrase is closer than the unrelated text.
    assert mean[0] @ mean[1] > mean[0] @ mean[2] + 0.2
