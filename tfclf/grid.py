"""`python -m tfclf.grid experiments/NAME.yaml [--out DIR] [--parallel N] [--ray ADDRESS] [--top-k K --seeds N]`

Runs every trial of a study (see studies/study.py) as an ordinary `python -m tfclf.run` in its own process, so
memory is released between trials. Finished and failed trials go to `<out>/ledger.jsonl`; rerunning the
same command skips them (a killed trial resumes from its backup), so the tables come out identical.
With `--ray local|auto|HOST:PORT` the trials are Ray tasks (one `--cpus-per-trial` CPUs each) scheduled over a
Ray cluster; the grid process stays the only writer of the ledger. On several machines the repository and
the grid directory must be at the same path on every node (a shared filesystem).
Writes `results.csv`, `results.md`, `curves.png`, `metric_vs_<axis>.png` and, with --top-k, `seeds.md`.
"""
import argparse
import os
import sys

from tfclf import cli
from tfclf.studies import engines, study as study_lib


def _overrides(pairs) -> dict:
    values = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--set {pair}: expected KEY=VALUE, e.g. --set max_examples=500")
        values[key.strip().replace("-", "_")] = value.strip()
    return values


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog=cli.prog("python -m tfclf.grid"), description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", help="experiments/NAME.yaml")
    parser.add_argument("--out", help="grid directory (default: runs/grid-<study name>)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a base config key for every trial (repeatable), e.g. --set epochs=1")
    parser.add_argument("--parallel", type=int, default=1, help="trials running at once on this machine")
    parser.add_argument("--ray", metavar="ADDRESS", default="",
                        help="run trials as Ray tasks: 'local' starts a Ray cluster on this machine, 'auto' or "
                             "HOST:PORT joins a running one (needs pip install 'tfclf[ray]')")
    parser.add_argument("--cpus-per-trial", type=int, default=0,
                        help="with --ray: CPUs each trial asks of Ray (default: this machine's CPUs / --parallel)")
    parser.add_argument("--top-k", type=int, help="rerun the K best settings with --seeds seeds (default: the spec's)")
    parser.add_argument("--seeds", type=int, help="seeds per top setting, for mean ± std")
    parser.add_argument("--retry-failed", action="store_true", help="run failed trials of the ledger again")
    args = parser.parse_args(argv)

    def job():
        study = study_lib.parse(study_lib.read_spec(args.study), args.study, _overrides(args.set))
        if args.parallel < 1 or args.cpus_per_trial < 0:
            raise ValueError("--parallel must be >= 1 and --cpus-per-trial >= 0")
        cpus_per_trial = args.cpus_per_trial or max(1, (os.cpu_count() or 1) // args.parallel)
        out = args.out or os.path.join("runs", f"grid-{study.name}")
        engines.check_locations(study, out)
        engine = engines.ray_engine(args.ray, cpus_per_trial) if args.ray else engines.local_engine(args.parallel)
        with engine as running:
            engines.run_study(study, running, out,
                              args.retry_failed, args.top_k, args.seeds)

    return cli.run_main(job)


if __name__ == "__main__":
    sys.exit(main())
