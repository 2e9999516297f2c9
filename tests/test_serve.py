"""`tfclf serve`: TF Serving's REST API over an export's versions, tested through real HTTP on 127.0.0.1.

One tiny bag-of-words run (trained once) gives the parity and lean-export checks; the version and load
tests use Lambda models (exported in a second, no training) whose answers say which version served them.
"""
import base64
import contextlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from conftest import repo_env, toy_rows, write_csv
from tfclf import config as config_lib
from tfclf.jobs import training_run
from tfclf.serving import export, predict, server, versions as versions_lib

TEXTS = ["great wonderful film", "awful terrible boring", "", "the movie was a", "é 😀 ünïcode"]


# --- fixtures: a trained bow export, Lambda exports, a server in a thread ---


@pytest.fixture(scope="module")
def bow_run(tmp_path_factory):
    """A bag-of-words run whose weights dominate its export (4000 x 16 embeddings), trained once."""
    root = tmp_path_factory.mktemp("serve_bow")
    config = config_lib.from_flat({"data": write_csv(root / "t.csv", toy_rows(80)), "encoder": "bow",
                                   "out": str(root / "run"), "epochs": 2, "batch_size": 8, "embedding_dim": 16,
                                   "vocab_size": 4000, "lr": 0.02, "export_dir": str(root / "models")})
    return config, training_run.train(config)


def lambda_export(base, class_names) -> str:
    """The next version under `base`: a model scoring [length, 1.5] (long texts -> class 0), no training."""
    from tfclf._backend import keras, tf
    texts = keras.Input(shape=(), dtype=tf.string)
    logits = keras.layers.Lambda(lambda t: tf.stack([tf.cast(tf.strings.length(t), tf.float32),
                                                     1.5 * tf.ones_like(t, tf.float32)], axis=1))(texts)
    return export.export(keras.Model(texts, logits), class_names, str(base), {})


