"""`tfclf bench-serve --soak`: many requests, some broken on purpose, every answer checked, memory watched.

One `tfclf serve` (batching on) gets `requests` requests from closed-loop clients on 127.0.0.1; a share
`malformed` of them are broken in one of several ways (MALFORMED) and must be answered 4xx; every other one
holds 1-3 texts, in the row or the columnar format, and must be answered 200 with the predictions the
export itself gives for those texts (tfclf.serving.predict on export.load, computed here first). The
server's RSS is read from /proc every second; the report compares its mean over the first and the last
minute. Bounded by `requests` and `max_seconds`.
"""
import asyncio
import json
import os
import random
import threading
import time

import numpy as np

from tfclf.serving import client, rest, versions

# name -> (path after /v1/models/ with {name} for the model, body bytes): each must be answered 4xx.
MALFORMED = {
    "not_json": ("{name}:predict", b"not json"),
    "unknown_field": ("{name}:predict", b'{"texts": ["a"]}'),
    "number_for_text": ("{name}:predict", b'{"instances": ["a", 7]}'),
    "null_for_text": ("{name}:predict", b'{"inputs": {"text": [null]}}'),
    "invalid_utf8": ("{name}:predict", b'{"instances": ["caf\xe9"]}'),
    "body_too_large": ("{name}:predict", b'{"instances": ["' + b"x" * rest.Limits().max_body_bytes + b'"]}'),
    "too_many_texts": ("{name}:predict", json.dumps({"instances": ["a"] * (rest.Limits().max_texts + 1)}).encode()),
    "other_model": ("other-{name}:predict", b'{"instances": ["a"]}'),
    "missing_version": ("{name}/versions/999:predict", b'{"instances": ["a"]}'),
    "path_escape": ("..%2F..%2F{name}:predict", b'{"instances": ["a"]}'),
}
TOLERANCE = 1e-5  # probabilities: the server batches texts differently from the reference call (padding)


def texts_pool(count: int = 200) -> list:
    return [*client.sample_texts(count), "", "é 😀 ünïcode", " ".join(client.sample_texts(12, seed=1))]


def plan(requests: int, malformed: float, pool_size: int, seed: int = 0) -> list:
    """(kind, text indices, row format) per request: kind None for a valid one."""
    rng, kinds = random.Random(seed), sorted(MALFORMED)
    return [(rng.choice(kinds), [], True) if rng.random() < malformed else
            (None, [rng.randrange(pool_size) for _ in range(rng.randint(1, 3))], rng.random() < 0.5)
            for _ in range(requests)]


class RssSampler:
    """The process's resident set size, read from /proc/<pid>/status every `interval` seconds."""

    def __init__(self, pid: int, interval: float = 1.0):
        self.pid, self.interval, self.samples = pid, interval, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _read(self) -> int:
        with open(f"/proc/{self.pid}/status", encoding="utf-8") as handle:
            line = next(line for line in handle if line.startswith("VmRSS:"))
        return int(line.split()[1]) * 1024

    def _run(self) -> None:
        started = time.perf_counter()
        while not self._stop.is_set():
            try:
                self.samples.append((round(time.perf_counter() - started, 2), self._read()))
            except (OSError, StopIteration):
                return
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)

    def summary(self) -> dict:
        seconds = self.samples[-1][0] if self.samples else 0.0
        first = [rss for second, rss in self.samples if second <= 60]
        last = [rss for second, rss in self.samples if second >= seconds - 60]
        mib = lambda values: round(float(np.mean(values)) / 2**20, 1) if values else 0.0  # noqa: E731
        return {"first_minute_mib": mib(first), "last_minute_mib": mib(last),
                "last_over_first": round(mib(last) / mib(first), 4) if first else 0.0,
                "max_mib": round(max((rss for _, rss in self.samples), default=0) / 2**20, 1),
                "seconds": seconds, "samples": self.samples}


def _check_answer(body: bytes, row_format: bool, indices: list, expected: dict) -> float:
    """The largest probability difference from the export's own; a ValueError for a wrong answer."""
    answer = json.loads(body)
    if row_format:
        rows = answer["predictions"]
        ids, probabilities = [row["class_id"] for row in rows], [row["probabilities"] for row in rows]
    else:
        ids, probabilities = answer["outputs"]["class_id"], answer["outputs"]["probabilities"]
    if ids != expected["class_id"][indices].tolist():
        raise ValueError(f"class ids {ids} != {expected['class_id'][indices].tolist()}")
    difference = float(np.max(np.abs(np.array(probabilities) - expected["probabilities"][indices])))
    if not difference <= TOLERANCE:
        raise ValueError(f"probabilities differ by {difference:.2e}")
    return difference


