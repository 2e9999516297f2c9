"""`tfclf bench-serve --model saved_models/spam`: a bounded load test of `tfclf serve` on 127.0.0.1.

Starts `tfclf serve` on a free loopback port once per batching setting (on: --max-batch-size 32, off: 1),
then for each concurrency level runs that many closed-loop clients (each sends a request, waits for the
answer, sends the next) for --seconds, at most --max-requests per level, and prints one JSON object:
requests and texts per second, p50/p95/p99 latency in milliseconds and errors for every (batching,
concurrency); --plot draws them. --soak instead sends --requests requests (--malformed of them broken in
several ways) and checks every answer while sampling the server's memory (tfclf.serving.soak).

    tfclf bench-serve --model saved_models/spam --seconds 10 --output load.json --plot load.png
    tfclf bench-serve --model saved_models/spam --soak --requests 20000 --output soak.json --plot soak.png
"""
import argparse
import asyncio
import datetime
import importlib.util
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


def machine() -> dict:
    """The CPU, its vector flags, the core count and the HTTP stack uvicorn picks, for every report."""
    model, flags = "", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                if key.strip() == "flags":
                    flags |= {flag for flag in value.split() if flag.startswith(("avx512", "amx", "avx_vnni"))}
    except OSError:
        pass
    found = {name: importlib.util.find_spec(name) is not None for name in ("uvloop", "httptools")}
    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "cpu": model,
            "cpu_flags": sorted(flags), "cpu_count": os.cpu_count(),
            "event_loop": "uvloop" if found["uvloop"] else "asyncio",
            "http": "httptools" if found["httptools"] else "h11"}


# --- the client: one keep-alive HTTP/1.1 connection, raw bytes (no client library between us and the server) ---