def call(url, method="GET", body=None, headers=None, timeout=60):
    """(status, parsed JSON or text, headers) of one request."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    path = "/" + url.split("//")[1].split("/", 1)[1]
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    connection.request(method, path, body=data, headers=headers or {})
    response = connection.getresponse()
    raw, status, response_headers = response.read(), response.status, dict(response.getheaders())
    connection.close()
    try:
        return status, json.loads(raw), response_headers
    except ValueError:
        return status, raw.decode("utf-8", "replace"), response_headers


class Running:
    def __init__(self, url, app_server, versions, log):
        self.url, self.server, self.versions, self.log = url, app_server, versions, log

    def predict(self, body, path=":predict", name="run"):
        return call(f"{self.url}/v1/models/{name}{path}", "POST", body)[:2]

    def model_calls(self) -> float:
        return self.server.metrics.model_calls.value()


def wait_for(condition, seconds=60.0, what="condition"):
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@contextlib.contextmanager
def serving(base, loader=versions_lib.Servable, **overrides):
    """server.Server on uvicorn in a thread, port 0, with the real Versions poller (as `tfclf serve` runs it)."""
    import uvicorn
    options = server.Options(model=str(base), name="run", port=0, **{"poll_seconds": 0, **overrides})
    lines = []
    versions = versions_lib.Versions(str(base), lambda **fields: lines.append(fields), loader=loader)
    app_server = server.Server(options, versions, log=lambda **fields: lines.append(fields))
    sock = server.bind("127.0.0.1", 0)
    uv = uvicorn.Server(uvicorn.Config(app_server.app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    versions.start(options.poll_seconds)
    thread.start()
    running = Running(f"http://127.0.0.1:{sock.getsockname()[1]}", app_server, versions, lines)
    try:
        wait_for(lambda: uv.started and versions.latest is not None, what="the first version")
        yield running
    finally:
        uv.should_exit = True
        thread.join(30)
        versions.stop()
        sock.close()


# --- item 1: lean artifacts ---


def _checkpoint_bytes(prefix_dir) -> int:
    return sum(os.path.getsize(os.path.join(folder, name)) for folder, _, files in os.walk(prefix_dir)
               for name in files)


def test_export_and_checkpoints_hold_weights_without_optimizer_state(bow_run):
    from conftest import build_model
    from tfclf._backend import tf
    config, result = bow_run
    model = build_model(config.model, 2, 16, [row["text"] for row in toy_rows(20)])
    weight_bytes = sum(weight.numpy().nbytes for weight in model.weights if isinstance(weight, tf.Variable))
    variables = os.path.join(result.export_path, "variables")
    assert _checkpoint_bytes(variables) <= 1.1 * weight_bytes, (_checkpoint_bytes(variables), weight_bytes)
    # The run directory keeps the evaluated weights once: trained/ (the best checkpoint goes when it is written).
    assert not os.path.exists(os.path.join(result.run_dir, "checkpoints"))
    for prefix in (os.path.join(variables, "variables"), os.path.join(result.run_dir, "trained", "weights")):
        names = [name for name, _ in tf.train.list_variables(prefix)]
        assert any("embeddings" in name for name in names)
        assert not [name for name in names if "optimizer" in name], prefix


# --- item 2: the REST API, answers equal to the export's ---


def test_predict_answers_equal_the_exports_own_in_both_formats(bow_run):
    _, result = bow_run
    expected = predict.predict(export.load(result.export_path), TEXTS)
    base = os.path.dirname(result.export_path)
    with serving(base) as running:
        status, rows = running.predict({"instances": TEXTS})
        assert status == 200 and len(rows["predictions"]) == len(TEXTS)
        status, named_rows = running.predict({"signature_name": "serving_default",
                                              "instances": [{"text": text} for text in TEXTS]})
        assert status == 200 and named_rows == rows
        encoded = [{"b64": base64.b64encode(text.encode()).decode()} for text in TEXTS]  # TF Serving's binary form
        assert running.predict({"instances": encoded}) == (200, rows)
        status, columns = running.predict({"inputs": {"text": TEXTS}}, path="/versions/1:predict")
        assert status == 200 and running.predict({"inputs": TEXTS})[1] == columns
    np.testing.assert_allclose([row["probabilities"] for row in rows["predictions"]], expected["probabilities"],
                               atol=1e-6)
    np.testing.assert_allclose(columns["outputs"]["probabilities"], expected["probabilities"], atol=1e-6)
    assert [row["class_name"] for row in rows["predictions"]] == [name.decode() for name in expected["class_name"]]
    assert columns["outputs"]["class_id"] == expected["class_id"].tolist()
    assert rows["predictions"][0]["class_name"] == "pos" and rows["predictions"][1]["class_name"] == "neg"


def test_status_and_metadata_follow_tf_serving(tmp_path):
    lambda_export(tmp_path / "m", ["long", "short"])
    with serving(tmp_path / "m") as running:
        status, body, _ = call(f"{running.url}/v1/models/run")
        assert (status, body) == (200, {"model_version_status": [
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]})
        assert call(f"{running.url}/v1/models/run/versions/1")[:2] == (200, body)
        status, metadata, _ = call(f"{running.url}/v1/models/run/metadata")
        assert status == 200 and metadata["model_spec"] == {"name": "run", "signature_name": "", "version": "1"}
        signature = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]
        assert signature["inputs"]["text"]["dtype"] == "DT_STRING"
        assert signature["inputs"]["text"]["tensor_shape"] == {"dim": [{"size": "-1", "name": ""}],
                                                                "unknown_rank": False}
        assert sorted(signature["outputs"]) == ["class_id", "class_name", "probabilities"]
        assert signature["method_name"] == "tensorflow/serving/predict"


# --- item 5 (operations): bad requests, paths, metrics, logs ---

BAD_REQUESTS = [  # (path after /v1/models/, body, status, words of the error)
    ("run:predict", b"not json", 400, "JSON Parse error"),
    ("run:predict", b'["a"]', 400, "expected a JSON object"),
    ("run:predict", {"texts": ["a"]}, 400, "unknown field"),
    ("run:predict", {}, 400, "Missing 'inputs' or 'instances'"),
    ("run:predict", {"instances": ["a"], "inputs": ["a"]}, 400, "both"),
    ("run:predict", {"instances": ["a", 7]}, 400, "instances[1]: expected a string"),
    ("run:predict", {"instances": [None]}, 400, "got null"),
    ("run:predict", {"instances": "a"}, 400, "expected a list"),
    ("run:predict", {"instances": []}, 400, "no texts"),
    ("run:predict", {"instances": [{"words": "a"}]}, 400, "only input is 'text'"),
    ("run:predict", {"inputs": {"sentence": ["a"]}}, 400, "only input is 'text'"),
    ("run:predict", {"inputs": {"text": [["a"]]}}, 400, "inputs.text[0]: expected a string"),
    ("run:predict", {"signature_name": "other", "instances": ["a"]}, 400, "not found in signature def"),
    ("run:predict", b'{"instances": ["caf\xe9"]}', 400, "not valid UTF-8"),
    ("run:predict", b'{"instances": ["\\ud800"]}', 400, "not valid UTF-8"),
    ("run:predict", {"instances": [{"b64": "a!"}]}, 400, "instances[0]: {\"b64\": ...} is not valid base64"),
    ("run:predict", {"instances": [{"text": {"b64": "/w=="}}]}, 400, "is not valid UTF-8"),
    ("run:predict", {"instances": ["a"] * 11}, 400, "--max-texts 10"),
    ("run:predict", {"instances": ["x" * 101]}, 400, "--max-text-chars 100"),
    ("run:predict", {"instances": ["x" * 90] * 9}, 413, "--max-body-bytes 800"),
    ("other:predict", {"instances": ["a"]}, 404, "Servable not found for request: Latest(other)"),
    ("run/versions/7:predict", {"instances": ["a"]}, 404, "Specific(run, 7)"),
    ("run/versions/x1:predict", {"instances": ["a"]}, 404, "not a version number"),
    ("run/versions/1/../../2:predict", {"instances": ["a"]}, 404, "Malformed request"),
    ("..%2F..%2Fsecret:predict", {"instances": ["a"]}, 404, "Malformed request"),
    ("%2e%2e:predict", {"instances": ["a"]}, 404, "Servable not found"),
    ("run/labels/stable:predict", {"instances": ["a"]}, 404, "Malformed request"),
    ("run", {"instances": ["a"]}, 405, "is not allowed"),
]


def test_bad_requests_get_a_4xx_json_error_and_the_server_keeps_serving(tmp_path):
    base = tmp_path / "models" / "run"
    lambda_export(base, ["long", "short"])
    lambda_export(tmp_path / "models" / "secret", ["x", "y"])  # beside the base path: never to be read
    loaded = []

    def recording_loader(version, path):
        loaded.append(path)
        return versions_lib.Servable(version, path)
    with serving(base, loader=recording_loader, limits=server.rest.Limits(800, 10, 100)) as running:
        for path, body, expected, words in BAD_REQUESTS:
            status, answer, headers = call(f"{running.url}/v1/models/{path}", "POST", body)
            assert (status, list(answer)) == (expected, ["error"]), (path, body, answer)
            assert words in answer["error"] and headers["content-type"] == "application/json", (path, answer)
        assert call(f"{running.url}/v1/models/run:predict")[0] == 405  # GET on predict
        assert call(f"{running.url}/v2/anything")[:2][0] == 404
        assert running.predict({"instances": ["abc", ""]}) == (200, {"predictions": [
            {"class_id": 0, "class_name": "long", "probabilities": pytest.approx([0.8175745, 0.1824255])},
            {"class_id": 1, "class_name": "short", "probabilities": pytest.approx([0.1824255, 0.8175745])}]})
        status, text, headers = call(f"{running.url}/monitoring/prometheus/metrics")
    assert loaded == [str(base / "1")]
    assert status == 200 and headers["content-type"].startswith("text/plain")
    assert f'tfclf_request_errors_total{{endpoint="predict",code="400"}} 19' in text
    assert 'tfclf_requests_total{endpoint="predict",code="200"} 1' in text
    for metric in ("tfclf_predict_latency_seconds_bucket", "tfclf_batch_size_bucket", "tfclf_queue_depth 0",
                   "tfclf_model_version 1", "tfclf_model_calls_total 1"):
        assert metric in text
    requests = [line for line in running.log if line.get("event") == "request"]
    assert len(requests) == len(BAD_REQUESTS) + 4  # one line per request, the metrics scrape too
    assert requests[0]["status"] == 400 and "JSON Parse error" in requests[0]["error"]
    assert all(json.dumps(line) for line in requests)


# --- item 3: dynamic batching ---


class SlowServable(versions_lib.Servable):
    """A real servable whose model call also sleeps, to hold requests in the queue."""
    delay = 1.0

    def predict(self, texts, batch_size):
        time.sleep(self.delay)
        return super().predict(texts, batch_size)


def _concurrently(count, send):
    barrier, answers = threading.Barrier(count), [None] * count

    def client(index):
        barrier.wait()
        answers[index] = send(index)
    threads = [threading.Thread(target=client, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return answers


@pytest.mark.parametrize("max_batch_size", [64, 1])
def test_concurrent_requests_are_merged_into_few_model_calls(tmp_path, max_batch_size):
    lambda_export(tmp_path / "m", ["long", "short"])
    with serving(tmp_path / "m", max_batch_size=max_batch_size, batch_timeout_ms=1000) as running:
        before = running.model_calls()
        answers = _concurrently(16, lambda index: running.predict({"instances": ["x" * index, "ab"]}))
        calls = running.model_calls() - before
    assert all(status == 200 for status, _ in answers)
    for index, (_, body) in enumerate(answers):  # each request gets its own rows back
        assert [row["class_name"] for row in body["predictions"]] == ["long" if index > 1 else "short", "long"]
    if max_batch_size == 1:
        assert calls == 16
    else:
        assert calls <= 3, calls


def test_a_full_queue_refuses_with_503_and_the_event_loop_stays_free(tmp_path):
    lambda_export(tmp_path / "m", ["long", "short"])
    with serving(tmp_path / "m", loader=SlowServable, max_batch_size=1, max_queued=2) as running:
        timings = {}

        def probe():  # while the model sleeps in its worker thread, status still answers at once
            time.sleep(0.3)
            started = time.perf_counter()
            timings["status"] = (call(f"{running.url}/v1/models/run")[0], time.perf_counter() - started)
        prober = threading.Thread(target=probe)
        prober.start()
        answers = _concurrently(8, lambda index: call(f"{running.url}/v1/models/run:predict", "POST",
                                                      {"instances": ["a"]}))
        prober.join()
        assert running.predict({"instances": ["a"]})[0] == 200  # and it serves again afterwards
    statuses = sorted(status for status, _, _ in answers)
    assert statuses.count(200) >= 3 and statuses.count(503) >= 1, statuses
    refused = [(body, headers) for status, body, headers in answers if status == 503]
    assert "server overloaded" in refused[0][0]["error"] and refused[0][1]["retry-after"] == "1"
    assert timings["status"][0] == 200 and timings["status"][1] < 0.5, timings  # a blocked loop: >= 0.7 s


# --- item 4: versions ---


def test_a_new_version_is_swapped_in_under_load_without_a_failed_request(tmp_path):
    base = tmp_path / "m"
    lambda_export(base, ["old-long", "old-short"])
    with serving(base, poll_seconds=0.2, max_batch_size=8, batch_timeout_ms=2) as running:
        stop, answers = threading.Event(), []

        def client():  # a closed loop, bounded in requests and time
            for _ in range(400):
                if stop.is_set():
                    return
                started = time.time()
                answers.append((started, *running.predict({"instances": ["abc"]})))
        clients = [threading.Thread(target=client) for _ in range(4)]
        for thread in clients:
            thread.start()
        time.sleep(0.5)
        lambda_export(base, ["new-long", "new-short"])  # version 2: staged, then renamed into place
        wait_for(lambda: running.versions.latest.version == 2, 30, "version 2")
        swapped = time.time()
        (base / "3").mkdir()  # a broken version 3: logged, and version 2 keeps serving
        (base / "3" / "saved_model.pb").write_bytes(b"not a SavedModel")
        wait_for(lambda: any(line.get("event") == "version_failed" for line in running.log), 30, "version 3 fails")
        time.sleep(0.3)
        stop.set()
        for thread in clients:
            thread.join(60)
        status = call(f"{running.url}/v1/models/run")[1]["model_version_status"]
    assert answers and all(code == 200 for _, code, _ in answers)
    names = [body["predictions"][0]["class_name"] for _, _, body in answers]
    assert "old-long" in names and names[-1] == "new-long" and set(names) == {"old-long", "new-long"}
    late = [body["predictions"][0]["class_name"] for started, _, body in answers if started > swapped]
    assert late and set(late) == {"new-long"}
    assert [(entry["version"], entry["state"], entry["status"]["error_code"]) for entry in status] == [
        ("3", "END", "UNKNOWN"), ("2", "AVAILABLE", "OK"), ("1", "END", "OK")]
    assert status[0]["status"]["error_message"]
    failed = [line for line in running.log if line.get("event") == "version_failed"]
    assert failed[0]["version"] == 3 and failed[0]["serving"] == 2


# --- the command: user errors, SIGTERM drains ---


def test_serve_command_refuses_bad_paths_and_flags_in_one_line(tmp_path):
    from tfclf import cli
    version = lambda_export(tmp_path / "m", ["a", "b"])
    for argv, words in ((["--model", str(tmp_path / "nothing")], "not a directory"),
                        (["--model", version], "pass its parent directory"),
                        (["--model", str(tmp_path)], "no numeric version directory"),
                        (["--model", str(tmp_path / "m"), "--max-batch-size", "0"], "--max-batch-size 0: must be >= 1")):
        result = subprocess.run([sys.executable, "-m", "tfclf.cli", "serve", *argv], capture_output=True, text=True,
                                env=repo_env(), timeout=120)
        assert result.returncode == cli.USER_ERROR_EXIT, result.stderr
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("tfclf: error: --") and words in result.stderr


def test_sigterm_drains_in_flight_requests_then_exits_0(tmp_path):
    lambda_export(tmp_path / "m", ["long", "short"])
    # A lone request waits up to --batch-timeout-ms for company: SIGTERM arrives while it is in flight.
    command = [sys.executable, "-m", "tfclf.serve", "--model", str(tmp_path / "m"), "--port", "0",
               "--batch-timeout-ms", "1500", "--poll-seconds", "0"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=repo_env())
    try:
        lines = []
        wait_for(lambda: lines.append(json.loads(process.stderr.readline())) or
                 lines[-1].get("event") == "version_available", 120, "the server to load")
        port = next(line["port"] for line in lines if line.get("event") == "listening")
        answer = {}
        sender = threading.Thread(target=lambda: answer.update(
            result=call(f"http://127.0.0.1:{port}/v1/models/m:predict", "POST", {"instances": ["abc"]})))
        sender.start()
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        sender.join(30)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert answer["result"][:2] == (200, {"predictions": [{"class_id": 0, "class_name": "long",
                                                            "probabilities": pytest.approx([0.8175745, 0.1824255])}]})
    rest = [json.loads(line) for line in process.stderr.read().splitlines() if line.startswith("{")]
    request = next(line for line in rest if line.get("event") == "request")
    assert request["status"] == 200 and request["path"] == "/v1/models/m:predict" and request["ms"] >= 1000
    assert rest[-1]["event"] == "stopped"


# slow: 17 s of load levels; the quick loop keeps the server through the request tests
@pytest.mark.slow
def test_bench_serve_reports_bounded_closed_loop_levels_and_plots_them(tmp_path):
    from tfclf import bench_serve
    lambda_export(tmp_path / "m", ["long", "short"])
    plot = tmp_path / "load.png"
    assert bench_serve.main(["--model", str(tmp_path / "m"), "--concurrency", "1,4", "--seconds", "0.5",
                             "--max-requests", "60", "--batching", "on", "--texts-per-request", "2",
                             "--output", str(tmp_path / "load.json"), "--plot", str(plot)]) == 0
    report = json.loads((tmp_path / "load.json").read_text())
    assert [(run["batching"], run["concurrency"]) for run in report["runs"]] == [("on", 1), ("on", 4)]
    for run in report["runs"]:
        assert 0 < run["requests"] <= 60 and run["errors"] == 0
        assert 0 < run["p50_ms"] <= run["p95_ms"] <= run["p99_ms"]
        assert run["texts_per_second"] == pytest.approx(2 * run["requests_per_second"], rel=0.01)
    assert report["cpu_count"] == os.cpu_count() and report["date"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# slow: 16 s; malformed requests get 4xx in the quick loop too (test_bad_requests_...)
@pytest.mark.slow
def test_soak_checks_every_answer_and_that_malformed_requests_get_4xx(tmp_path):
    from tfclf import bench_serve
    from tfclf.serving import soak
    lambda_export(tmp_path / "m", ["long", "short"])
    assert bench_serve.main(["--model", str(tmp_path / "m"), "--soak", "--requests", "300", "--malformed", "0.3",
                             "--concurrency", "6", "--output", str(tmp_path / "soak.json"),
                             "--plot", str(tmp_path / "soak.png")]) == 0
    report = json.loads((tmp_path / "soak.json").read_text())
    assert report["answered"] == 300 and report["connection_errors"] == 0 and report["server_exit_code"] == 0
    assert report["valid"]["correct"] == report["valid"]["sent"] > 150 and report["valid"]["wrong"] == 0
    assert report["malformed"]["not_4xx"] == 0 and len(report["malformed"]["by_kind"]) >= 6
    assert report["malformed"]["by_kind"]["body_too_large"].keys() <= {"413"}
    assert report["rss"]["first_minute_mib"] > 50 and report["rss"]["samples"] and report["passed"]
    # The check can fail: an answer that is not the export's own is caught.
    expected = {"class_id": np.array([0, 1]), "probabilities": np.array([[0.9, 0.1], [0.2, 0.8]])}
    answer = json.dumps({"predictions": [{"class_id": 1, "probabilities": [0.2, 0.8]}]}).encode()
    with pytest.raises(ValueError, match="class ids"):
        soak._check_answer(answer, True, [0], expected)
    answer = json.dumps({"outputs": {"class_id": [1], "probabilities": [[0.2, 0.79]]}}).encode()
    with pytest.raises(ValueError, match="probabilities differ"):
        soak._check_answer(answer, False, [1], expected)


def test_serve_without_its_extra_is_one_line_naming_it(monkeypatch, tmp_path):
    from tfclf.serving import server
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # `import uvicorn` now fails as if not installed
    with pytest.raises(ValueError, match=r"tfclf serve: needs the uvicorn package, which is not installed; install "
                                         r"it with: pip install 'tfclf\[serve\]'"):
        server.run(server.Options(model=str(tmp_path)))


# --- item 6: Ray Serve ---


def test_ray_without_ray_serve_is_one_line_naming_the_extra(monkeypatch, tmp_path, capsys):
    from tfclf import serve
    lambda_export(tmp_path / "m", ["long", "short"])
    monkeypatch.setitem(sys.modules, "ray.serve", None)  # `from ray import serve` now fails as if not installed
    assert serve.main(["--model", str(tmp_path / "m"), "--ray"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "tfclf: error: --ray: needs Ray Serve (the ray[serve] package), which is not installed; install it with: "
        "pip install 'tfclf[serve-ray]' (a checkout: pip install -r requirements.txt)"]


@pytest.mark.slow
def test_ray_serve_spreads_requests_over_two_replicas_with_the_exports_answers(tmp_path):
    pytest.importorskip("ray.serve")
    version = lambda_export(tmp_path / "m", ["long", "short"])
    texts = ["", "ab", "a much longer text than the others"]
    expected = predict.predict(export.load(version), texts)
    command = [sys.executable, "-m", "tfclf.serve", "--model", str(tmp_path / "m"), "--ray", "local", "--replicas",
               "2", "--replica-cpus", "0.5", "--port", "0", "--poll-seconds", "0"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                               env={**repo_env(), "RAY_ADDRESS": ""}, cwd=tmp_path)
    try:
        lines = []
        wait_for(lambda: lines.append(process.stderr.readline()) or '"listening"' in lines[-1] or not lines[-1],
                 300, "Ray Serve to deploy")
        assert '"listening"' in lines[-1], "".join(lines)[-2000:]
        url = f"http://127.0.0.1:{json.loads(lines[-1])['port']}/v1/models/m"
        answers = []
        for _ in range(30):  # Ray's proxy learns of the second replica shortly after the deployment is up
            answers += _concurrently(8, lambda index: call(f"{url}:predict", "POST", {"instances": texts}))
            if len({headers.get("x-tfclf-replica") for _, _, headers in answers}) == 2:
                break
            time.sleep(1)
        status = call(url)[:2]
        process.send_signal(signal.SIGTERM)
        assert process.wait(120) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert status == (200, {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]})
    assert all(code == 200 for code, _, _ in answers), answers[:2]
    assert len({headers["x-tfclf-replica"] for _, _, headers in answers}) == 2  # both replicas answered
    for _, body, _ in answers:
        np.testing.assert_allclose([row["probabilities"] for row in body["predictions"]], expected["probabilities"],
                                   atol=1e-6)
        assert [row["class_id"] for row in body["predictions"]] == expected["class_id"].tolist()
