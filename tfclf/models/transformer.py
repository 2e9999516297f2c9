"""Classifiers on TF Hub BERT-family encoders: tokenization for tf.data, the model, the raw-string model.

Training tokenizes in the input pipeline (the preprocessing model's `tokenize`
and `bert_pack_inputs`, per batch, in parallel) and pads each batch only to its
longest member; the exported model puts the same preprocessing in front of the
classifier, so it takes raw strings.
"""
import numpy as np

import dataclasses

from tfclf._backend import hub, keras, tf
from tfclf.models import family, layers, packing, tfhub, windows
from tfclf.training import optimizers

INPUT_NAMES = ("input_word_ids", "input_mask", "input_type_ids")
MAX_SEQ_LEN = 512  # BERT-family position embeddings
RESERVED = 2  # [CLS] and [SEP]


class TextEncoderPipeline:
    """Loads the preprocessing SavedModel once; maps text batches to packed, trimmed token ids."""

    def __init__(self, preprocess_handle: str):
        self.handle = tfhub.resolve(preprocess_handle)
        self.preprocessor = hub.load(self.handle)

    def lengths(self, texts) -> np.ndarray:
        """Tokens per text including [CLS] and [SEP]."""
        lengths = []
        for start in range(0, len(texts), 512):
            batch = tf.constant(np.asarray(texts[start:start + 512], dtype=object).astype(str))
            tokens = self.preprocessor.tokenize(batch).merge_dims(-2, -1)
            lengths.append(tokens.row_lengths().numpy() + 2)
        return np.concatenate(lengths)

    def map_fn(self, seq_len: int, dynamic: bool = True, truncate: str = "head"):
        """(texts, labels[, weights]) -> (dict of int32 [batch, <=seq_len], labels[, weights]), padded to the
        batch's longest text (`dynamic`), or always to seq_len (one shape: what XLA needs to compile only once).
        A longer text keeps its `truncate` side (windows.keep_units; packing itself keeps the head)."""
        def tokenize(texts, *labels):
            tokens = self.preprocessor.tokenize(texts)
            if not windows.keeps_head(truncate):
                tokens = windows.keep_units(tokens.merge_dims(-2, -1), seq_len - RESERVED, truncate)
            packed = self.preprocessor.bert_pack_inputs([tokens], seq_length=seq_len)
            return (_inputs(packed, dynamic),) + labels
        return tokenize

    def pack_fn(self, seq_len: int, row_length: int, truncate: str = "head", row_multiple: int = 1):
        """(texts, labels[, weights]) -> (packed inputs (models/packing.py), labels[, weights]): each text cut to
        `seq_len` tokens with its [CLS] and [SEP] as bert_pack_inputs makes them, the batch's texts packed
        first-fit into rows of `row_length` (>= seq_len); labels and weights stay one per text."""
        probe = self.preprocessor.tokenize(tf.constant(["a"])).merge_dims(-2, -1)
        special = self.preprocessor.bert_pack_inputs([probe[:, :0]], seq_length=2)["input_word_ids"][0]
        special = tf.cast(special, probe.dtype)  # [CLS], [SEP] of this vocabulary

        def pack(texts, *labels):
            tokens = self.preprocessor.tokenize(texts).merge_dims(-2, -1)
            tokens = windows.keep_units(tokens, seq_len - RESERVED, truncate)  # the head: tokens[:, :width]
            count = tf.shape(texts, out_type=tf.int64)[:1]
            edge = lambda token: tf.RaggedTensor.from_tensor(tf.fill(tf.concat([count, [1]], 0), token))
            tokens = tf.concat([edge(special[0]), tokens, edge(special[1])], axis=1)
            return (packing.pack_tokens(tokens, row_length, row_multiple),) + labels
        return pack

    def window_fn(self, seq_len: int, stride: int):
        """(texts, labels[, weights]) -> one example per window of `seq_len` (windows.split_windows), each with
        its text's label and weight, packed to seq_len (the batches are re-cut after it: see pipeline)."""
        width, stride = windows.window_geometry(seq_len, RESERVED, stride)

        def split(texts, *columns):
            pieces, text_ids = windows.split_windows(self.preprocessor.tokenize(texts).merge_dims(-2, -1),
                                                     width, stride)
            packed = self.preprocessor.bert_pack_inputs([pieces], seq_length=seq_len)
            return (_inputs(packed, dynamic=False),) + tuple(tf.gather(column, text_ids) for column in columns)
        return split


def _inputs(packed: dict, dynamic: bool) -> dict:
    return trim_padding(packed) if dynamic else {name: packed[name] for name in INPUT_NAMES}


