"""Issue 15: the encoder rebuilt natively, and mixed precision that reaches the encoder (Keras policy for the
native build, TensorFlow's graph rewrite for SavedModel encoders)."""

import numpy as np
import pytest

from tfclf import config as config_lib
from tfclf._backend import keras, tf
from tfclf.models import transformer
from tfclf.training import fit as fit_lib

NO_BF16 = "this CPU reports no avx512_bf16/amx_bf16: TensorFlow's oneDNN bf16 rewrite does nothing here"


def _config(tiny_hub, build: str, **overrides):
    return config_lib.from_flat({"encoder": "bert_small", "encoder_handle": tiny_hub["encoder"],
                                 "preprocess_handle": tiny_hub["preprocess"], "encoder_build": build, **overrides})


def _model_config(tiny_hub, build: str, **overrides):
    return _config(tiny_hub, build, **overrides).model


def _tokens(tiny_hub, texts):
    pipeline = transformer.TextEncoderPipeline(tiny_hub["preprocess"])
    tokens, _ = pipeline.map_fn(32)(tf.constant(texts), tf.constant([0] * len(texts)))
    return tokens


TEXTS = ["great film", "boring story and really sad", "the", "a great great film that was not boring at all"]


@pytest.mark.parametrize("pooling", ["pooled", "mean"])
def test_native_encoder_computes_what_the_savedmodel_computes(tiny_hub, pooling):
    """The same handle built both ways, with the same head: equal logits (float32 rounding apart)."""
    model_config = _model_config(tiny_hub, "native", pooling=pooling)
    native = transformer.build_classifier(model_config, 3, tiny_hub["encoder"], native=True)
    saved = transformer.build_classifier(model_config, 3, tiny_hub["encoder"], native=False)
    assert type(native.get_layer("encoder")).__name__ == "BertEncoder"
    assert type(saved.get_layer("encoder")).__name__ == "KerasLayer"
    saved.get_layer("logits").set_weights(native.get_layer("logits").get_weights())
    tokens = _tokens(tiny_hub, TEXTS)
    np.testing.assert_allclose(native(tokens).numpy(), saved(tokens).numpy(), atol=1e-5)
    assert len(native.trainable_weights) == len(saved.trainable_weights)


def test_native_build_only_for_imported_checkpoints_and_by_default_only_where_it_pays(tiny_hub):
    def native(build, **train):
        config = _config(tiny_hub, build, **train)
        return transformer.builds_natively(config.model, config.train)
    assert native("native") and not native("savedmodel") and not native("savedmodel", mixed_precision=True)
    assert not native("auto") and native("auto", mixed_precision=True) and native("auto", xla=True)
    official = config_lib.from_flat({"encoder": "bert_small", "encoder_build": "native", "xla": True})
    assert not transformer.builds_natively(official.model, official.train)  # a tfhub.dev URL: not tfclf's import
    family, config = transformer.HubTransformer("bert_small"), _config(tiny_hub, "auto", mixed_precision=True)
    assert not family.graph_precision_rewrite(config.model, config.train)  # the policy reaches the native build
    config = _config(tiny_hub, "savedmodel", mixed_precision=True)
    assert family.graph_precision_rewrite(config.model, config.train)


def test_keras_policy_reaches_the_native_encoder(tiny_hub):
    """Under mixed_bfloat16 the native encoder's layers compute in bf16 (its output differs from float32 by
    more than rounding, by less than bf16's precision); bf16 arithmetic runs, emulated, on any CPU."""
    model_config = _model_config(tiny_hub, "native")
    reference = transformer.build_classifier(model_config, 2, tiny_hub["encoder"], native=True)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        lowered = transformer.build_classifier(model_config, 2, tiny_hub["encoder"], native=True)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    encoder = lowered.get_layer("encoder")
    assert encoder.compute_dtype == "bfloat16" and encoder.weights[0].dtype == tf.float32
    tokens = _tokens(tiny_hub, TEXTS)
    ours = tf.cast(lowered.get_layer("encoder")(tokens)["sequence_output"], tf.float32).numpy()
    theirs = reference.get_layer("encoder")(tokens)["sequence_output"].numpy()
    difference = np.abs(ours - theirs).max() / np.abs(theirs).max()
    assert 1e-4 < difference < 0.1, difference


def test_graph_rewrite_is_on_only_inside_its_scope():
    option = fit_lib.GRAPH_REWRITES["mixed_bfloat16"]
    assert not tf.config.optimizer.get_experimental_options().get(option, False)
    with fit_lib.graph_mixed_precision("mixed_bfloat16") as active:
        assert active == option and tf.config.optimizer.get_experimental_options()[option]
    assert not tf.config.optimizer.get_experimental_options().get(option, False)
    with fit_lib.graph_mixed_precision("float32") as active:
        assert active is None and option not in {k for k, v in tf.config.optimizer.get_experimental_options().items()
                                                 if v}


@pytest.mark.skipif(not fit_lib.cpu_has_bf16(), reason=NO_BF16)
def test_graph_rewrite_lowers_a_savedmodel_encoder(tiny_hub):
    """The proof that the rewrite reaches a SavedModel's graph: its outputs move by more than float32 rounding
    and by less than bf16's precision."""
    encoder = transformer.build_classifier(_model_config(tiny_hub, "savedmodel"), 2,
                                           tiny_hub["encoder"], native=False).get_layer("encoder")
    tokens = _tokens(tiny_hub, TEXTS)
    reference = tf.function(lambda x: encoder(x)["sequence_output"])(tokens).numpy()
    with fit_lib.graph_mixed_precision("mixed_bfloat16"):
        lowered = tf.function(lambda x: encoder(x)["sequence_output"])(tokens).numpy()
    difference = np.abs(lowered - reference).max() / np.abs(reference).max()
    assert 1e-5 < difference < 0.1, difference


def test_mixed_precision_is_refused_in_one_line_where_the_cpu_cannot(monkeypatch):
    monkeypatch.setattr(fit_lib, "cpu_has_bf16", lambda: False)
    monkeypatch.setattr(tf.config, "list_logical_devices", lambda kind=None: [])
    with pytest.raises(ValueError, match="no bf16 instructions"):
        fit_lib.precision_policy(True)
    monkeypatch.setattr(fit_lib, "cpu_has_bf16", lambda: True)
    assert fit_lib.precision_policy(True) == "mixed_bfloat16" and fit_lib.precision_policy(False) == "float32"


@pytest.mark.slow
@pytest.mark.skipif(not fit_lib.cpu_has_bf16(), reason=NO_BF16)
@pytest.mark.parametrize("build", ["auto", "savedmodel"])
def test_a_bf16_fine_tune_still_learns_and_says_how_it_ran(build, toy_path, tiny_hub, small_config):
    from tfclf.jobs import training_run
    config = small_config(toy_path, encoder="bert_small", encoder_handle=tiny_hub["encoder"],
                          preprocess_handle=tiny_hub["preprocess"], encoder_build=build, mixed_precision=True,
                          epochs=8, lr=2e-3, batch_size=16, restore_best=False, skip_export=True)
    metrics = training_run.train(config).metrics
    rewrite = "none" if build == "auto" else fit_lib.GRAPH_REWRITES["mixed_bfloat16"]
    assert metrics["precision"] == {"policy": "mixed_bfloat16", "graph_rewrite": rewrite}
    assert metrics["test"]["accuracy"] >= 0.85, metrics["test"]
