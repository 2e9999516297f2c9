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
import json
import os
import sys

from tfclf import cli



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
                              ("--num-batch-threads", defaults.num_batch_threads, "the server's model calls at once")):
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
    from tfclf.serving import load, soak, versions
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
    return load.bench(args.model, _levels(args.concurrency, "1,8,32,128"), args.seconds, args.max_requests, settings,
                 args.max_batch_size, args.batch_timeout_ms, args.num_batch_threads, args.texts_per_request)


def plot(report: dict, path: str) -> None:
    from tfclf.evaluation import plots  # matplotlib: imported only to draw
    where = f"{os.path.basename(report['model'])}, {report['cpu_count']} x {report['cpu'] or 'CPU'}, {report['date']}"
    if "rss" in report:
        rss = report["rss"]
        plots.serve_soak_plot(rss["samples"], path, f"soak: {report['requests']} requests, RSS last/first "
                                                         f"minute {rss['last_over_first']:.3f} ({where})")
    else:
        plots.serve_load_plot(report["runs"], path, f"tfclf bench-serve: {where}, {report['texts_per_request']} "
                                                         f"text(s) per request, {report['seconds_per_level']:g} s "
                                                         "per level")


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