def trim_padding(packed: dict) -> dict:
    """The packed inputs cut to the batch's longest row (layers.trim_padding)."""
    return layers.trim_padding(packed, "input_mask", INPUT_NAMES)


class TrimPadding(keras.layers.Layer):
    """`trim_padding` as a layer, for the exported raw-text model."""

    def call(self, packed):
        return trim_padding(packed)


def _pool(outputs, mask, pooling: str):
    if pooling == "pooled":
        return outputs["pooled_output"]
    sequence = outputs["sequence_output"]
    if pooling == "cls":
        return keras.layers.Lambda(lambda x: x[:, 0], name="cls_token")(sequence)
    return layers.MaskedMean(name="mean_pool")(sequence, mask=keras.layers.Lambda(
        lambda m: tf.cast(m, tf.bool), name="mask_to_bool")(mask))


def builds_natively(model_config, train_config) -> bool:
    """Whether the encoder is rebuilt in Python: only for a checkpoint tfclf imported, and with `--encoder-build
    auto` only where it pays, under --mixed-precision or --xla (in float32 both builds train at the same speed,
    measured on an AMD EPYC; see docs/speed.md)."""
    if model_config.encoder_build == "savedmodel" or tfhub.imported_config(model_config.encoder_handle) is None:
        return False
    return model_config.encoder_build == "native" or train_config.mixed_precision or train_config.xla


def build_classifier(model_config, num_classes: int, encoder_handle: str, native: bool = False) -> keras.Model:
    """Token ids -> logits: encoder (rebuilt in Python when `native`), pooling, dropout + dense (or an MLP head
    as seed 001)."""
    inputs = {name: keras.Input(shape=(None,), dtype=tf.int32, name=name) for name in INPUT_NAMES}
    trainable = not model_config.freeze_encoder
    if native:
        encoder = tfhub.native_encoder(encoder_handle, trainable=trainable, name="encoder")
    else:
        encoder = tfhub.load_hub(encoder_handle, trainable=trainable, name="encoder")
    outputs = encoder(inputs)
    features = _pool(outputs, inputs["input_mask"], model_config.pooling)
    if model_config.head == "mlp":  # seed 001: 768 -> 512 -> classes, ReLU and dropout
        features = keras.layers.Dropout(model_config.dropout, name="mlp_dropout")(features)
        features = keras.layers.Dense(model_config.head_units, activation="relu", name="mlp_hidden")(features)
    logits = layers.logits_head(features, model_config, num_classes,
                                initializer=keras.initializers.TruncatedNormal(stddev=0.02))
    return keras.Model(inputs, logits, name="transformer_classifier")


class DiscriminativeModel(keras.Model):
    """A Functional classifier whose encoder layer has its own optimizer (own learning rate),
    as seed 004's 1e-5 encoder / 1e-2 head. Each optimizer clips its own gradients."""

    encoder_optimizer = None

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x, y, y_pred, sample_weight)
        optimizers.apply_encoder_and_head(tape, loss, self.get_layer("encoder").trainable_variables,
                                          self.trainable_variables, self.encoder_optimizer, self.optimizer)
        return self.compute_metrics(x, y, y_pred, sample_weight)


def with_encoder_optimizer(classifier: keras.Model, encoder_optimizer) -> keras.Model:
    """The same graph and weights as `classifier`, trained with a separate encoder optimizer."""
    model = DiscriminativeModel(inputs=classifier.inputs, outputs=classifier.outputs, name=classifier.name)
    model.encoder_optimizer = encoder_optimizer
    return model


def raw_text_model(classifier: keras.Model, model_config, seq_len: int) -> keras.Model:
    """Strings -> logits: the preprocessing model's layers in front of the trained classifier; a long text
    keeps its --truncate side, or (--long-text chunk) each of its windows is scored and their logits
    aggregated, inside the graph (what the export serves and, for chunking, what scores held-out texts)."""
    preprocessor = hub.load(tfhub.resolve(model_config.preprocess_handle))
    texts = keras.Input(shape=(), dtype=tf.string, name="text")
    tokens = tfhub.load_hub(preprocessor.tokenize, name="tokenize")(texts)
    pack = tfhub.load_hub(preprocessor.bert_pack_inputs, arguments={"seq_length": seq_len}, name="pack")
    if model_config.long_text == "chunk":
        width, stride = windows.window_geometry(seq_len, RESERVED, model_config.chunk_stride)
        pieces, text_ids = windows.Windows(width, stride, name="windows")(tokens)
        logits = classifier(TrimPadding(name="trim_padding")(pack([pieces])))
        logits = windows.Aggregate(model_config.chunk_aggregate, name="aggregate_windows")([logits, text_ids, texts])
        return keras.Model(texts, logits, name="document_classifier")
    if not windows.keeps_head(model_config.truncate):
        tokens = windows.KeepUnits(seq_len - RESERVED, model_config.truncate, name="keep_tokens")(tokens)
    packed = TrimPadding(name="trim_padding")(pack([tokens]))
    return keras.Model(texts, classifier(packed), name="raw_text_classifier")


