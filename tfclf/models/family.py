"""What every model family answers for the stages, and the registry from encoder name to family.

A family is one object per run (bag-of-words, recurrent, TF Hub transformer, KerasHub
transformer: the one Keras 3 family): the stages ask it how texts become model inputs, how long
they are, how the model is built and how it becomes a raw-string model for export.
Nothing outside the families tests the kind of model. This module imports no
TensorFlow; `family_for` imports the family's own module, which does.

    >>> family_for("bow").length_unit
    'words'
"""
import importlib
import typing

import numpy as np

from tfclf import choices


class Family:
    """Base of the families. Subclasses build the model; the defaults here suit raw-string models.

    Attributes come from `choices.FAMILIES`: `tokenized` (the input pipeline makes token ids),
    `length_unit` and `lr` (the default when the config leaves it 0)."""

    max_seq_len = 0  # 0: no limit (a transformer's position embeddings set one)
    reserved_tokens = 0  # units of the sequence cap that are not the text's ([CLS] and [SEP] for BERT)

    def __init__(self, encoder: str):
        self.encoder = encoder
        self.entry = choices.encoder_entry(encoder)
        spec = choices.FAMILIES[self.entry["family"]]
        self.name = self.entry["family"]
        self.tokenized, self.length_unit = spec["tokenized"], spec["length_unit"]
        # An encoder's own defaults (choices.ENCODERS) win over its family's.
        self.lr = self.entry.get("lr", spec["lr"])  # how long to train is adaptive (--epochs 0), not per family

    def resolve(self, model_config):
        """The model config with everything the family looks up filled in (may do I/O)."""
        return model_config

    def text_lengths(self, model_config, texts) -> np.ndarray:
        """Length of each text in `length_unit`."""
        return np.array([len(text.split()) for text in texts], dtype=np.int32)

    def input_fn(self, model_config, seq_len: int, fixed_shape: bool = False):
        """A tf.data map over (texts, labels[, weights]) batches, or None when the model takes strings."""
        return None

    def window_fn(self, model_config, seq_len: int):
        """With --long-text chunk (training on every window): a tf.data map from a batch of (texts, labels[,
        weights]) to one example per window, each with its text's label and weight; else None. Here: windows
        of whitespace words, for the families whose models take strings."""
        if not trains_on_windows(model_config):
            return None
        from tfclf._backend import tf
        from tfclf.models import windows
        width, stride = windows.window_geometry(seq_len, self.reserved_tokens, model_config.chunk_stride)

        def split(texts, *columns):
            pieces, text_ids = windows.window(texts, width, stride)
            return (pieces,) + tuple(tf.gather(column, text_ids) for column in columns)
        return split

    def packs(self, model_config, train_config, train_lengths, seq_len: int) -> bool:
        """Whether training and scoring pack several texts per row (--pack; transformer.HubTransformer)."""
        return False

    def build(self, model_config, train_config, num_classes: int, seq_len: int, train_texts):
        """The trainable Keras model (float32 logits), built inside the caller's strategy scope."""
        raise NotImplementedError

    def graph_precision_rewrite(self, model_config, train_config) -> bool:
        """Whether mixed precision needs TensorFlow's graph rewrite: the Keras policy cannot reach the
        model's float32 graph (a SavedModel encoder)."""
        return False

    def serving_model(self, model, model_config, seq_len: int):
        """Strings -> logits: the model the export wraps (and, with --long-text chunk, what scores validation
        and test texts: each text's word windows through `model`, their logits aggregated)."""
        if model_config.long_text != "chunk":
            return model
        from tfclf._backend import keras, tf
        from tfclf.models import windows
        width, stride = windows.window_geometry(seq_len, self.reserved_tokens, model_config.chunk_stride)
        texts = keras.Input(shape=(), dtype=tf.string, name="text")
        pieces, text_ids = windows.Windows(width, stride, name="word_windows")(texts)
        logits = windows.Aggregate(model_config.chunk_aggregate, name="aggregate_windows")(
            [model(pieces), text_ids, texts])
        return keras.Model(texts, logits, name="document_classifier")

    # --- what training and export ask of the family's Keras (tf-keras here; models/kerashub/: Keras 3) ---
    def compile(self, model, train_config, learning_rate: float, total_steps: int, objective):
        """Compiles `model` with the configured optimizer and the task's objective (tasks/task.Objective: loss
        and metrics, built here in the model's Keras); returns the (head's) schedule."""
        from tfclf.training import fit
        return fit.compile_model(model, train_config, learning_rate, total_steps, objective)

    def keras_callbacks(self):
        """The `callbacks` module of the model's Keras (BackupAndRestore, TensorBoard, EarlyStopping)."""
        from tfclf._backend import keras
        return keras.callbacks

    def raw_text_model(self, model, model_config, seq_len: int, clean_steps: tuple):
        """Strings -> logits with the run's cleaning in front: what the export saves."""
        from tfclf.models import cleaning
        return cleaning.with_cleaning(self.serving_model(model, model_config, seq_len), clean_steps)


