"""The `tfclf serve` ASGI app: TF Serving's REST API over a model's base path, on Starlette + uvicorn.

    POST /v1/models/NAME[/versions/N]:predict     {"instances": [...]} or {"inputs": {"text": [...]}}
    GET  /v1/models/NAME[/versions/N]             each version's state (AVAILABLE once warmed up)
    GET  /v1/models/NAME[/versions/N]/metadata    the serving signature
    GET  /monitoring/prometheus/metrics           requests, errors, latency, batch sizes, queue depth

Predictions go through the Batcher (merged model calls in a worker thread) to the version's servable
(tfclf.serving.predict over export.load); versions.Versions polls the base path and swaps versions in.
Every answer is JSON (errors `{"error": "..."}`) and every request logs one JSON line on stderr.
"""
import contextlib
import dataclasses
import json
import os
import signal
import socket
import sys
import threading
import time
import traceback

from tfclf.serving import batcher as batcher_lib, metrics as metrics_lib, rest, versions as versions_lib


@dataclasses.dataclass(frozen=True)
class Options:
    model: str                      # the base path: saved_models/<name>, holding <version>/ directories
    name: str = ""                  # the model name in URLs (default: the base path's directory name)
    host: str = "127.0.0.1"         # loopback unless asked: the API has no authentication
    port: int = 8501                # TF Serving's REST port
    max_batch_size: int = 32        # texts per merged model call; 1 turns batching off
    batch_timeout_ms: float = 5.0   # how long the oldest request waits for others (adds at most this latency)
    num_batch_threads: int = 1      # concurrent model calls; TensorFlow already uses every core in one call
    max_queued: int = 256           # waiting requests before new ones get 503 (bounded memory, fast failure)
    poll_seconds: float = 2.0       # how often the base path is checked for new versions (0: never)
    drain_seconds: float = 30.0     # how long SIGTERM waits for in-flight requests
    limits: rest.Limits = rest.Limits()

    def check(self) -> None:
        """A ValueError naming the flag, for values no server could use."""
        for flag, value, low in (("--port", self.port, 0), ("--max-batch-size", self.max_batch_size, 1),
                                 ("--num-batch-threads", self.num_batch_threads, 1),
                                 ("--max-queued", self.max_queued, 1),
                                 ("--max-body-bytes", self.limits.max_body_bytes, 1),
                                 ("--max-texts", self.limits.max_texts, 1),
                                 ("--max-text-chars", self.limits.max_text_chars, 1)):
            if value < low:
                raise ValueError(f"{flag} {value}: must be >= {low}")
        for flag, value in (("--batch-timeout-ms", self.batch_timeout_ms), ("--poll-seconds", self.poll_seconds),
                            ("--drain-seconds", self.drain_seconds)):
            if not value >= 0:
                raise ValueError(f"{flag} {value}: must be >= 0")
        if self.port > 65535:
            raise ValueError(f"--port {self.port}: must be <= 65535")


class JsonLog:
    """One JSON object per line on a stream (stderr), from any thread."""

    def __init__(self, stream=None):
        self.stream, self._lock = stream or sys.stderr, threading.Lock()

    def __call__(self, **fields) -> None:
        line = json.dumps({"time": round(time.time(), 3), **fields}, default=str, ensure_ascii=False)
        with self._lock:
            print(line, file=self.stream, flush=True)


def _json(payload: dict, status: int = 200, headers=None):
    from starlette.responses import Response
    # NaN and Infinity stay tokens (json.dumps allows them), as TF Serving writes them (its "JSON conformance").
    return Response(json.dumps(payload, ensure_ascii=False, separators=(",", ":")), status,
                    headers=headers, media_type="application/json")