class HubTransformer(family.TokenizingFamily):
    """Every TF Hub BERT-family encoder (and the checkpoints imported into that format): tokenized in
    tf.data with length-grouped, per-batch padding; the export puts the preprocessing model in front."""

    max_seq_len = MAX_SEQ_LEN
    reserved_tokens = RESERVED

    def resolve(self, model_config):
        """Records the exact handles in config.json; may download or import (minilm_l6)."""
        handles = tfhub.resolve_handles(model_config.encoder, model_config.encoder_handle,
                                        model_config.preprocess_handle)
        return dataclasses.replace(model_config, encoder_handle=handles["encoder"],
                                   preprocess_handle=handles["preprocess"])

    def graph_precision_rewrite(self, model_config, train_config) -> bool:
        return not builds_natively(model_config, train_config)

    def make_pipeline(self, preprocess_handle: str) -> TextEncoderPipeline:
        return TextEncoderPipeline(preprocess_handle)

    def input_fn(self, model_config, seq_len: int, fixed_shape: bool = False):
        if family.trains_on_windows(model_config):  # the windows come packed (window_fn): only trim them
            return None if fixed_shape else (lambda packed, *labels: (trim_padding(packed),) + labels)
        return self.pipeline(model_config.preprocess_handle).map_fn(seq_len, dynamic=not fixed_shape,
                                                                    truncate=model_config.truncate)

    def packs(self, model_config, train_config, train_lengths, seq_len: int) -> bool:
        """--pack auto: pack where it pays, i.e. an imported checkpoint (it can be built natively; a TF Hub
        SavedModel takes no 3-D attention mask), one text per example (no --long-text chunk, no --encoder-lr),
        and batches whose packed rows would be at least two-thirds real tokens (first_fit simulated on the
        training lengths, [CLS] and [SEP] included): short texts in batches that fill several rows."""
        if model_config.pack == "off" or model_config.encoder_build == "savedmodel" or train_config.encoder_lr:
            return False
        if model_config.long_text == "chunk" or tfhub.imported_config(model_config.encoder_handle) is None:
            return False
        lengths = np.minimum(train_lengths, seq_len)
        carried = packing.carried_per_text(lengths, train_config.batch_size, pack_length(model_config, seq_len))
        return carried <= 1.5 * float(np.mean(lengths))

    def pack_fn(self, model_config, seq_len: int, fixed_shape: bool = False):
        """The tf.data map from text batches to packed rows (fixed_shape: rows rounded up to a multiple of 4,
        so that XLA compiles a few shapes, not one per batch)."""
        return self.pipeline(model_config.preprocess_handle).pack_fn(
            seq_len, pack_length(model_config, seq_len), model_config.truncate, 4 if fixed_shape else 1)

    def build_packed(self, model_config, train_config, num_classes, seq_len, train_texts):
        """The classifier built natively, run on packed rows (packing.PackedClassifier); the export unwraps it."""
        classifier = build_classifier(model_config, num_classes, model_config.encoder_handle, native=True)
        return packing.PackedClassifier(classifier, model_config.pooling)

    def window_fn(self, model_config, seq_len: int):
        if not family.trains_on_windows(model_config):
            return None
        return self.pipeline(model_config.preprocess_handle).window_fn(seq_len, model_config.chunk_stride)

    def build(self, model_config, train_config, num_classes, seq_len, train_texts):
        model = build_classifier(model_config, num_classes, model_config.encoder_handle,
                                 native=builds_natively(model_config, train_config))
        if train_config.encoder_lr:  # the encoder's optimizer is set by training.fit.compile_model
            model = with_encoder_optimizer(model, None)
        return model

    def serving_model(self, model, model_config, seq_len):
        if isinstance(model, packing.PackedClassifier):  # the same weights, one text per row
            model = model.classifier
        return raw_text_model(model, model_config, seq_len)


def pack_length(model_config, seq_len: int) -> int:
    """Tokens per packed row: --pack-length, at least the sequence cap (a text is never cut by packing)."""
    return max(model_config.pack_length, seq_len)