class Pipeline(typing.Protocol):
    """The preprocessing of a tokenizing family, for tf.data: the one shape of TF Hub's
    (transformer.TextEncoderPipeline) and KerasHub's (kerashub/preprocessing.Preprocessing)."""

    def lengths(self, texts) -> np.ndarray:
        """Tokens per text, special tokens included."""

    def map_fn(self, seq_len: int, dynamic: bool = True):
        """A tf.data map (texts, labels[, weights]) -> (packed inputs, labels[, weights]), padded to the
        batch's longest text (`dynamic`, layers.trim_padding) or to seq_len (one shape, for XLA)."""


class TokenizingFamily(Family):
    """A family whose preprocessing model tokenizes in tf.data: one Pipeline per preprocessing handle, loaded
    once per family object. Subclasses say how a pipeline is made (`make_pipeline`)."""

    def __init__(self, encoder: str):
        super().__init__(encoder)
        self._pipelines = {}

    def make_pipeline(self, preprocess_handle: str) -> Pipeline:
        raise NotImplementedError

    def pipeline(self, preprocess_handle: str) -> Pipeline:
        """The preprocessing for a handle, loaded once."""
        if preprocess_handle not in self._pipelines:
            self._pipelines[preprocess_handle] = self.make_pipeline(preprocess_handle)
        return self._pipelines[preprocess_handle]

    def text_lengths(self, model_config, texts) -> np.ndarray:
        return self.pipeline(model_config.preprocess_handle).lengths(texts)

    def input_fn(self, model_config, seq_len: int, fixed_shape: bool = False):
        return self.pipeline(model_config.preprocess_handle).map_fn(seq_len, dynamic=not fixed_shape)


def trains_on_windows(model_config) -> bool:
    """Whether training sees every window of a long text (--long-text chunk --chunk-train all)."""
    return model_config.long_text == "chunk" and model_config.chunk_train == "all"


def family_for(encoder: str) -> Family:
    """The family object of an encoder name from `choices.ENCODERS` (imports the family's module)."""
    if not choices.is_encoder(encoder):
        raise ValueError(f"--encoder {encoder!r} is unknown; see `tfclf list encoders`")
    module_name, class_name = choices.family_of(encoder)["class"].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        extra = EXTRAS.get(error.name)
        if extra is None:
            raise
        raise ValueError(f"--encoder {encoder}: needs the {error.name} package, which is not installed; install "
                         f"it with: pip install 'tfclf[{extra}]' (a checkout: pip install -r requirements.txt)") from None
    return getattr(module, class_name)(encoder)


# Packages of pyproject.toml's optional extras that a family's module imports -> the extra that installs them.
EXTRAS = {"keras_hub": "kerashub", "safetensors": "kerashub"}
