"""The Keras 3 classifier on a KerasHub backbone, and the raw-text model the export saves."""
import os

from tfclf._backend import tf  # first: selects tf-keras for the rest of tfclf before TensorFlow loads
import keras  # noqa: E402  Keras 3 (tf.keras is tf-keras)
import keras_hub  # noqa: E402

from tfclf.models import cleaning  # noqa: E402
from tfclf.models.kerashub.preprocessing import trim_padding  # noqa: E402
from tfclf.training import optimizers  # noqa: E402


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
        optimizers.apply_encoder_and_head(tape, loss, self.backbone_variables(), self.trainable_variables,
                                          self.encoder_optimizer, self.optimizer)
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
