"""Distribution on CPU: MirroredStrategy over 2 logical CPU devices matches one device."""
import json
import os
import subprocess
import sys

import pytest

from conftest import toy_rows, write_csv, repo_env


TWO_CPUS = r"""
import json, sys
import tfclf._backend
from tfclf._backend import tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from tfclf import config
from tfclf.jobs import training_run
for values in json.loads(sys.argv[1]):
    result = training_run.train(config.from_flat(values))
    print("RESULT " + json.dumps(result.metrics["history"]["loss"]), flush=True)
"""


def _train(runs, tmp_path):
    """The runs one after another in one process with 2 logical CPU devices: [loss history per run], stdout."""
    result = subprocess.run([sys.executable, "-c", TWO_CPUS, json.dumps(runs)], capture_output=True, text=True,
                            env=repo_env(), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(l[7:]) for l in result.stdout.splitlines() if l.startswith("RESULT ")], result.stdout


@pytest.mark.slow
def test_mirrored_on_two_cpu_devices_matches_single_device_loss(tmp_path):
    data = write_csv(tmp_path / "toy.csv", toy_rows(96))
    base = {"data": data, "encoder": "bow", "epochs": 3, "batch_size": 16, "embedding_dim": 8, "lr": 0.02, "skip_export": True,
            "deterministic": True}
    # One process (a TensorFlow start less): the single-device run first, on the same 2-device configuration
    # (a run without a strategy uses one device whatever the process offers).
    (single, mirrored), log = _train([{**base, "strategy": "default", "out": str(tmp_path / "one")},
                                      {**base, "strategy": "mirrored", "out": str(tmp_path / "two")}], tmp_path)
    assert "MirroredStrategy: 2 replica(s), global batch 16, per replica 8" in log
    assert log.count("MirroredStrategy") == 1  # the first run was not mirrored
    # Epoch 1 is equal to 1e-6; later epochs drift by ~0.2% (dropout draws differ per replica).
    assert mirrored == pytest.approx(single, rel=5e-3)


def test_multiworker_without_tf_config_is_a_clear_error(tmp_path, capsys, monkeypatch):
    from tfclf import run
    monkeypatch.delenv("TF_CONFIG", raising=False)
    data = write_csv(tmp_path / "toy.csv", toy_rows(30))
    assert run.main(["--data", data, "--strategy", "multiworker", "--out", str(tmp_path / "r")]) == 2
    assert "needs TF_CONFIG" in capsys.readouterr().err
    assert not (tmp_path / "r.partial").exists()


WORKER = r"""
import json, sys
import tfclf._backend
from tfclf import config
from tfclf.jobs import training_run
for values in json.loads(sys.argv[1]):
    result = training_run.train(config.from_flat(values))
    print("RESULT " + json.dumps({"weights": result.metrics["weights_sha256"], "test": result.metrics["test"]}),
          flush=True)
"""


def _free_ports(count):
    import socket
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def _gzip_shards(directory, rows, count: int) -> str:
    import csv
    import gzip
    os.makedirs(directory)
    for shard in range(count):
        with gzip.open(os.path.join(directory, f"part-{shard}.csv.gz"), "wt", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label"])
            writer.writerows((row["text"], row["label"]) for row in rows[shard::count])
    return os.path.join(str(directory), "part-*.csv.gz")


@pytest.mark.slow
def test_two_local_workers_agree_and_only_the_chief_writes(tmp_path):
    """Two worker processes of one cluster run two jobs one after the other (the cluster and its collectives are
    set up once per process, as a long-lived worker would): in memory, then streamed, where each worker trains on
    2 of the 4 shards (its own half of the data), and they still agree. (Two processes per job before.)"""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    common = {"encoder": "bow", "epochs": 1, "batch_size": 16, "embedding_dim": 8, "strategy": "multiworker"}
    runs = [{**common, "data": write_csv(tmp_path / "toy.csv", toy_rows(64)), "stream": "off",
             "out": str(tmp_path / "run"), "export_dir": str(tmp_path / "models")},
            {**common, "data": _gzip_shards(tmp_path / "shards", toy_rows(240), 4), "stream": "on",
             "out": str(tmp_path / "streamed"), "export_dir": str(tmp_path / "models-streamed")}]
    processes = []
    for index in range(2):
        env = {**repo_env(),
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        processes.append(subprocess.Popen([sys.executable, "-c", WORKER, json.dumps(runs)], env=env, cwd=tmp_path,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [process.communicate(timeout=300) for process in processes]
    results = []
    for process, (stdout, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr[-3000:]
        results.append([json.loads(l[7:]) for l in stdout.splitlines() if l.startswith("RESULT ")])
    assert len(results[0]) == len(results[1]) == 2
    for chief, other in zip(*results):  # each job: the same weights and test metrics on both workers
        assert chief["weights"] == other["weights"] and chief["test"] == other["test"]
    assert sorted(os.listdir(tmp_path)) == ["models", "models-streamed", "run", "shards", "streamed", "toy.csv"]
    for index, (stdout, _) in enumerate(outputs):
        assert f"worker {index} of 2 trains on 2 of 4 file(s)" in stdout
    assert os.listdir(tmp_path / "models" / "run") == ["1"]
    assert os.listdir(tmp_path / "models-streamed" / "streamed") == ["1"]