async def post(reader, writer, path: str, body: bytes) -> tuple:
    """(status, body bytes, whether the server keeps the connection open) of one POST."""
    writer.write(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    length, keep_alive = 0, True
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
        if name.lower() == "connection" and value.strip().lower() == "close":
            keep_alive = False
    return status, await reader.readexactly(length), keep_alive


def percentiles(seconds: list) -> dict:
    milliseconds = np.array(seconds or [0.0]) * 1000
    return {f"p{q}_ms": round(float(np.percentile(milliseconds, q)), 2) for q in (50, 95, 99)}


async def _level(port: int, path: str, concurrency: int, seconds: float, max_requests: int, texts: list,
                 texts_per_request: int) -> dict:
    latencies, errors, sent = [], 0, 0
    deadline = time.perf_counter() + seconds

    async def client(index):
        nonlocal errors, sent
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline and sent < max_requests:
                sent += 1
                first = sent * 7 + index
                chosen = [texts[(first + offset) % len(texts)] for offset in range(texts_per_request)]
                body = json.dumps({"instances": chosen}).encode()
                started = time.perf_counter()
                status, _, keep_alive = await post(reader, writer, path, body)
                latencies.append(time.perf_counter() - started)
                errors += status != 200
                if not keep_alive:
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
        finally:
            writer.close()
    started = time.perf_counter()
    await asyncio.gather(*(client(index) for index in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {"concurrency": concurrency, "requests": len(latencies), "errors": errors, "seconds": round(elapsed, 3),
            "requests_per_second": round(len(latencies) / elapsed, 1),
            "texts_per_second": round(len(latencies) * texts_per_request / elapsed, 1), **percentiles(latencies)}


# --- the server under test: `tfclf serve` in its own process ---


def start_server(model: str, max_batch_size: int, batch_timeout_ms: float, num_batch_threads: int = 1):
    """`tfclf serve` on a free loopback port; (process, port) once its version is available."""
    command = [sys.executable, "-m", "tfclf.serve", "--model", model, "--host", "127.0.0.1", "--port", "0",
               "--max-batch-size", str(max_batch_size), "--batch-timeout-ms", str(batch_timeout_ms),
               "--num-batch-threads", str(num_batch_threads), "--poll-seconds", "0", "--max-queued", "1024"]
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


def stop_server(process) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def bench(model: str, concurrency=(1, 8, 32, 128), seconds: float = 5.0, max_requests: int = 20000,
          batching=("on", "off"), max_batch_size: int = 32, batch_timeout_ms: float = 5.0,
          num_batch_threads: int = 1, texts_per_request: int = 1) -> dict:
    """{"runs": [{batching, max_batch_size, concurrency, requests, errors, requests_per_second, p50_ms, ...}]}"""
    name = os.path.basename(os.path.normpath(model))
    texts, runs = sample_texts(), []
    for setting in batching:
        size = max_batch_size if setting == "on" else 1
        process, port = start_server(model, size, batch_timeout_ms, num_batch_threads)
        try:  # a warm-up at the highest concurrency first, not reported (first calls of new batch shapes)
            asyncio.run(_level(port, f"/v1/models/{name}:predict", max(concurrency), min(seconds, 2.0), max_requests,
                               texts, texts_per_request))
            for level in concurrency:
                result = asyncio.run(_level(port, f"/v1/models/{name}:predict", level, seconds, max_requests, texts,
                                            texts_per_request))
                runs.append({"batching": setting, "max_batch_size": size, **result})
                print(json.dumps(runs[-1]), file=sys.stderr)
        finally:
            stop_server(process)
    return {"model": os.path.abspath(model), "seconds_per_level": seconds, "max_requests_per_level": max_requests,
            "batch_timeout_ms": batch_timeout_ms, "num_batch_threads": num_batch_threads,
            "texts_per_request": texts_per_request, **machine(), "runs": runs}


# --- the command ---


def build_parser() -> argparse.ArgumentParser:
    from tfclf.serving import server  # no TensorFlow
    defaults = server.Options(model="")  # the server's own defaults, so the figures are those of `tfclf serve`
    parser = argparse.ArgumentParser(prog="tfclf bench-serve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a model's base path, saved_models/<name>")
    parser.add_argument("--concurrency", default="", help="closed-loop clients per level, comma-separated "
                                                          "(default: 1,8,32,128; with --soak: 32)")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each level (default: 5)")
    parser.add_argument("--max-requests", type=int, default=20000, help="requests per level at most")
    parser.add_argument("--batching", default="on,off", help="on, off or both (default: on,off)")
    for flag, value, text in (("--max-batch-size", defaults.max_batch_size, "the server's batch size when on"),
                              ("--batch-timeout-ms", defaults.batch_timeout_ms, "the server's batch timeout when on"),
                              ("--num-batch-threads", defaults.num_batch_threads, "the server's concurrent model calls")):
        parser.add_argument(flag, type=type(value), default=value, help=f"{text} (default: {value})")
    parser.add_argument("--texts-per-request", type=int, default=1, help="texts in each request (default: 1)")
    soak = parser.add_argument_group("soak (--soak)")
    soak.add_argument("--soak", action="store_true", help="send --requests requests, check every answer and "
                                                          "sample the server's RSS, instead of the levels")
    soak.add_argument("--requests", type=int, default=20000, help="requests in the soak (default: 20000)")
    soak.add_argument("--malformed", type=float, default=0.05, help="share of broken requests (default: 0.05)")
    soak.add_argument("--max-seconds", type=float, default=900, help="the soak stops here at the latest")
    parser.add_argument("--output", help="also write the JSON here")
    parser.add_argument("--plot", help="draw the figures into this PNG")
    return parser


def _levels(text: str, default: str) -> list:
    parts = (text or default).split(",")
    levels = [int(value) for value in parts if value.strip().isdigit()]
    if not levels or min(levels) < 1 or len(levels) != len(parts):
        raise ValueError(f"--concurrency {text}: expected positive whole numbers like 1,8,32,128")
    return levels


def run(args) -> dict:
    from tfclf.serving import soak, versions
    versions.check_base_path(args.model)
    settings = [value.strip() for value in args.batching.split(",")]
    if not settings or set(settings) - {"on", "off"}:
        raise ValueError(f"--batching {args.batching}: expected on, off or on,off")
    if not 0 < args.seconds <= 120 or args.max_requests < 1 or not 0 < args.max_seconds <= 3600:
        raise ValueError("--seconds must be in (0, 120], --max-seconds in (0, 3600] and --max-requests >= 1 "
                         "(the load test is bounded)")
    if args.soak:
        return soak.soak(args.model, args.requests, args.malformed, _levels(args.concurrency, "32")[0],
                         args.max_seconds, args.max_batch_size, args.batch_timeout_ms, args.num_batch_threads)
    return bench(args.model, _levels(args.concurrency, "1,8,32,128"), args.seconds, args.max_requests, settings,
                 args.max_batch_size, args.batch_timeout_ms, args.num_batch_threads, args.texts_per_request)


def plot(report: dict, path: str) -> None:
    from tfclf.evaluation import report as report_lib  # matplotlib: imported only to draw
    where = f"{os.path.basename(report['model'])}, {report['cpu_count']} x {report['cpu'] or 'CPU'}, {report['date']}"
    if "rss" in report:
        rss = report["rss"]
        report_lib.serve_soak_plot(rss["samples"], path, f"soak: {report['requests']} requests, RSS last/first "
                                                         f"minute {rss['last_over_first']:.3f} ({where})")
    else:
        report_lib.serve_load_plot(report["runs"], path, f"tfclf bench-serve: {where}, {report['texts_per_request']} text(s) per request, "
                                                         f"{report['seconds_per_level']:g} s per level")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)

    def job():
        report = run(args)
        text = json.dumps(report, indent=2)
        print(text)
        if args.output:
            with open(args.output, "w", encoding="utf-8") as handle:
                handle.write(text + "\n")
        if args.plot:
            plot(report, args.plot)
    return cli.run_main(job)


if __name__ == "__main__":
    sys.exit(main())
