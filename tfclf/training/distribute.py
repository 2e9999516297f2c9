"""Choosing a tf.distribute strategy; the global batch is the user's, per-replica size is derived.

auto        MirroredStrategy over all visible GPUs when there are two or more, else the default strategy
default     one device
mirrored    MirroredStrategy over all GPUs, or over all logical CPU devices when there is no GPU
multiworker MultiWorkerMirroredStrategy; the cluster comes from TF_CONFIG; only the chief writes artifacts
"""
import json
import os

from tfclf._backend import tf

def make_strategy(name: str):
    """Call before any other TensorFlow work: multi-worker collectives must be configured at startup."""
    if name == "multiworker":
        if not os.environ.get("TF_CONFIG"):
            raise ValueError("--strategy multiworker needs TF_CONFIG (cluster and task) in the environment; "
                             "see https://www.tensorflow.org/guide/distributed_training#TF_CONFIG")
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    if name == "mirrored":
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    return tf.distribute.get_strategy()


def is_chief() -> bool:
    """True unless TF_CONFIG names this process a non-chief worker (worker 0 acts as chief without a chief task)."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = config.get("task", {})
    if not task:
        return True
    if task.get("type") == "chief":
        return True
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0 and "chief" not in config.get("cluster", {})


def worker() -> tuple:
    """(index, count) of this process among the TF_CONFIG cluster's training tasks (chief first, then the
    workers); (0, 1) without TF_CONFIG. Streamed data is divided among workers by it."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    cluster, task = config.get("cluster", {}), config.get("task", {})
    chiefs, workers = len(cluster.get("chief", [])), len(cluster.get("worker", []))
    if not task or chiefs + workers <= 1:
        return 0, 1
    index = 0 if task.get("type") == "chief" else chiefs + int(task.get("index", 0))
    return index, chiefs + workers


def per_replica_batch(global_batch: int, strategy) -> int:
    replicas = strategy.num_replicas_in_sync
    if global_batch % replicas:
        raise ValueError(f"--batch-size {global_batch} does not divide evenly over {replicas} replicas; "
                         f"use a multiple of {replicas}")
    return global_batch // replicas
