"""Closed-loop load levels against `tfclf serve` on 127.0.0.1 (`tfclf bench-serve`, tfclf/bench_serve.py).

For each batching setting (on: --max-batch-size, off: 1) one `tfclf serve` process; for each concurrency that
many closed-loop clients (each sends a request, waits for the answer, sends the next) for `seconds`, at most
`max_requests` per level: requests and texts per second, p50/p95/p99 latency and errors.

    report = bench("saved_models/spam", concurrency=(1, 8, 32, 128), seconds=10)
"""
import asyncio
import json
import os
import sys
import time

from tfclf.serving import client


async def _level(port: int, path: str, concurrency: int, seconds: float, max_requests: int, texts: list,
                 texts_per_request: int) -> dict:
    latencies, errors, sent = [], 0, 0
    deadline = time.perf_counter() + seconds

    async def closed_loop(index):
        nonlocal errors, sent
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline and sent < max_requests:
                sent += 1
                first = sent * 7 + index
                chosen = [texts[(first + offset) % len(texts)] for offset in range(texts_per_request)]
                body = json.dumps({"instances": chosen}).encode()
                started = time.perf_counter()
                status, _, keep_alive = await client.post(reader, writer, path, body)
                latencies.append(time.perf_counter() - started)
                errors += status != 200
                if not keep_alive:
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
        finally:
            writer.close()
    started = time.perf_counter()
    await asyncio.gather(*(closed_loop(index) for index in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {"concurrency": concurrency, "requests": len(latencies), "errors": errors, "seconds": round(elapsed, 3),
            "requests_per_second": round(len(latencies) / elapsed, 1),
            "texts_per_second": round(len(latencies) * texts_per_request / elapsed, 1), **client.percentiles(latencies)}


def bench(model: str, concurrency=(1, 8, 32, 128), seconds: float = 5.0, max_requests: int = 20000,
          batching=("on", "off"), max_batch_size: int = 32, batch_timeout_ms: float = 5.0,
          num_batch_threads: int = 1, texts_per_request: int = 1) -> dict:
    """{"runs": [{batching, max_batch_size, concurrency, requests, errors, requests_per_second, p50_ms, ...}]}"""
    name = os.path.basename(os.path.normpath(model))
    texts, runs = client.sample_texts(), []
    for setting in batching:
        size = max_batch_size if setting == "on" else 1
        process, port = client.start_server(model, size, batch_timeout_ms, num_batch_threads)
        try:  # a warm-up at the highest concurrency first, not reported (first calls of new batch shapes)
            asyncio.run(_level(port, f"/v1/models/{name}:predict", max(concurrency), min(seconds, 2.0), max_requests,
                               texts, texts_per_request))
            for level in concurrency:
                result = asyncio.run(_level(port, f"/v1/models/{name}:predict", level, seconds, max_requests, texts,
                                            texts_per_request))
                runs.append({"batching": setting, "max_batch_size": size, **result})
                print(json.dumps(runs[-1]), file=sys.stderr)
        finally:
            client.stop_server(process)
    return {"model": os.path.abspath(model), "seconds_per_level": seconds, "max_requests_per_level": max_requests,
            "batch_timeout_ms": batch_timeout_ms, "num_batch_threads": num_batch_threads,
            "texts_per_request": texts_per_request, **client.machine(), "runs": runs}
