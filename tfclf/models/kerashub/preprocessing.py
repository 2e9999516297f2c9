"""The preset's preprocessor in tf.data: packed token ids, padded to the batch's longest text.

It is the KerasHub family's Pipeline (models/family.Pipeline), the shape of the TF Hub family's.
"""
import numpy as np

from tfclf._backend import tf  # first: selects tf-keras for the rest of tfclf before TensorFlow loads
import keras_hub  # noqa: E402

from tfclf.models import layers  # noqa: E402
from tfclf.models.kerashub.presets import from_preset  # noqa: E402

MAX_SEQ_LEN = 512  # BERT-family position embeddings; a smaller backbone is checked at build


def trim_padding(packed: dict) -> dict:
    """The packed inputs as int32, cut to the batch's longest row (layers.trim_padding)."""
    return layers.trim_padding(as_int32(packed), "padding_mask")


def as_int32(packed: dict) -> dict:
    """The inputs as the model declares them: int32 (KerasHub's padding_mask is bool, which tf.distribute
    cannot reduce when Keras 3 builds a model under MirroredStrategy from the first batch)."""
    return {name: tf.cast(value, tf.int32) for name, value in packed.items()}


class Preprocessing:
    """The preset's TextClassifierPreprocessor (tf-text ops), one per sequence length."""

    def __init__(self, preset: str):
        self.preset, self._by_length = preset, {}

    def at(self, seq_len: int):
        if seq_len not in self._by_length:
            self._by_length[seq_len] = from_preset(keras_hub.models.TextClassifierPreprocessor, self.preset,
                                                   sequence_length=seq_len)
        return self._by_length[seq_len]

    def lengths(self, texts) -> np.ndarray:
        """Tokens per text, special tokens included (capped at MAX_SEQ_LEN)."""
        preprocessor, lengths = self.at(MAX_SEQ_LEN), []
        for start in range(0, len(texts), 512):
            batch = tf.constant(np.asarray(texts[start:start + 512], dtype=object).astype(str))
            lengths.append(tf.reduce_sum(tf.cast(preprocessor(batch)["padding_mask"], tf.int32), 1).numpy())
        return np.concatenate(lengths) if lengths else np.zeros(0, np.int32)

    def map_fn(self, seq_len: int, dynamic: bool = True):
        """(texts, labels[, weights]) -> (packed inputs, labels[, weights]), padded to the batch's longest text
        (`dynamic`) or to seq_len (one shape, for XLA)."""
        preprocessor = self.at(seq_len)

        def tokenize(texts, *labels):
            packed = preprocessor(texts)
            return (trim_padding(packed) if dynamic else as_int32(packed),) + labels
        return tokenize
