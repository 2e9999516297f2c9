"""Layers and pieces shared by the model families: the vocabulary layer, masked mean, the logits head."""
import numpy as np

from tfclf._backend import keras, tf


def text_vectorizer(model_config, seq_len: int, train_texts, ngrams=None) -> keras.layers.TextVectorization:
    """Adapted on the training texts (in memory); index 0 is padding, 1 out-of-vocabulary."""
    vectorizer = keras.layers.TextVectorization(
        max_tokens=model_config.vocab_size, output_mode="int", output_sequence_length=seq_len,
        ngrams=ngrams, name="vectorizer")
    vectorizer.adapt(as_strings(train_texts), batch_size=1024)
    return vectorizer


def as_strings(texts) -> tf.Tensor:
    """A string tensor of `texts` (built from Python strings: numpy's fixed-width `astype(str)` would take
    4 bytes per character of the longest text for every text)."""
    return tf.constant(np.array([str(text) for text in texts], dtype=object))


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


def logits_head(features, model_config, num_classes: int, initializer="glorot_uniform"):
    """Dropout + dense to class logits; the logits stay float32 even under a mixed-precision policy,
    for a stable softmax and loss."""
    features = keras.layers.Dropout(model_config.dropout, name="head_dropout")(features)
    return keras.layers.Dense(num_classes, dtype="float32", name="logits", kernel_initializer=initializer)(features)


def trim_padding(packed: dict, mask_name: str, names=None) -> dict:
    """Packed token inputs cut to the batch's longest row (by the mask `mask_name`), rounded up to a multiple of
    8 (few distinct shapes, so few retraces); attention masks make the result equal to the full-length one.
    `names`: the inputs kept (default: all). Shared by the TF Hub and KerasHub families."""
    mask = packed[mask_name]
    longest = tf.reduce_max(tf.reduce_sum(tf.cast(mask, tf.int32), axis=1))
    longest = tf.minimum((longest + 7) // 8 * 8, tf.shape(mask)[1])
    return {name: packed[name][:, :longest] for name in (names or packed)}
