"""`tfclf bench-serve --model saved_models/spam`: a bounded load test of `tfclf serve` on 127.0.0.1.

Starts `tfclf serve` on a free loopback port once per batching setting (on: --max-batch-size 32, off: 1),
then for each concurrency level runs that many closed-loop clients (each sends a request, waits for the
answer, sends the next) for --seconds, at most --max-requests per level, and prints one JSON object:
requests per second, p50/p95/p99 latency in milliseconds and errors for every (batching, concurrency).

    tfclf bench-serve --model saved_models/spam --seconds 5 --concurrency 1,8,32
"""
import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import numpy as np

from tfclf import cli

WORDS = "the movie was a great wonderful awful boring film story really quite very this and it".split()


def sample_texts(count: int = 256, seed: int = 0) -> list:
    """Texts of 3 to 60 words (short messages to paragraphs)."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 60))) for _ in range(count)]


async def _post(reader, writer, path: str, body: bytes) -> int:
    writer.write(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


async def _level(port: int, path: str, concurrency: int, seconds: float, max_requests: int, texts: list) -> dict:
    latencies, errors, sent = [], 0, 0
    deadline = time.perf_counter() + seconds

    async def client(index):
        nonlocal errors, sent
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline and sent < max_requests:
                sent += 1
                body = json.dumps({"instances": [texts[(sent * 7 + index) % len(texts)]]}).encode()
                started = time.perf_counter()
                status = await _post(reader, writer, path, body)
                latencies.append(time.perf_counter() - started)
                errors += status != 200
        finally:
            writer.close()
    started = time.perf_counter()
    await asyncio.gather(*(client(index) for index in range(concurrency)))
    elapsed = time.perf_counter() - started
    milliseconds = np.array(latencies) * 1000
    return {"concurrency": concurrency, "requests": len(latencies), "errors": errors, "seconds": round(elapsed, 3),
            "requests_per_second": round(len(latencies) / elapsed, 1),
            **{f"p{q}_ms": round(float(np.percentile(milliseconds, q)), 2) for q in (50, 95, 99)}}


def _start_server(model: str, max_batch_size: int, batch_timeout_ms: float):
    """`tfclf serve` on a free loopback port; (process, port) once its version is available."""
    command = [sys.executable, "-m", "tfclf.serve", "--model", model, "--host", "127.0.0.1", "--port", "0",
               "--max-batch-size", str(max_batch_size), "--batch-timeout-ms", str(batch_timeout_ms),
               "--poll-seconds", "0", "--max-queued", "1024"]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # this tfclf first
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    port = None
    deadline = time.time() + 300
    for line in process.stderr:
        event = json.loads(line) if line.startswith("{") else {}
        port = event.get("port", port)
        if event.get("event") == "version_available":
            break
        if event.get("event") == "version_failed" or time.time() > deadline:
            process.kill()
            raise ValueError(f"--model {model}: the server could not load it ({event.get('error', 'timeout')})")
    else:
        raise ValueError(f"--model {model}: the server stopped before serving (exit {process.wait()})")
    # The request log goes on on stderr: drain it so the server never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in process.stderr], daemon=True).start()
    return process, port


def bench(model: str, concurrency=(1, 8, 32), seconds: float = 5.0, max_requests: int = 20000,
          batching=("on", "off"), max_batch_size: int = 32, batch_timeout_ms: float = 2.0) -> dict:
    """{"runs": [{batching, max_batch_size, concurrency, requests, errors, requests_per_second, p50_ms, ...}]}"""
    name = os.path.basename(os.path.normpath(model))
    texts, runs = sample_texts(), []
    for setting in batching:
        size = max_batch_size if setting == "on" else 1
        process, port = _start_server(model, size, batch_timeout_ms)
        try:
            for level in concurrency:
                result = asyncio.run(_level(port, f"/v1/models/{name}:predict", level, seconds, max_requests, texts))
                runs.append({"batching": setting, "max_batch_size": size, **result})
                print(json.dumps(runs[-1]), file=sys.stderr)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(60)
    return {"model": os.path.abspath(model), "seconds_per_level": seconds, "batch_timeout_ms": batch_timeout_ms,
            "texts_per_request": 1, "cpu_count": os.cpu_count(), "runs": runs}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="tfclf bench-serve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a model's base path, saved_models/<name>")
    parser.add_argument("--concurrency", default="1,8,32", help="closed-loop clients per level, comma-separated")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each level (default: 5)")
    parser.add_argument("--max-requests", type=int, default=20000, help="requests per level at most")
    parser.add_argument("--batching", default="on,off", help="on, off or both (default: on,off)")
    parser.add_argument("--max-batch-size", type=int, default=32, help="the server's batch size when on")
    parser.add_argument("--batch-timeout-ms", type=float, default=2.0, help="the server's timeout when on")
    parser.add_argument("--output", help="also write the JSON here")
    args = parser.parse_args(argv)

    def job():
        from tfclf.serving import versions
        versions.check_base_path(args.model)
        levels = [int(value) for value in args.concurrency.split(",") if value.strip().isdigit()]
        settings = [value.strip() for value in args.batching.split(",")]
        if not levels or min(levels) < 1 or len(levels) != len(args.concurrency.split(",")):
            raise ValueError(f"--concurrency {args.concurrency}: expected positive whole numbers like 1,8,32")
        if not settings or set(settings) - {"on", "off"}:
            raise ValueError(f"--batching {args.batching}: expected on, off or on,off")
        if not 0 < args.seconds <= 120 or args.max_requests < 1:
            raise ValueError("--seconds must be in (0, 120] and --max-requests >= 1 (the load test is bounded)")
        report = bench(args.model, levels, args.seconds, args.max_requests, settings, args.max_batch_size,
                       args.batch_timeout_ms)
        text = json.dumps(report, indent=2)
        print(text)
        if args.output:
            with open(args.output, "w", encoding="utf-8") as handle:
                handle.write(text + "\n")
    return cli.run_main(job)


if __name__ == "__main__":
    sys.exit(main())
