"""Shared fixtures: tiny datasets written to tmp_path, and a shrunk real config."""
import contextlib
import json
import os
import random
import shutil
import subprocess
import sys

import pytest

import tfclf._backend  # noqa: F401  selects tf-keras before anything imports TensorFlow
from tfclf import config as config_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def _op_determinism_off_after_each_test():
    """TensorFlow's op determinism is process-wide: a test whose run used --deterministic leaves it on, and a
    later test in the same worker that fits a model without a run (no seed_everything) would then fail on its
    unseeded dropout ("random ops must have a seed"). A run switches it itself (fit.seed_everything)."""
    yield
    from tensorflow.python.framework import config as tf_config  # no public "disable" in TF 2.20
    if tf_config.is_op_determinism_enabled():
        tf_config.disable_op_determinism()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """With TFCLF_TEST_CPU_LOG=FILE, one JSON line per test (setup, call and teardown): its wall seconds and the
    CPU seconds of this worker and of the subprocesses it waited for. The suite's budget is CPU seconds: wall
    time on a shared 2-core machine says little (notes/issue-27-suite.md)."""
    log = os.environ.get("TFCLF_TEST_CPU_LOG")
    if not log:
        yield
        return
    import resource
    import time

    def cpu(who):
        usage = resource.getrusage(who)
        return usage.ru_utime + usage.ru_stime
    start = (time.perf_counter(), cpu(resource.RUSAGE_SELF), cpu(resource.RUSAGE_CHILDREN))
    yield
    line = {"test": item.nodeid, "wall": round(time.perf_counter() - start[0], 2),
            "cpu": round(cpu(resource.RUSAGE_SELF) - start[1], 2),
            "children": round(cpu(resource.RUSAGE_CHILDREN) - start[2], 2)}
    with open(log, "a", encoding="utf-8") as handle:  # one short line per append: workers never interleave
        handle.write(json.dumps(line) + "\n")


def repo_env(**extra) -> dict:
    """The environment for a `python -m tfclf.*` subprocess: this checkout first on the import path."""
    path = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **extra}


class KilledAtFault(BaseException):
    """Stops a run in this process at a fault point, once its files were copied (`killed_at`)."""


@contextlib.contextmanager
def killed_at(point: str, directory, copy):
    """What SIGKILLing a run at fault point `point` (tfclf/faults.py) leaves: a run inside the block copies
    `directory` to `copy` as it is on disk at that point and stops there (a killed process writes nothing more).
    The block must reach the point."""
    from tfclf import faults
    real = faults.reached

    def reached(at):
        real(at)
        if at == point:
            shutil.copytree(directory, copy, symlinks=True)
            raise KilledAtFault
    with pytest.MonkeyPatch.context() as patch, pytest.raises(KilledAtFault):
        patch.setattr(faults, "reached", reached)
        yield


