"""`tfclf serve --model saved_models/spam`: TF Serving's REST API for an exported model's versions.

    tfclf serve --model saved_models/spam --port 8501
    curl -s -X POST localhost:8501/v1/models/spam:predict -d '{"instances": ["WIN a free prize, call now"]}'
    tfclf serve --model saved_models/spam --ray local --replicas 2     # the same app on Ray Serve

Serves the highest numeric version under --model, polls for new ones every --poll-seconds (loaded and
warmed up before they are swapped in), merges concurrent requests into one model call (--max-batch-size,
--batch-timeout-ms; --max-batch-size 1 turns that off) and drains in-flight requests on SIGTERM.
One JSON log line per request on stderr; Prometheus metrics at /monitoring/prometheus/metrics.
"""
import argparse
import sys

from tfclf import cli


def build_parser() -> argparse.ArgumentParser:
    from tfclf.serving import rest, server  # no TensorFlow
    defaults, limits = server.Options(model=""), rest.Limits()
    parser = argparse.ArgumentParser(prog="tfclf serve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True,
                        help="a model's base path, saved_models/<name>, holding numeric <version>/ directories")
    parser.add_argument("--name", default="", help="the model name in URLs (default: the base path's name)")
    parser.add_argument("--host", default=defaults.host, help=f"address to listen on (default: {defaults.host})")
    parser.add_argument("--port", type=int, default=defaults.port, help=f"(default: {defaults.port}; 0: any free port)")
    for flag, value, text in (
            ("--max-batch-size", defaults.max_batch_size, "texts per merged model call; 1 turns batching off"),
            ("--batch-timeout-ms", defaults.batch_timeout_ms, "how long a request waits for others to batch with"),
            ("--num-batch-threads", defaults.num_batch_threads, "model calls run at once"),
            ("--max-queued", defaults.max_queued, "requests waiting for the model before new ones get 503"),
            ("--poll-seconds", defaults.poll_seconds, "how often to look for a new version (0: never)"),
            ("--drain-seconds", defaults.drain_seconds, "how long SIGTERM waits for in-flight requests"),
            ("--max-body-bytes", limits.max_body_bytes, "largest request body (413 beyond)"),
            ("--max-texts", limits.max_texts, "most texts in one request"),
            ("--max-text-chars", limits.max_text_chars, "longest text, in characters")):
        parser.add_argument(flag, type=type(value), default=value, help=f"{text} (default: {value})")
    ray = parser.add_argument_group("Ray Serve (needs pip install 'tfclf[serve-ray]')")
    ray.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                     help="deploy on Ray Serve: 'local' (the default) starts a Ray cluster on this machine, 'auto' "
                          "or HOST:PORT joins a running one (the base path must be at the same path on every node)")
    ray.add_argument("--replicas", type=int, default=1, help="with --ray: copies of the app (default: 1)")
    ray.add_argument("--replica-cpus", type=float, default=1.0, help="with --ray: CPUs Ray reserves per replica "
                                                                     "(default: 1)")
    return parser


def options_from_args(args):
    from tfclf.serving import rest, server
    limits = rest.Limits(args.max_body_bytes, args.max_texts, args.max_text_chars)
    return server.Options(args.model, args.name, args.host, args.port, args.max_batch_size, args.batch_timeout_ms,
                          args.num_batch_threads, args.max_queued, args.poll_seconds, args.drain_seconds, limits)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    options = options_from_args(args)

    def job():
        if args.ray:
            from tfclf.serving import ray_serve
            ray_serve.run(options, args.ray, args.replicas, args.replica_cpus)
        else:
            from tfclf.serving import server
            server.run(options)
    return cli.run_main(job)


if __name__ == "__main__":
    sys.exit(main())