async def _clients(port: int, name: str, steps: list, pool: list, expected: dict, concurrency: int,
                   deadline: float) -> dict:
    tally = {"answered": 0, "correct": 0, "wrong": [], "not_4xx": [], "connection_errors": 0,
             "max_difference": 0.0, "latencies": [], "by_kind": {}}
    cursor = iter(range(len(steps)))

    async def closed_loop():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for index in cursor:
            if time.perf_counter() > deadline:
                break
            kind, indices, row_format = steps[index]
            if kind:
                path, body = MALFORMED[kind]
                path = path.format(name=name)
            else:
                chosen = [pool[i] for i in indices]
                path = f"{name}:predict"
                body = json.dumps({"instances": chosen} if row_format else {"inputs": {"text": chosen}}).encode()
            started = time.perf_counter()
            try:
                status, answer, keep_alive = await client.post(reader, writer, f"/v1/models/{path}", body)
            except (ConnectionError, asyncio.IncompleteReadError, ValueError, IndexError):
                tally["connection_errors"] += 1
                status, answer, keep_alive = None, b"", False
            tally["answered"] += status is not None
            if kind:
                counts = tally["by_kind"].setdefault(kind, {})
                counts[str(status)] = counts.get(str(status), 0) + 1
                if status is None or not 400 <= status < 500:
                    tally["not_4xx"].append((index, kind, status))
            elif status is not None:
                tally["latencies"].append(time.perf_counter() - started)
                try:
                    if status != 200:
                        raise ValueError(f"status {status}: {answer[:200]!r}")
                    difference = _check_answer(answer, row_format, indices, expected)
                    tally["max_difference"] = max(tally["max_difference"], difference)
                    tally["correct"] += 1
                except (ValueError, KeyError, TypeError) as error:
                    tally["wrong"].append((index, str(error)[:300]))
            if not keep_alive:
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()
    await asyncio.gather(*(closed_loop() for _ in range(concurrency)))
    return tally


def soak(model: str, requests: int = 20000, malformed: float = 0.05, concurrency: int = 32,
         max_seconds: float = 900, max_batch_size: int = 32, batch_timeout_ms: float = 5.0,
         num_batch_threads: int = 1) -> dict:
    from tfclf.serving import export, predict  # TensorFlow: the reference answers
    if requests < 1 or not 0 <= malformed < 1:
        raise ValueError("--requests must be >= 1 and --malformed in [0, 1)")
    found = versions.on_disk(model)
    pool = texts_pool()
    expected = predict.predict(export.load(found[max(found)]), pool, batch_size=64)
    steps = plan(requests, malformed, len(pool))
    name = os.path.basename(os.path.normpath(model))
    process, port = client.start_server(model, max_batch_size, batch_timeout_ms, num_batch_threads)
    try:
        with RssSampler(process.pid) as sampler:
            started = time.perf_counter()
            tally = asyncio.run(_clients(port, name, steps, pool, expected, concurrency, started + max_seconds))
            elapsed = time.perf_counter() - started
    finally:
        exit_code = client.stop_server(process)
    valid = sum(kind is None for kind, _, _ in steps)
    rss = sampler.summary()
    report = {"model": os.path.abspath(model), "requests": requests, "concurrency": concurrency,
              "max_batch_size": max_batch_size, "batch_timeout_ms": batch_timeout_ms,
              "seconds": round(elapsed, 1), "answered": tally["answered"],
              "requests_per_second": round(tally["answered"] / elapsed, 1),
              "valid": {"sent": valid, "correct": tally["correct"], "wrong": len(tally["wrong"]),
                        "wrong_examples": tally["wrong"][:5], "max_probability_difference": tally["max_difference"],
                        **client.percentiles(tally["latencies"])},
              "malformed": {"sent": requests - valid, "not_4xx": len(tally["not_4xx"]),
                            "not_4xx_examples": tally["not_4xx"][:5], "by_kind": tally["by_kind"]},
              "connection_errors": tally["connection_errors"], "server_exit_code": exit_code, **client.machine(),
              "rss": rss}
    report["passed"] = (tally["answered"] == requests and tally["correct"] == valid and not tally["not_4xx"]
                        and abs(rss["last_over_first"] - 1) <= 0.10)
    return report
