"""tf-keras (Keras 2) is the Keras of the whole project, including TF Hub layers."""
import os
import subprocess
import sys

import tf_keras

from tfclf._backend import hub, keras, tf


def test_legacy_keras_is_selected():
    assert os.environ["TF_USE_LEGACY_KERAS"] == "1"
    assert keras is tf_keras
    assert tf.keras.layers.Dense is tf_keras.layers.Dense  # tf.keras resolves to Keras 2


def test_hub_keras_layer_is_a_tf_keras_layer():
    assert issubclass(hub.KerasLayer, tf_keras.layers.Layer)


def test_project_models_are_tf_keras_models(toy_csv, small_config):
    from tfclf import data, models
    config = small_config(toy_csv)
    splits = data.prepare(data.load(config.data)[0], config.data, 0)
    model = models.build(config.model, 2, 8, splits.train["text"])
    assert isinstance(model, tf_keras.Model)


def test_backend_set_in_one_place():
    root = os.path.join(os.path.dirname(__file__), "..", "tfclf")
    setters = [name for name in os.listdir(root) if name.endswith(".py")
               and 'TF_USE_LEGACY_KERAS"] = ' in open(os.path.join(root, name)).read()]
    assert setters == ["_backend.py"]


def test_importing_tensorflow_first_is_caught():
    code = "import tensorflow, tfclf"
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode != 0 and "TF_USE_LEGACY_KERAS" in result.stderr
