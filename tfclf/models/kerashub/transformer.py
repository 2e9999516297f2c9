"""The KerasHub family: `--encoder kerashub:<preset>`, trained in Keras 3 (see the package's docstring)."""
import dataclasses
import warnings

from tfclf._backend import tf  # noqa: F401  first: selects tf-keras for the rest of tfclf before TensorFlow loads
import keras  # noqa: E402  Keras 3 (tf.keras is tf-keras)
import keras_hub  # noqa: E402

from tfclf.models import family  # noqa: E402
from tfclf.models.kerashub import classifier, preprocessing, presets, training  # noqa: E402
from tfclf.training import fit as fit_lib  # noqa: E402

# Keras 3 cannot count the batches of a length-grouped dataset ahead and says so at every epoch's end.
warnings.filterwarnings("ignore", message="Your input ran out of data", category=UserWarning)


class KerasHubTransformer(family.TokenizingFamily):
    """`--encoder kerashub:<preset>`: a KerasHub backbone with its preprocessor, trained in Keras 3."""

    max_seq_len = preprocessing.MAX_SEQ_LEN

    def resolve(self, model_config):
        """Records the preset's source (a local directory, or a KerasHub preset name) in config.json."""
        source = model_config.encoder_handle or presets.preset_source(self.entry["preset"])
        return dataclasses.replace(model_config, encoder_handle=source,
                                   preprocess_handle=model_config.preprocess_handle or source)

    def make_pipeline(self, preprocess_handle: str) -> preprocessing.Preprocessing:
        return preprocessing.Preprocessing(preprocess_handle)

    def build(self, model_config, train_config, num_classes, seq_len, train_texts):
        keras.utils.set_random_seed(train_config.seed)  # Keras 3's seed state is its own; tf-keras' is untouched
        policy = fit_lib.precision_policy(train_config.mixed_precision)
        backbone = presets.from_preset(keras_hub.models.Backbone, model_config.encoder_handle, dtype=policy)
        longest = getattr(backbone, "max_sequence_length", preprocessing.MAX_SEQ_LEN)
        if seq_len > longest:
            raise ValueError(f"--seq-len {seq_len}: the backbone has {longest} positions; give --seq-len {longest}")
        return classifier.build_classifier(backbone, model_config, num_classes)

    def compile(self, model, train_config, learning_rate, total_steps, objective):
        """The Keras 3 optimizer(s), the task's loss in a Keras 3 loss and its metrics built in Keras 3."""
        policy = _policy_of(model)
        if train_config.encoder_lr:
            learning_rate = train_config.head_lr or learning_rate
            encoder = model.backbone_variables()
            model.encoder_optimizer, _ = training.build_optimizer(train_config, train_config.encoder_lr, total_steps,
                                                         encoder, policy)
            model.encoder_optimizer.build(encoder)
        optimizer, schedule = training.build_optimizer(train_config, learning_rate, total_steps, model.trainable_variables,
                                              policy)
        model.compile(optimizer=optimizer, loss=training.Loss(objective.loss), metrics=objective.metrics(keras),
                      jit_compile=bool(train_config.xla))
        return schedule

    def keras_callbacks(self):
        return keras.callbacks

    def raw_text_model(self, model, model_config, seq_len, clean_steps):
        preprocessor = self.pipeline(model_config.preprocess_handle).at(seq_len)
        return classifier.RawTextModel(model, preprocessor, clean_steps)


def _policy_of(model) -> str:
    backbones = [layer for layer in model.layers if isinstance(layer, keras_hub.models.Backbone)]
    return backbones[0].dtype_policy.name if backbones else "float32"
