"""Sequence packing for the natively built BERT-family encoder: several texts per row of a fixed length.

A batch of texts becomes rows of `row_length` tokens (first-fit decreasing, `first_fit`), each text whole
with its own [CLS] and [SEP]. Four tensors describe a packed batch:

    input_word_ids [rows, row_length]  token ids, 0 after the last text of a row
    segment_ids    [rows, row_length]  1 + the text's index in the batch, 0 for padding
    position_ids   [rows, row_length]  0, 1, 2, ... restarting at each text
    text_starts    [texts]             the flat index (row * row_length + offset) of each text's [CLS]

`PackedClassifier` runs the classifier's own layers on them: a block-diagonal attention mask (a token sees
the tokens of its text only), position embeddings gathered at the restarting positions, and pooling per
text ([CLS] of each segment, the pooler on it, or a masked mean per segment). Its logits are one row per
text in the batch's order, so labels, weights, loss and metrics stay per text, exactly as unpacked: there
are no empty slots to mask. The export keeps the unpacked classifier (`PackedClassifier.classifier`): the
same weights, one text per row.
"""
import numpy as np

from tfclf._backend import keras, tf

INPUT_NAMES = ("input_word_ids", "segment_ids", "position_ids", "text_starts")
HEAD_LAYERS = ("mlp_dropout", "mlp_hidden", "head_dropout", "logits")  # transformer.build_classifier's head


def first_fit(lengths, row_length: int) -> tuple:
    """(row, offset) of each text and the number of rows: first-fit decreasing into rows of `row_length`.

        >>> first_fit(np.array([5, 3, 4, 2]), 8)
        (array([0, 0, 1, 1], dtype=int32), array([0, 5, 0, 4], dtype=int32), 2)
    """
    lengths = np.asarray(lengths).reshape(-1)
    rows, offsets = np.zeros(len(lengths), np.int32), np.zeros(len(lengths), np.int32)
    used = []  # tokens taken in each open row
    for i in np.argsort(-lengths, kind="stable"):
        row = next((r for r, taken in enumerate(used) if taken + lengths[i] <= row_length), len(used))
        if row == len(used):
            used.append(0)
        rows[i], offsets[i] = row, used[row]
        used[row] += int(lengths[i])
    return rows, offsets, max(len(used), 1)


def carried_per_text(lengths, batch_size: int, row_length: int, batches: int = 200, seed: int = 0) -> float:
    """Tokens per text that packed rows would carry (rows x row_length / texts), over up to `batches` shuffled
    batches of texts of `lengths` (each at most row_length).

        >>> carried_per_text(np.full(64, 30), 32, 128)  # 4 texts a row, 8 full rows a batch
        32.0
    """
    lengths = np.asarray(lengths)
    order = np.random.default_rng(seed).permutation(len(lengths))[:batches * batch_size]
    rows = sum(first_fit(lengths[order[start:start + batch_size]], row_length)[2]
               for start in range(0, len(order), batch_size))
    return rows * row_length / max(len(order), 1)


def pack_tokens(tokens, row_length: int, row_multiple: int = 1) -> dict:
    """Ragged token ids [texts, (length)] (each with its [CLS] and [SEP], at most `row_length`) -> the packed
    inputs above. `row_multiple` rounds the number of rows up (fewer shapes for XLA)."""
    @tf.autograph.experimental.do_not_convert
    def assign(lengths):  # plain Python, in NumPy
        rows, offsets, count = first_fit(lengths, row_length)
        return rows, offsets, np.int32(count)
    lengths = tf.cast(tokens.row_lengths(), tf.int32)
    rows, offsets, count = tf.numpy_function(assign, [lengths], [tf.int32, tf.int32, tf.int32], stateful=False)
    count = (count + row_multiple - 1) // row_multiple * row_multiple
    text_of_token = tf.cast(tokens.value_rowids(), tf.int32)
    position = tf.cast(tf.ragged.range(lengths).flat_values, tf.int32)
    starts = tf.reshape(rows, [-1]) * row_length + tf.reshape(offsets, [-1])
    where = (tf.gather(starts, text_of_token) + position)[:, tf.newaxis]
    shape = tf.stack([count * row_length])

    def scatter(values):
        return tf.reshape(tf.scatter_nd(where, tf.cast(values, tf.int32), shape), [count, row_length])
    return {"input_word_ids": scatter(tokens.flat_values), "segment_ids": scatter(text_of_token + 1),
            "position_ids": scatter(position), "text_starts": starts}


def attention_mask(segment_ids, dtype):
    """[rows, L, L]: 1 where query and key tokens belong to the same text (block-diagonal), else 0."""
    same = tf.equal(segment_ids[:, :, tf.newaxis], segment_ids[:, tf.newaxis, :])
    return tf.cast(tf.logical_and(same, (segment_ids > 0)[:, tf.newaxis, :]), dtype)


def pool_texts(sequence, inputs: dict, pooling: str, pooler=None):
    """[rows, L, width] -> [texts, width]: each text's [CLS] (through `pooler` for 'pooled'), or the mean of
    its tokens (as layers.MaskedMean over an unpacked row)."""
    width = tf.shape(sequence)[-1]
    flat = tf.reshape(sequence, [-1, width])
    if pooling in ("cls", "pooled"):
        first = tf.gather(flat, inputs["text_starts"])
        return pooler(first) if pooling == "pooled" else first
    texts = tf.shape(inputs["text_starts"])[0]
    segments = tf.reshape(inputs["segment_ids"], [-1])
    total = tf.math.unsorted_segment_sum(flat, segments, texts + 1)[1:]
    count = tf.math.unsorted_segment_sum(tf.ones_like(segments, flat.dtype), segments, texts + 1)[1:]
    return total / tf.maximum(count, 1.0)[:, tf.newaxis]


class PackedClassifier(keras.Model):
    """Packed inputs (see the module) -> one row of logits per text, through `classifier`'s layers (a
    transformer.build_classifier model on a native tf-models BertEncoder named "encoder")."""

    def __init__(self, classifier: keras.Model, pooling: str, **kwargs):
        super().__init__(name="packed_classifier", **kwargs)
        self.classifier = classifier
        self.pooling = pooling
        encoder = classifier.get_layer("encoder")
        # The embeddings' dropout: the one Dropout among the encoder's own layers (the blocks hold theirs).
        self._embedding_dropout = next(layer for layer in encoder.layers if isinstance(layer, keras.layers.Dropout))

    def call(self, inputs, training=None):
        encoder = self.classifier.get_layer("encoder")
        word_ids, positions = inputs["input_word_ids"], inputs["position_ids"]
        words = encoder._embedding_layer(word_ids)
        table = encoder._position_embedding_layer._position_embeddings
        embeddings = words + tf.cast(tf.gather(table, positions), words.dtype)
        embeddings = embeddings + encoder._type_embedding_layer(tf.zeros_like(word_ids))
        embeddings = encoder._embedding_norm_layer(embeddings)
        embeddings = self._embedding_dropout(embeddings, training=training)
        if hasattr(encoder, "_embedding_projection"):
            embeddings = encoder._embedding_projection(embeddings)
        data, mask = embeddings, attention_mask(inputs["segment_ids"], embeddings.dtype)
        for layer in encoder._transformer_layers:
            data = layer([data, mask], training=training)
        features = pool_texts(data, inputs, self.pooling, encoder._pooler_layer)
        for name in HEAD_LAYERS:
            layer = next((layer for layer in self.classifier.layers if layer.name == name), None)
            if layer is not None:
                features = layer(features, training=training)
        return features
