"""The one place that selects Keras 2 (tf-keras) and imports TensorFlow.

`hub.KerasLayer` only works with Keras 2, and TF >= 2.16 ships Keras 3 as
`tf.keras` unless TF_USE_LEGACY_KERAS=1 is set *before* TensorFlow is first
imported. Every tfclf module imports `tf`, `keras` and `hub` from here.
"""
import os
import sys
import warnings

if "tensorflow" in sys.modules and os.environ.get("TF_USE_LEGACY_KERAS") != "1":
    raise ImportError(
        "tensorflow was imported before tfclf with TF_USE_LEGACY_KERAS unset; "
        "import tfclf first or export TF_USE_LEGACY_KERAS=1")
os.environ["TF_USE_LEGACY_KERAS"] = "1"
# Keep TensorFlow's C++ log lines out of user output; on a machine without an NVIDIA driver
# also hide the one-line "failed call to cuInit" error every CPU-only start prints.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2" if os.path.exists("/proc/driver/nvidia") else "3")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402
with warnings.catch_warnings():  # tensorflow_hub 0.16.1 imports pkg_resources (setuptools is pinned < 81)
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
    import tensorflow_hub as hub  # noqa: E402
import tensorflow_text as text  # noqa: E402,F401  registers the ops BERT preprocessors need

import tfclf  # noqa: E402
tfclf.stop_if_interrupted()  # a Ctrl-C during these imports that one of them swallowed

tf.get_logger().setLevel("ERROR")  # hub.load's "compiled metrics" warnings are noise for users

__all__ = ["tf", "keras", "hub", "text"]
