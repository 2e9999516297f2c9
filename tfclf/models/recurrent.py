"""Recurrent classifiers: LSTM / GRU, bidirectional, and seed 004's pyramid LSTM, optionally on GloVe.

Each model takes raw strings: a TextVectorization adapted on the training split
is its first layer, so export and prediction work as for every other model.
Padding is masked. The recurrent layers keep the settings under which tf-keras
uses the fused cuDNN kernel on a GPU (tanh, sigmoid recurrent activation, no
recurrent dropout, no unroll, bias on, GRU reset_after; masks are right-padded
as TextVectorization pads), so the same model is fast on a GPU and correct here.
"""
import numpy as np

from tfclf._backend import keras, tf
from tfclf.models import family, layers, windows

CUDNN_SETTINGS = {"activation": "tanh", "recurrent_activation": "sigmoid", "recurrent_dropout": 0.0,
                  "unroll": False, "use_bias": True}


def read_glove(path: str, vocabulary: list) -> tuple:
    """Streams a GloVe text file (any dimension) and keeps only `vocabulary`'s words.
    Returns (matrix [len(vocabulary), dim] with zeros for missing words, found mask)."""
    wanted = {word: i for i, word in enumerate(vocabulary)}
    matrix, found, dim = None, np.zeros(len(vocabulary), dtype=bool), None
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            parts = line.rstrip().split(" ")
            if dim is None:
                dim = len(parts) - 1
                if dim < 1:
                    raise ValueError(f"{path} line 1: not GloVe text format ('word v1 v2 ...')")
                matrix = np.zeros((len(vocabulary), dim), dtype=np.float32)
            index = wanted.get(parts[0])
            if index is None:
                continue
            if len(parts) - 1 != dim:
                raise ValueError(f"{path} line {number}: {len(parts) - 1} values, expected {dim}; "
                                 "check the file is one GloVe text file")
            try:
                matrix[index] = np.asarray(parts[1:], dtype=np.float32)
            except ValueError:
                raise ValueError(f"--glove {path} line {number}: the values after {parts[0]!r} are not all numbers; "
                                 "give a GloVe text file ('word v1 v2 ...')") from None
            found[index] = True
    if dim is None:
        raise ValueError(f"{path}: GloVe file is empty")
    return matrix, found


class PairConcat(keras.layers.Layer):
    """Halves time by concatenating adjacent steps ([B, T, D] -> [B, ceil(T/2), 2D]); an odd
    last step is paired with zero padding. The mask keeps a pair if either step is real."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    @staticmethod
    def _pad_even(values):
        odd = tf.shape(values)[1] % 2
        paddings = [[0, 0], [0, odd]] + [[0, 0]] * (len(values.shape) - 2)
        return tf.pad(values, paddings)

    def call(self, inputs, mask=None):
        padded = self._pad_even(inputs)
        batch, steps = tf.shape(padded)[0], tf.shape(padded)[1]
        return tf.reshape(padded, [batch, steps // 2, 2 * inputs.shape[-1]])

    def compute_mask(self, inputs, mask=None):
        if mask is None:
            return None
        padded = self._pad_even(tf.cast(mask, tf.int32))
        return tf.reduce_max(tf.reshape(padded, [tf.shape(padded)[0], -1, 2]), axis=-1) > 0


def _recurrent(kind: str, units: int, return_sequences: bool, name: str):
    if kind == "gru":
        return keras.layers.GRU(units, return_sequences=return_sequences, reset_after=True, name=name,
                                **CUDNN_SETTINGS)
    return keras.layers.LSTM(units, return_sequences=return_sequences, name=name, **CUDNN_SETTINGS)


def build_recurrent(model_config, num_classes: int, seq_len: int, train_texts, kind: str = "lstm",
                    bidirectional: bool = False, pyramid: bool = False) -> keras.Model:
    texts = keras.Input(shape=(), dtype=tf.string, name="text")
    vectorizer = layers.text_vectorizer(model_config, seq_len, train_texts)
    vocabulary = vectorizer.get_vocabulary()
    info = {}
    if model_config.glove:
        matrix, found = read_glove(model_config.glove, vocabulary)
        counts = _token_counts(vectorizer, train_texts, len(vocabulary))
        info = {"glove_dim": int(matrix.shape[1]), "glove_vocabulary_coverage": float(found[2:].mean()),
                "glove_token_coverage": float(counts[found].sum() / max(counts[2:].sum(), 1))}
        embedding = keras.layers.Embedding(len(vocabulary), matrix.shape[1], mask_zero=True, name="embedding",
                                           embeddings_initializer=keras.initializers.Constant(matrix),
                                           trainable=not model_config.freeze_embeddings)
    else:
        embedding = keras.layers.Embedding(len(vocabulary), model_config.embedding_dim, mask_zero=True,
                                           name="embedding")
    kept = texts if windows.keeps_head(model_config.truncate) else \
        windows.KeepUnits(seq_len, model_config.truncate, name="keep_words")(texts)
    sequence = embedding(vectorizer(kept))  # the vectorizer keeps the first seq_len words
    levels = model_config.rnn_layers
    for level in range(levels):
        last = level == levels - 1
        units = model_config.rnn_units * (2 ** level if pyramid else 1)  # pyramid: 64 -> 128 -> 256 -> 512
        layer = _recurrent(kind, units, return_sequences=not last, name=f"{kind}_{level}")
        if bidirectional:
            layer = keras.layers.Bidirectional(layer, name=f"bi{kind}_{level}")
        sequence = layer(sequence)
        if not last:
            sequence = keras.layers.Dropout(model_config.dropout, name=f"dropout_{level}")(sequence)
            if pyramid:
                sequence = PairConcat(name=f"pair_concat_{level}")(sequence)
    model = keras.Model(texts, layers.logits_head(sequence, model_config, num_classes), name=model_config.encoder)
    model.tfclf_info = info
    return model


def _token_counts(vectorizer, texts, size: int) -> np.ndarray:
    ids = vectorizer(layers.as_strings(texts)).numpy()
    return np.bincount(ids.ravel(), minlength=size).astype(np.float64)


class Recurrent(family.Family):
    """lstm, bilstm, pyramid_lstm, gru, bigru: the variant's settings come from its choices.ENCODERS entry."""

    def build(self, model_config, train_config, num_classes, seq_len, train_texts):
        return build_recurrent(model_config, num_classes, seq_len, train_texts, self.entry["kind"],
                               self.entry["bidirectional"], self.entry["pyramid"])
