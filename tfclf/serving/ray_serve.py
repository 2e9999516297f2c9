"""`tfclf serve --ray [ADDRESS] --replicas N`: the same app (routes, batching, versions, limits) on Ray Serve.

Each replica is a Ray Serve deployment replica running server.Server's Starlette app behind Ray's HTTP proxy
(`@serve.ingress`): it loads and warms up the model's latest version before it takes traffic, merges the
requests it receives with its own Batcher and polls for new versions like `tfclf serve`. Ray's proxy spreads
requests over the replicas; every answer names its replica in an `x-tfclf-replica` header. 'local' starts a
Ray cluster on this machine; 'auto' or HOST:PORT joins a running one, whose nodes must see the model's base
path at the same absolute path (a shared filesystem). SIGTERM or Ctrl-C deletes the application (its
replicas drain) and stops a cluster started here.

    tfclf serve --model saved_models/spam --ray local --replicas 2 --port 8501
"""
import dataclasses
import os
import signal
import threading

from tfclf.serving import server as server_lib, versions as versions_lib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # replicas import this tfclf
REPLICA_HEADER = b"x-tfclf-replica"


def with_replica_header(app, replica: str):
    """The ASGI app, each HTTP answer carrying `x-tfclf-replica: <replica>`."""
    async def wrapped(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)

        async def sending(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (REPLICA_HEADER, replica.encode())]}
            await send(message)
        return await app(scope, receive, sending)
    return wrapped


class Replica:
    """What one Ray Serve replica holds: the versions of the model (the latest loaded before the replica
    counts as started) and the app that serves them."""

    def __init__(self, options: server_lib.Options):
        from ray import serve
        self.replica = serve.get_replica_context().replica_id.unique_id
        log = server_lib.JsonLog()
        self.log = lambda **fields: log(replica=self.replica, **fields)
        self.versions = versions_lib.Versions(options.model, self.log)
        self.versions.poll()  # readiness: Ray routes to this replica only once its constructor returns
        if self.versions.latest is None:
            states = self.versions.states()
            raise RuntimeError(f"{options.model}: no version could be loaded ({states})")
        if options.poll_seconds > 0:
            self.versions.start(options.poll_seconds)
        self.server = server_lib.Server(options, self.versions, self.log)

    def __serve_build_asgi_app__(self):
        return with_replica_header(self.server.app, self.replica)

    def __del__(self):
        self.versions.stop()


def application(options: server_lib.Options, replicas: int, replica_cpus: float):
    """The Ray Serve application: `replicas` copies of Replica behind Ray's HTTP proxy."""
    from ray import serve
    # A replica must accept more requests at once than one batch holds, or Ray's router would cap its batches.
    deployment = serve.deployment(name="tfclf", num_replicas=replicas, ray_actor_options={"num_cpus": replica_cpus},
                                  max_ongoing_requests=options.max_queued + options.max_batch_size,
                                  graceful_shutdown_timeout_s=options.drain_seconds)
    return deployment(serve.ingress()(Replica)).bind(options)


def _connect(ray, address: str) -> bool:
    """Starts ('local') or joins a Ray cluster; True when this process started it."""
    if ray.is_initialized():
        return False
    try:
        ray.init(address=None if address == "local" else address, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": ROOT}}, configure_logging=False)
    except (ConnectionError, ValueError) as error:
        raise ValueError(f"--ray {address}: {str(error).strip().splitlines()[0]}; start a cluster with "
                         "`ray start --head`, or use --ray local") from None
    return True


def _wait_for_signal() -> None:
    stop = threading.Event()
    previous = {number: signal.signal(number, lambda *_: stop.set()) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not stop.wait(1.0):
            pass
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def run(options: server_lib.Options, address: str = "local", replicas: int = 1, replica_cpus: float = 1.0,
        log=None) -> None:
    """Deploys the app on Ray Serve, serves until SIGTERM or SIGINT, then deletes it."""
    try:
        import ray
        from ray import serve
    except ImportError:
        raise ValueError("--ray: needs Ray Serve (the ray[serve] package), which is not installed; install it with: "
                         "pip install 'tfclf[serve-ray]' (a checkout: pip install -r requirements.txt)") from None
    options.check()
    if replicas < 1 or not replica_cpus > 0:
        raise ValueError(f"--replicas {replicas} --replica-cpus {replica_cpus}: need at least 1 replica and > 0 CPUs")
    versions_lib.check_base_path(options.model)
    log = log or server_lib.JsonLog()
    sock = server_lib.bind(options.host, options.port)  # a busy --port fails here, in one line; 0 picks one
    port = sock.getsockname()[1]
    sock.close()  # Ray's HTTP proxy binds it
    options = dataclasses.replace(options, model=os.path.abspath(options.model), port=port)
    name = options.name or os.path.basename(os.path.normpath(options.model))
    started = _connect(ray, address)
    try:
        serve.start(http_options={"host": options.host, "port": port})
        serve.run(application(options, replicas, replica_cpus), name=name, route_prefix="/")
        log(event="listening", host=options.host, port=port, model=name, base_path=options.model, ray=address,
            replicas=replicas)
        _wait_for_signal()
        serve.delete(name)
    finally:
        if started:
            serve.shutdown()
            ray.shutdown()
    log(event="stopped", model=name)