class Server:
    """The app and what it owns: the versions, the batcher, the metrics and the request log."""

    def __init__(self, options: Options, versions, log=None):
        from starlette.applications import Starlette
        from starlette.routing import Route
        self.options, self.versions, self.log = options, versions, log or JsonLog()
        self.name = options.name or os.path.basename(os.path.normpath(options.model))
        self.metrics = metrics_lib.ServerMetrics(lambda: self.batcher.depth,
                                                 lambda: versions.latest.version if versions.latest else 0)
        self.batcher = batcher_lib.Batcher(options.max_batch_size, options.batch_timeout_ms / 1000,
                                           options.max_queued, options.num_batch_threads, self._counted_batch)
        routes = [Route("/v1/models/{path:path}", self._models, methods=["GET", "POST"]),
                  Route("/monitoring/prometheus/metrics", self._metrics, methods=["GET"]),
                  Route("/{path:path}", self._not_found, methods=["GET", "POST", "PUT", "DELETE", "PATCH"])]
        self.app = Starlette(routes=routes, lifespan=self._lifespan)

    def _counted_batch(self, texts: int) -> None:
        self.metrics.batch_size.observe(texts)
        self.metrics.model_calls.inc()

    @contextlib.asynccontextmanager
    async def _lifespan(self, app):
        await self.batcher.start()
        try:
            yield
        finally:
            await self.batcher.stop()

    # --- endpoints ---
    async def _metrics(self, request):
        from starlette.responses import PlainTextResponse
        started = time.perf_counter()
        self.metrics.answered("metrics", 200)
        response = PlainTextResponse(self.metrics.registry.render(), media_type="text/plain; version=0.0.4")
        self.log(event="request", method=request.method, path=request.url.path, status=200,
                 ms=round((time.perf_counter() - started) * 1000, 3))
        return response

    async def _not_found(self, request):
        return await self._answer(request, "other", self._unknown_route)

    async def _unknown_route(self, request, fields):
        raise rest.RequestError(404, f"Malformed request: {request.method} {request.url.path}; the API is "
                                     "/v1/models/NAME[/versions/N][:predict|/metadata]")

    async def _models(self, request):
        path = request.path_params["path"]
        endpoint = "predict" if path.endswith(":predict") else "metadata" if path.endswith("/metadata") else "status"
        return await self._answer(request, endpoint, self._model_request)

    async def _model_request(self, request, fields):
        name, version, verb = rest.parse_path(request.path_params["path"])
        wanted = f"Latest({name})" if version is None else f"Specific({name}, {version})"
        if name != self.name:
            raise rest.RequestError(404, f"Servable not found for request: {wanted}")
        if (request.method == "POST") != (verb == ":predict"):
            raise rest.RequestError(405, f"{request.method} is not allowed here; predict is POST .../NAME:predict, "
                                         "status and metadata are GET")
        if verb is None:  # model status
            states = self.versions.states()
            if version is not None and version not in states:
                raise rest.RequestError(404, f"Could not find version {version} of model {name}")
            return 200, rest.model_status(states, version)
        servable = self.versions.get(version)
        if servable is None and version is None:
            raise rest.RequestError(503, f"Servable not found for request: {wanted}; no version of model {name} "
                                         "is loaded yet (GET /v1/models/NAME shows its state)")
        if servable is None:
            raise rest.RequestError(404, f"Servable not found for request: {wanted}")
        fields["version"] = servable.version
        if verb == "/metadata":
            return 200, rest.model_metadata(self.name, servable)
        texts, row_format = rest.parse_predict(await self._body(request), self.options.limits)
        fields["texts"] = len(texts)
        outputs = await self.batcher.submit(servable, texts)
        return 200, rest.format_predict(outputs, row_format)

    async def _body(self, request) -> bytes:
        """The request body, refused (413) as soon as it passes --max-body-bytes."""
        limit = self.options.limits.max_body_bytes
        declared = request.headers.get("content-length", "")
        message = f"request body is larger than the server's --max-body-bytes {limit}; send fewer or shorter texts"
        if declared.isdigit() and int(declared) > limit:
            raise rest.RequestError(413, message)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise rest.RequestError(413, message)
            chunks.append(chunk)
        return b"".join(chunks)

    async def _answer(self, request, endpoint: str, handle):
        """Runs one endpoint: JSON answer, `{"error"}` for every failure, metrics, one log line."""
        started = time.perf_counter()
        fields, headers = {}, None
        try:
            status, payload = await handle(request, fields)
        except rest.RequestError as error:
            status, payload = error.status, {"error": str(error)}
        except batcher_lib.Overloaded as error:
            status, payload, headers = 503, {"error": f"server overloaded: {error}"}, {"Retry-After": "1"}
        except Exception as error:  # noqa: BLE001  a failed model call answers 500; the server goes on
            status, payload = 500, {"error": f"internal error: {type(error).__name__}: {error}"}
            fields["traceback"] = traceback.format_exc(limit=5)
        seconds = time.perf_counter() - started
        self.metrics.answered(endpoint, status)
        if endpoint == "predict":
            self.metrics.latency.observe(seconds)
        self.log(event="request", method=request.method, path=request.url.path, status=status,
                 ms=round(seconds * 1000, 3), **fields, **({"error": payload["error"]} if status >= 400 else {}))
        return _json(payload, status, headers)


# --- running it ---


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: any free port); a ValueError names a busy or impossible address."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, _, _, _, address = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as error:
        raise ValueError(f"--host {host} --port {port}: cannot listen there ({error.strerror or error}); "
                         "choose another --port or --host") from None
    sock.set_inheritable(True)
    return sock


def run(options: Options, log=None) -> None:
    """Serves until SIGTERM or SIGINT: polls and loads versions, listens, then drains in-flight requests."""
    try:
        import starlette  # noqa: F401  (the app's framework; imported where each part is built)
        import uvicorn
    except ImportError as error:
        raise ValueError(f"tfclf serve: needs the {error.name} package, which is not installed; install it with: "
                         "pip install 'tfclf[serve]'") from None
    options.check()
    versions_lib.check_base_path(options.model)
    log = log or JsonLog()
    sock = bind(options.host, options.port)
    versions = versions_lib.Versions(options.model, log)
    server = Server(options, versions, log)
    config = uvicorn.Config(server.app, log_level="warning", access_log=False, lifespan="on",
                            timeout_graceful_shutdown=options.drain_seconds)
    host, port = sock.getsockname()[:2]
    log(event="listening", host=host, port=port, model=server.name, base_path=os.path.abspath(options.model))
    versions.start(options.poll_seconds)
    # uvicorn drains on SIGTERM, then raises the signal again under the handler found at start: a no-op
    # one, so that a drained server exits 0 (a second SIGINT still forces an exit).
    previous = signal.signal(signal.SIGTERM, lambda number, frame: None)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        signal.signal(signal.SIGTERM, previous)
        versions.stop()
        sock.close()
    log(event="stopped", model=server.name)
