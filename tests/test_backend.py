"""tf-keras (Keras 2) is the Keras of the whole project, including TF Hub layers."""
import os
import subprocess
import sys

import tf_keras

from conftest import build_model, repo_env
from tfclf._backend import hub, keras, tf


def test_legacy_keras_is_selected():
    assert os.environ["TF_USE_LEGACY_KERAS"] == "1"
    assert keras is tf_keras
    assert tf.keras.layers.Dense is tf_keras.layers.Dense  # tf.keras resolves to Keras 2


def test_hub_keras_layer_is_a_tf_keras_layer():
    assert issubclass(hub.KerasLayer, tf_keras.layers.Layer)


def test_project_models_are_tf_keras_models(toy_csv, small_config):
    from tfclf.data import splits as data
    config = small_config(toy_csv)
    splits = data.split(data.load(config.data)[0], config.data, 0)
    model = build_model(config.model, 2, 8, splits.train["text"])
    assert isinstance(model, tf_keras.Model)


def test_backend_set_in_one_place():
    root = os.path.join(os.path.dirname(__file__), "..", "tfclf")
    setters = [os.path.relpath(os.path.join(folder, name), root) for folder, _, names in os.walk(root)
               for name in names if name.endswith(".py")
               and 'TF_USE_LEGACY_KERAS"] = ' in open(os.path.join(folder, name)).read()]
    assert setters == ["_backend.py"]


def test_importing_tensorflow_first_is_caught():
    code = "import tensorflow, tfclf.jobs.training_run"
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode != 0 and "TF_USE_LEGACY_KERAS" in result.stderr


# Modules that must answer without TensorFlow: the config, the tables, the CLIs' flag parsing, the grid.
TENSORFLOW_FREE = ("tfclf", "tfclf.choices", "tfclf.config", "tfclf.cli", "tfclf.run", "tfclf.grid", "tfclf.bench",
                   "tfclf.predict", "tfclf.evaluate", "tfclf.import_hf", "tfclf.models.family",
                   "tfclf.studies.study", "tfclf.studies.engines", "tfclf.studies.results", "tfclf.data.splits",
                   "tfclf.training.hparams", "tfclf.evaluation.calibration", "tfclf.evaluation.thresholds",
                   "tfclf.evaluation.explain", "tfclf.evaluation.decision", "tfclf.evaluation.report_page")


def test_config_tables_grid_and_help_import_no_tensorflow():
    code = ("import sys, importlib\n"
            f"for name in {TENSORFLOW_FREE!r}: importlib.import_module(name)\n"
            "from tfclf import run\n"
            "try:\n    run.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras', 'keras'))\n"
            "print('LOADED', loaded)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=repo_env())
    assert result.returncode == 0, result.stderr
    assert "LOADED []" in result.stdout, result.stdout[-500:]