def interrupt_when_imported(args, cwd, module: str, signum) -> tuple:
    """Starts `python -m tfclf.run ARGS` (Ctrl-C at its default, as from a terminal, even under nohup), sends it
    `signum` as soon as it has imported `module` (read from its `-X importtime` log: a fixed point, not a
    delay, so a loaded machine changes nothing), and returns (exit code, stderr lines other than the log's)."""
    import signal
    process = subprocess.Popen([sys.executable, "-m", "tfclf.run", *args], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, cwd=cwd, env=repo_env(PYTHONPROFILEIMPORTTIME="1"),
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    log = []
    for line in process.stderr:
        log.append(line)
        if line.startswith("import time:") and line.rsplit("|", 1)[-1].strip() == module:
            process.send_signal(signum)
            break
    log += process.stderr.read().splitlines()
    code = process.wait(timeout=120)
    assert any(line.rsplit("|", 1)[-1].strip() == module for line in log), f"{module} never imported"
    return code, [line.rstrip() for line in log if not line.startswith("import time:")]


LOAD_WITHOUT_TFCLF = r"""
import json, sys
import tensorflow as tf, tensorflow_text  # noqa: F401  (BERT preprocessing ops)
for request in sys.stdin:
    path, texts = json.loads(request)
    serve = tf.saved_model.load(path).signatures["serving_default"]
    out = serve(text=tf.constant(texts))
    names = out["class_name"] if "class_name" in out else out["label_names"]  # single- / multi-label
    print("REPLY " + json.dumps({
        "p": out["probabilities"].numpy().tolist(), "name": [n.decode() for n in names.numpy()],
        "id": out["class_id"].numpy().tolist() if "class_id" in out else None,
        "mask": out["label_mask"].numpy().tolist() if "label_mask" in out else None, "outputs": sorted(out),
        "imported": [m for m in sys.modules if m.startswith(("tfclf", "tensorflow_hub", "keras_hub"))]}), flush=True)
"""
_TENSORFLOW_ONLY = {}


def tensorflow_only_predictions(path, texts) -> dict:
    """The export at `path` loaded and called on `texts` by a Python process that imported tensorflow and
    tensorflow_text only (no PYTHONPATH, no TF_USE_LEGACY_KERAS, its working directory empty): the proof that an
    export needs nothing of tfclf, tensorflow_hub or keras_hub ("imported" lists any of them it pulled in). One
    such process per test worker serves every export (it loads each anew from its path; a SavedModel carries
    its graph and weights, nothing of a previous one), so the suite pays one TensorFlow start, not one per export.
    Returns {"p", "name", "id" (single-label), "mask" (multi-label), "outputs", "imported"}."""
    import tempfile
    process = _TENSORFLOW_ONLY.get("process")
    if process is None or process.poll() is not None:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TF_USE_LEGACY_KERAS")}
        _TENSORFLOW_ONLY["log"] = tempfile.NamedTemporaryFile("w+", prefix="tensorflow-only-", suffix=".log")
        process = subprocess.Popen([sys.executable, "-c", LOAD_WITHOUT_TFCLF], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=_TENSORFLOW_ONLY["log"], text=True, env=env,
                                   cwd=tempfile.mkdtemp(prefix="tensorflow-only-"))
        _TENSORFLOW_ONLY["process"] = process
    process.stdin.write(json.dumps([str(path), list(texts)]) + "\n")
    process.stdin.flush()
    for line in process.stdout:
        if line.startswith("REPLY "):
            return json.loads(line[6:])
    process.wait()
    log = _TENSORFLOW_ONLY["log"]
    log.seek(0)
    raise AssertionError(f"the TensorFlow-only process failed on {path}:\n{log.read()[-3000:]}")


def pytest_sessionfinish(session):
    """Ends this worker's TensorFlow-only process and waits for it, so that its CPU time is counted (with
    TFCLF_TEST_CPU_LOG, as a line of its own: it served several tests)."""
    import resource
    process = _TENSORFLOW_ONLY.pop("process", None)
    if process is None:
        return
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    process.stdin.close()
    process.wait(timeout=60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if os.environ.get("TFCLF_TEST_CPU_LOG"):
        children = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        with open(os.environ["TFCLF_TEST_CPU_LOG"], "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"test": "tests/conftest.py::the TensorFlow-only process", "wall": 0.0,
                                     "cpu": 0.0, "children": round(children, 2)}) + "\n")


def build_model(model_config, *args):
    """The family's model, as stages/fitting.build makes it: build_model(model_config, [train_config,] num_classes,
    seq_len, train_texts)."""
    from tfclf.models import family
    train_config = args[0] if isinstance(args[0], config_lib.TrainConfig) else config_lib.TrainConfig()
    rest = args[1:] if isinstance(args[0], config_lib.TrainConfig) else args
    return family.family_for(model_config.encoder).build(model_config, train_config, *rest)

POSITIVE = "great wonderful excellent superb lovely brilliant happy fantastic".split()
NEGATIVE = "awful terrible horrible dreadful poor boring sad miserable".split()
FILLER = "the movie was a and it film story really quite very this".split()


def toy_rows(count: int = 60, seed: int = 0, classes=("neg", "pos"), filler: int = 4):
    """Linearly separable texts: each class has its own sentiment words plus shared filler."""
    rng = random.Random(seed)
    vocab = {"pos": POSITIVE, "neg": NEGATIVE, "neutral": ["okay", "fine", "average", "middling"]}
    rows = []
    for i in range(count):
        label = classes[i % len(classes)]
        words = rng.sample(FILLER, filler) + rng.sample(vocab.get(label, [f"{label}{k}" for k in range(4)]), 2)
        rng.shuffle(words)
        rows.append({"text": " ".join(words) + f" {i}", "label": label})
    return rows


def write_csv(path, rows, columns=("text", "label"), separator=","):
    import csv
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), delimiter=separator)
        writer.writeheader()
        for row in rows:
            writer.writerow({column: row.get(column, "") for column in columns})
    return str(path)


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    return str(path)


def write_folders(root, rows, split=None):
    for i, row in enumerate(rows):
        directory = os.path.join(root, split, row["label"]) if split else os.path.join(root, row["label"])
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, f"{i}.txt"), "w", encoding="utf-8") as handle:
            handle.write(row["text"])
    return str(root)


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist's --dist loadgroup (pytest.ini), the tests of a module that use one of its
    module-scoped fixtures (a trained model, an export) run on one worker, so each such fixture is built once
    in the whole run, not once per worker. Automatic, so new test files need no marks."""
    for item in items:
        definitions = getattr(item, "_fixtureinfo", None)
        if definitions is None or item.get_closest_marker("xdist_group"):
            continue
        if any(defs and defs[-1].scope == "module" for name, defs in definitions.name2fixturedefs.items()
               if name in item.fixturenames):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))


@pytest.fixture
def trials_in_process(monkeypatch):
    """Grid trials run by `run.main(["--config", ...])` in this process, one at a time, their output in the
    trial's log as before, instead of a `python -m tfclf.run` process each (a TensorFlow start per trial). For
    tests of what the grid does with trials; the processes themselves (dying with the grid, resuming after a
    kill, Ray tasks) are tested by test_grid's kill/resume and Ray tests, which keep them."""
    import contextlib
    import threading
    from tfclf import run
    from tfclf.studies import engines
    one_at_a_time = threading.Lock()

    def run_process(config_path, log_path, threads):
        with one_at_a_time, open(log_path, "a", encoding="utf-8") as log, contextlib.redirect_stdout(log), \
                contextlib.redirect_stderr(log):
            return run.main(["--config", config_path])
    monkeypatch.setattr(engines, "run_process", run_process)


