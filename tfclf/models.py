"""Model builders: a table from encoder name to builder and defaults.

Every model is a Functional tf-keras model from a batch of raw strings to
class logits (float32), so training, evaluation and export treat all families
alike. Builders do no I/O; `adapt` on the training texts is in-memory.

    >>> model = build(ModelConfig(encoder="bow"), num_classes=2, seq_len=16,
    ...               train_texts=["free prize", "see you"])
"""
import numpy as np

from tfclf import encoders, lstm
from tfclf._backend import keras, tf


def _vectorizer(model_config, seq_len: int, train_texts, ngrams=None) -> keras.layers.TextVectorization:
    """Adapted on the training texts; index 0 is padding, 1 out-of-vocabulary."""
    vectorizer = keras.layers.TextVectorization(
        max_tokens=model_config.vocab_size, output_mode="int", output_sequence_length=seq_len,
        ngrams=ngrams, name="vectorizer")
    vectorizer.adapt(tf.constant(np.asarray(train_texts, dtype=object).astype(str)), batch_size=1024)
    return vectorizer


class MaskedMean(keras.layers.Layer):
    """Mean over unmasked time steps; an all-padding row gives zeros, not 0/0 = NaN."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return tf.reduce_mean(inputs, axis=1)
        weights = tf.cast(mask, inputs.dtype)[:, :, tf.newaxis]
        total = tf.reduce_sum(inputs * weights, axis=1)
        return total / tf.maximum(tf.reduce_sum(weights, axis=1), 1.0)

    def compute_mask(self, inputs, mask=None):
        return None


def _classifier(features, model_config, num_classes: int):
    features = keras.layers.Dropout(model_config.dropout, name="head_dropout")(features)
    # The logits stay float32 even under a mixed-precision policy, for a stable softmax/loss.
    return keras.layers.Dense(num_classes, dtype="float32", name="logits")(features)


def build_bow(model_config, num_classes: int, seq_len: int, train_texts) -> keras.Model:
    """fastText-style baseline: word uni+bi-gram embeddings, masked mean, linear classifier."""
    texts = keras.Input(shape=(), dtype=tf.string, name="text")
    # Uni- and bi-grams of a text of n words make 2n - 1 tokens.
    token_ids = _vectorizer(model_config, 2 * seq_len, train_texts, ngrams=2)(texts)
    embedded = keras.layers.Embedding(model_config.vocab_size, model_config.embedding_dim,
                                      mask_zero=True, name="embedding")(token_ids)
    pooled = MaskedMean(name="mean_pool")(embedded)
    return keras.Model(texts, _classifier(pooled, model_config, num_classes), name="bow")


def build_transformer(model_config, num_classes: int, seq_len: int, train_texts) -> keras.Model:
    """Token ids -> logits on the TF Hub encoder in `model_config.encoder_handle` (see transformer.py)."""
    from tfclf import transformer
    return transformer.build_classifier(model_config, num_classes, model_config.encoder_handle)


def build_for_training(model_config, train_config, num_classes: int, seq_len: int, train_texts) -> keras.Model:
    """`build`, plus the two-optimizer wrapper when the encoder has its own learning rate."""
    model = build(model_config, num_classes, seq_len, train_texts)
    if train_config.encoder_lr:
        from tfclf import transformer
        model = transformer.with_encoder_optimizer(model, None)  # optimizer set by training.compile_model
    return model


# name -> builder, input family, default learning rate and epochs, unit of `seq_len`, description.
# "text" models take raw strings; "tokens" models take the preprocessing model's token ids.
MODELS = {
    "bow": {"build": build_bow, "input": "text", "lr": 5e-3, "epochs": 8, "length_unit": "words",
            "description": "bag of word uni/bi-grams (fastText-style), trains in seconds"},
}
MODELS.update(lstm.table({"input": "text", "lr": 2e-3, "epochs": 5, "length_unit": "words"}))
MODELS.update({name: {"build": build_transformer, "input": "tokens", "lr": 5e-5, "epochs": 3,
                      "length_unit": "wordpiece tokens", "description": entry["notes"]}
               for name, entry in encoders.ENCODERS.items()})


def build(model_config, num_classes: int, seq_len: int, train_texts) -> keras.Model:
    spec = MODELS[model_config.encoder]
    return spec["build"](model_config, num_classes, seq_len, train_texts)
