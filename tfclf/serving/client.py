"""The load tests' side of the wire (tfclf.serving.load, tfclf.serving.soak): texts, a raw HTTP/1.1 client,
`tfclf serve` started in its own process on a free 127.0.0.1 port, and what machine the figures come from.

    process, port = start_server("saved_models/spam", max_batch_size=32, batch_timeout_ms=5)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    status, body, keep_alive = await post(reader, writer, "/v1/models/spam:predict", b'{"instances": ["hi"]}')
    stop_server(process)
"""
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