@pytest.fixture
def toy_csv(tmp_path):
    return write_csv(tmp_path / "toy.csv", toy_rows())


@pytest.fixture(scope="session")
def toy_path(tmp_path_factory):
    """160 separable texts of 3 words each (one filler word), shared by the model-family tests."""
    return write_csv(tmp_path_factory.mktemp("toy") / "toy.csv", toy_rows(160, filler=1))


def shrunk_config(root, data_path, **overrides):
    """The real default config, shrunk: a toy file, 1 layer of everything, few epochs; outputs under root."""
    values = {"data": data_path, "encoder": "bow", "out": os.path.join(str(root), "run"), "epochs": 3,
              "batch_size": 8, "embedding_dim": 16, "vocab_size": 200, "lr": 0.02,
              "export_dir": os.path.join(str(root), "saved_models")}
    values.update(overrides)
    return config_lib.from_flat(values)


@pytest.fixture
def small_config(tmp_path):
    """shrunk_config under this test's tmp_path."""
    def make(data_path, **overrides):
        return shrunk_config(tmp_path, data_path, **overrides)
    return make


def built_once(tmp_path_factory, name: str, build):
    """`build(directory)`'s JSON result, built once per test run however many xdist workers ask: the first
    to take the lock builds it in a directory all workers of the run share (the parent of their base
    temporary directories), the others wait for it and read the result."""
    import fcntl
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # .../pytest-N/popen-gw0 -> .../pytest-N, the same for every worker of this run
    directory = root / "built_once" / name
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(str(directory) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = directory / "result.json"
        if not done.exists():
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir()
            result = build(directory)
            (directory / "result.tmp").write_text(json.dumps(result))
            os.replace(directory / "result.tmp", done)
        return json.loads(done.read_text())


@pytest.fixture(scope="session")
def tiny_hub(tmp_path_factory):
    """A 2-layer, width-32 BERT with a vocabulary covering the toy words, exported in TF Hub format
    through the real importer: {"encoder": dir, "preprocess": dir}; built once for both xdist workers."""
    def build(root):
        import hf_fixtures
        from tfclf.models import hf_checkpoint
        vocab = hf_fixtures.VOCAB + sorted(set(POSITIVE + NEGATIVE + FILLER) - set(hf_fixtures.VOCAB)) + \
            [str(i) for i in range(10)]
        hf_fixtures.write_tiny_bert(root / "hf", hidden=32, heads=2, intermediate=64, positions=64, vocab=vocab,
                                    scale=0.1)
        return hf_checkpoint.import_checkpoint(str(root / "hf"), str(root / "hub"), seq_length=32)
    return built_once(tmp_path_factory, "tiny_hub", build)


def hparams_table(logdir) -> dict:
    """What TensorBoard's HParams dashboard shows for `logdir`, read by TensorBoard's own event multiplexer
    and HParams plugin: {"experiments": runs holding an experiment, "differs": hyper-parameters that differ,
    "metrics": [(run, tag)], "sessions": {session run: {"hparams": {...}, "metrics": {(run, tag): value}}}}."""
    from google.protobuf import json_format
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import api_pb2, backend_context, list_session_groups, metadata
    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, str(logdir))
    plugin = backend_context.Context(base_plugin.TBContext(logdir=str(logdir), multiplexer=multiplexer,
                                                           data_provider=provider))
    request_context = context.RequestContext()
    tags = plugin.hparams_metadata(request_context, "")
    experiment = plugin.experiment_from_metadata(request_context, "", True, tags, None)
    request = api_pb2.ListSessionGroupsRequest(allowed_statuses=list(api_pb2.Status.values()), slice_size=100)
    response = list_session_groups.Handler(request_context, plugin, "", request).run()
    sessions = {session.name: {"hparams": {name: json_format.MessageToDict(value) for name, value in group.hparams.items()},
                               "metrics": {(value.name.group, value.name.tag): value.value
                                           for value in session.metric_values}}
                for group in response.session_groups for session in group.sessions}
    return {"experiments": sorted(run for run, run_tags in tags.items() if metadata.EXPERIMENT_TAG in run_tags),
            "differs": sorted(info.name for info in experiment.hparam_infos if info.differs),
            "metrics": [(info.name.group, info.name.tag) for info in experiment.metric_infos],
            "sessions": sessions}
