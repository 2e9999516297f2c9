"""Long texts: which units (wordpiece tokens or words) of a text the model sees.

A text longer than the model's window is either truncated to one window (`--truncate head|tail|head+tail`)
or split into overlapping windows (`--long-text chunk`) whose logits are aggregated per text. The ops
here work on a RaggedTensor [texts, (units)] of any dtype (token ids or word strings), so the tf.data
pipelines, the models and the exported SavedModels share one definition.

    >>> window_geometry(128, 2, 0)     # a BERT window: 126 tokens between [CLS] and [SEP], 25% overlap
    (126, 94)
    >>> windows_per_text([10, 126, 127, 300], 126, 94).tolist()
    [1, 1, 2, 3]
"""
import numpy as np

from tfclf._backend import keras, tf

HEAD_SHARE = 0.25  # head+tail keeps the first quarter of the window and the last three quarters (Sun et al. 2019)


def window_geometry(seq_len: int, reserved: int, chunk_stride: int) -> tuple:
    """(width, stride) in units: the window is the sequence cap less the model's reserved tokens ([CLS] and
    [SEP] for BERT); consecutive windows start `stride` units apart (default: three quarters of the width,
    so they overlap by a quarter)."""
    width = max(1, seq_len - reserved)
    return width, (chunk_stride or max(1, (width * 3) // 4))


def windows_per_text(lengths, width: int, stride: int) -> np.ndarray:
    """How many windows each text of `lengths` units becomes (at least one)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    return 1 + (np.maximum(lengths - width, 0) + stride - 1) // stride


def _gather_positions(units, begin, size):
    """Rows of `units`' flat values: for each row i, the `size[i]` units from flat position `begin[i]`."""
    positions = tf.ragged.range(begin, begin + size)
    return tf.gather(units.flat_values, positions)


def split_windows(units, width: int, stride: int):
    """RaggedTensor [texts, (units)] -> (windows [windows, (<= width units)], text index per window int32).
    Windows start every `stride` units; the last is moved back to end at the text's end, so every window
    of a text longer than `width` is full."""
    lengths = units.row_lengths()
    counts = 1 + (tf.maximum(lengths - width, 0) + stride - 1) // stride
    text_ids = tf.repeat(tf.range(tf.shape(lengths, out_type=tf.int64)[0]), counts)
    index = tf.ragged.range(counts).flat_values
    last_start = tf.gather(tf.maximum(lengths - width, 0), text_ids)
    begin = tf.gather(units.row_starts(), text_ids) + tf.minimum(index * stride, last_start)
    size = tf.minimum(tf.gather(lengths, text_ids), width)
    return _gather_positions(units, begin, size), tf.cast(text_ids, tf.int32)


def keeps_head(side: str) -> bool:
    """Whether `--truncate side` keeps a text's head: `head`, or `auto` (decided when a run reads its data,
    stages/preparing.sequence_cap) in a model built without data. Such a model needs no truncation layer."""
    return side in ("head", "auto")


def keep_units(units, width: int, side: str):
    """RaggedTensor [texts, (units)] -> at most `width` units per text: the first (head), the last (tail),
    or the first quarter and last three quarters of the window (head+tail); shorter texts are kept whole
    (`auto`: see keeps_head)."""
    lengths = units.row_lengths()
    if keeps_head(side):
        return units[:, :width]
    if side == "tail":
        size = tf.minimum(lengths, width)
        return _gather_positions(units, units.row_limits() - size, size)
    if side != "head+tail":
        raise ValueError(f"--truncate {side}: choose one of head, tail, head+tail")
    head_width = int(width * HEAD_SHARE)
    head = tf.minimum(lengths, head_width)
    tail = tf.minimum(lengths, width) - head
    return tf.concat([_gather_positions(units, units.row_starts(), head),
                      _gather_positions(units, units.row_limits() - tail, tail)], axis=1)


def aggregate(window_logits, text_ids, num_texts, how: str):
    """Per-text logits from per-window logits: the mean or the element-wise max over a text's windows."""
    reduce = tf.math.unsorted_segment_mean if how == "mean" else tf.math.unsorted_segment_max
    return reduce(tf.cast(window_logits, tf.float32), text_ids, num_texts)


def words(texts):
    """Whitespace words of a batch of strings: the unit of the word-level families."""
    return tf.strings.split(texts)


def join_words(ragged_words):
    return tf.strings.reduce_join(ragged_words, axis=1, separator=" ")


def _flat_tokens(tokens):
    """[texts, (words), (wordpieces)] (a BERT tokenizer's output) -> [texts, (tokens)]."""
    return tokens.merge_dims(-2, -1) if tokens.ragged_rank > 1 else tokens


def keep(inputs, width: int, side: str):
    """`keep_units` on strings (their whitespace words, joined again) or on ragged token ids."""
    if isinstance(inputs, tf.RaggedTensor):
        return keep_units(_flat_tokens(inputs), width, side)
    return join_words(keep_units(words(inputs), width, side))


def window(inputs, width: int, stride: int):
    """`split_windows` on strings (-> window strings) or on ragged token ids (-> ragged windows); with the text
    index of each window."""
    if isinstance(inputs, tf.RaggedTensor):
        return split_windows(_flat_tokens(inputs), width, stride)
    pieces, text_ids = split_windows(words(inputs), width, stride)
    return join_words(pieces), text_ids


class KeepUnits(keras.layers.Layer):
    """`keep` as a layer: strings for the models that take raw text (in front of their vocabulary layer, so
    training, evaluation and the export cut alike), ragged token ids in the exported transformer model."""

    def __init__(self, width: int, side: str, **kwargs):
        super().__init__(**kwargs)
        self.width, self.side = width, side

    def call(self, inputs):
        return keep(inputs, self.width, self.side)

    def get_config(self):
        return {**super().get_config(), "width": self.width, "side": self.side}


class Windows(keras.layers.Layer):
    """`window` as a layer: (windows, text index per window) of strings or ragged token ids."""

    def __init__(self, width: int, stride: int, **kwargs):
        super().__init__(**kwargs)
        self.width, self.stride = width, stride

    def call(self, inputs):
        return window(inputs, self.width, self.stride)

    def get_config(self):
        return {**super().get_config(), "width": self.width, "stride": self.stride}


class Aggregate(keras.layers.Layer):
    """(window logits, text index per window, texts) -> one row of logits per text (`aggregate`)."""

    def __init__(self, how: str, **kwargs):
        super().__init__(**kwargs)
        self.how = how

    def call(self, inputs):
        window_logits, text_ids, texts = inputs
        return aggregate(window_logits, text_ids, tf.shape(texts)[0], self.how)

    def get_config(self):
        return {**super().get_config(), "how": self.how}
