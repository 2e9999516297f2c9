"""FusedAdamW: the same training as tf-keras' AdamW (losses, weights), dense lookup gradients, 2 replicas."""
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import repo_env
from tfclf._backend import keras, tf
from tfclf.training import optimizers

STEPS = 6


def _model(seed: int = 3):
    """An embedding lookup (a sparse gradient), a hidden layer and a head: the parts of a fine-tuned encoder."""
    keras.utils.set_random_seed(seed)
    ids = keras.Input([7], dtype="int32")
    hidden = keras.layers.Embedding(50, 8, name="word_embeddings")(ids)
    hidden = keras.layers.LayerNormalization(name="LayerNorm")(keras.layers.GlobalAveragePooling1D()(hidden))
    hidden = keras.layers.Dense(16, activation="gelu")(hidden)
    return keras.Model(ids, keras.layers.Dense(3)(hidden))


def _data():
    rng = np.random.default_rng(0)
    return rng.integers(0, 50, size=(8 * STEPS, 7)).astype("int32"), rng.integers(0, 3, size=8 * STEPS)


def _train(adamw, clip: float = 0.05):
    """Losses per step and final weights after STEPS steps of batch 8 with `adamw` (a class) under the
    recipe's settings: warm-up schedule, decay except LayerNorm/bias, global-norm clipping (small: it clips)."""
    model = _model()
    optimizer = adamw(learning_rate=optimizers.WarmupDecay(0.05, STEPS, 2), weight_decay=0.1, epsilon=1e-6,
                      global_clipnorm=clip)
    optimizer.exclude_from_weight_decay(var_names=optimizers.NO_DECAY)
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _data()
    history = model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=[_StepLosses()])
    return history.model.step_losses, model.get_weights()


class _StepLosses(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.model.step_losses = []

    def on_train_batch_end(self, batch, logs=None):
        self.model.step_losses.append(logs["loss"])


def _updated(adamw, steps: int = 4):
    """The variables after `steps` updates by `adamw` from the same gradients: a lookup's (repeated rows) and
    dense ones, clipped (their global norm is above 1), decayed except LayerNorm/bias, warm-up schedule."""
    rng = np.random.default_rng(1)
    variables = [tf.Variable(rng.normal(size=shape).astype("float32"), name=name)
                 for name, shape in (("table", [20, 4]), ("kernel", [4, 3]), ("bias", [3]), ("LayerNorm/gamma", [4]))]
    optimizer = adamw(learning_rate=optimizers.WarmupDecay(0.01, steps, 1), weight_decay=0.1, epsilon=1e-6,
                      global_clipnorm=1.0)
    optimizer.exclude_from_weight_decay(var_names=optimizers.NO_DECAY)
    for _ in range(steps):
        rows = rng.integers(0, 20, size=9)  # repeats likely: 9 draws of 20 rows
        gradients = [tf.IndexedSlices(tf.constant(rng.normal(size=(9, 4)), tf.float32), tf.constant(rows),
                                      tf.constant([20, 4]))]
        gradients += [tf.constant(rng.normal(size=v.shape), tf.float32) for v in variables[1:]]
        optimizer.apply_gradients(zip(gradients, variables))
    return [v.numpy() for v in variables]


def test_fused_adamw_updates_as_tf_keras_adamw():
    stock, fused = _updated(keras.optimizers.AdamW), _updated(optimizers.FusedAdamW)
    for after, expected in zip(fused, stock):
        np.testing.assert_allclose(after, expected, rtol=1e-5, atol=1e-7)
    assert not np.allclose(fused[0], _updated(keras.optimizers.AdamW, steps=3)[0])  # the last step counts


def test_fused_adamw_trains_as_tf_keras_adamw():
    stock_losses, stock_weights = _train(keras.optimizers.AdamW)
    fused_losses, fused_weights = _train(optimizers.FusedAdamW)
    np.testing.assert_allclose(fused_losses, stock_losses, rtol=1e-5)
    # Adam divides by the root of tiny second moments: rounding-level differences of near-zero gradients of
    # the 6 steps move a few weights by up to ~1e-3 of the learning rate (0.05); the rest agree to 1e-6.
    for fused, stock in zip(fused_weights, stock_weights):
        np.testing.assert_allclose(fused, stock, rtol=0, atol=1e-4)
    initial = _model().get_weights()
    assert all(not np.allclose(after, before) for after, before in zip(fused_weights, initial))  # all trained


def test_decay_skips_layer_norm_and_bias_only():
    model = _model()
    optimizer = optimizers.FusedAdamW(learning_rate=0.5, weight_decay=0.5)
    optimizer.exclude_from_weight_decay(var_names=optimizers.NO_DECAY)
    before = [v.numpy() for v in model.trainable_variables]
    optimizer.apply_gradients([(tf.zeros_like(v), v) for v in model.trainable_variables])  # decay alone
    for variable, value in zip(model.trainable_variables, before):
        decayed = not any(name in variable.name for name in optimizers.NO_DECAY)
        np.testing.assert_allclose(variable.numpy(), value * (1 - 0.25) if decayed else value, rtol=1e-6)


def test_lookup_gradient_becomes_dense_with_repeats_summed():
    table = tf.Variable(tf.ones([6, 2]))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.gather(table, [1, 4, 1]) * [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    gradient = tape.gradient(loss, table)
    assert isinstance(gradient, tf.IndexedSlices)
    dense, = optimizers.FusedAdamW(learning_rate=0.1, weight_decay=0.0)._deduplicate_sparse_grad([gradient])
    assert isinstance(dense, tf.Tensor) and dense.shape == (6, 2)  # one shape whatever the batch's tokens
    np.testing.assert_array_equal(dense.numpy(), [[0, 0], [6, 8], [0, 0], [0, 0], [3, 4], [0, 0]])


def test_tf_keras_gets_fused_adamw_and_keras_3_its_own():
    from tfclf import config as config_lib
    train = config_lib.from_flat({}).train
    assert type(optimizers.build(train, 1e-3, 10)[0]) is optimizers.FusedAdamW
    import keras as keras3
    assert not isinstance(optimizers.OPTIMIZERS["adamw"](keras3, 1e-3, train), optimizers.FusedAdamW)


TWO_REPLICAS = r"""
import json
import tfclf._backend
from tfclf._backend import tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import test_optimizers as t
from tfclf._backend import keras
from tfclf.training import optimizers
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
out = {}
for name, adamw in (("stock", keras.optimizers.AdamW), ("fused", optimizers.FusedAdamW)):
    with strategy.scope():
        losses, weights = t._train(adamw)
    out[name] = losses
print("RESULT " + json.dumps({**out, "replicas": strategy.num_replicas_in_sync, "single": t._train(optimizers.FusedAdamW)[0]}))
"""


@pytest.mark.slow  # a TensorFlow process with 2 logical devices (~35 s); the parity tests stay in the quick loop
def test_fused_adamw_under_mirrored_strategy_on_two_cpu_devices(tmp_path):
    import os
    env = repo_env()
    env["PYTHONPATH"] = os.path.dirname(os.path.abspath(__file__)) + os.pathsep + env.get("PYTHONPATH", "")
    result = subprocess.run([sys.executable, "-c", TWO_REPLICAS], capture_output=True, text=True, env=env,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads([line for line in result.stdout.splitlines() if line.startswith("RESULT ")][-1][7:])
    assert out["replicas"] == 2
    np.testing.assert_allclose(out["fused"], out["stock"], rtol=1e-5)
    np.testing.assert_allclose(out["fused"], out["single"], rtol=1e-4)  # 2 replicas of 4 = one batch of 8
