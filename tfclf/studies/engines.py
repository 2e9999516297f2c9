"""Where a study's trials run: each an ordinary `python -m tfclf.run` in its own process, on this machine
(`local_engine`) or as Ray tasks over a cluster (`ray_engine`); this process alone appends to the ledger.
"""
import concurrent.futures
import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time

from tfclf import config as config_lib, files, rundir
from tfclf.studies import results, study as study_lib
from tfclf.training import hparams

# The directory holding the tfclf package: trial processes import the same code as this one.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _die_with_parent():
    """Linux: the trial process gets SIGKILL when the grid process dies, so no orphan keeps training."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _error_line(log_path: str, returncode: int) -> str:
    with open(log_path, encoding="utf-8", errors="replace") as handle:
        lines = [line.strip() for line in handle if line.strip()]
    for line in reversed(lines):
        if line.startswith("tfclf: error:"):
            return line[len("tfclf: error:"):].strip()
    return (lines[-1] if lines else "") + f" (exit code {returncode})"


def run_trial(trial, threads: int) -> dict:
    """One trial in a subprocess; returns its ledger entry (finished or failed)."""
    out = trial.config["out"]
    os.makedirs(os.path.dirname(out), exist_ok=True)
    metrics_path = os.path.join(out, "metrics.json")
    if not os.path.isfile(metrics_path):  # else: finished before the ledger line was written
        config_path, log_path = out + ".json", out + ".log"
        with files.atomic_write(config_path) as handle:
            json.dump(trial.config, handle, indent=2)
        code = run_process(config_path, log_path, threads)
        if code != 0:
            return {**study_lib.entry_from_failure(trial, _error_line(log_path, code)), "host": _host()}
    try:
        with open(metrics_path, encoding="utf-8") as handle:
            metrics = json.load(handle)
    except ValueError:  # damaged after the run finished: the trial is failed, with what to do
        return {**study_lib.entry_from_failure(trial, f"{metrics_path}: damaged (not valid JSON); delete {out} "
                                               "and rerun with --retry-failed"), "host": _host()}
    return {**study_lib.entry_from_metrics(trial, metrics), "host": _host()}


def run_process(config_path: str, log_path: str, threads: int) -> int:
    """`python -m tfclf.run --config config_path` in its own process (its memory is released when it ends;
    it dies with the grid), output appended to `log_path`; its exit code. `threads`: TensorFlow's intra-op
    threads (0: its default)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))}
    if threads:
        env.update(TF_NUM_INTRAOP_THREADS=str(threads), TF_NUM_INTEROP_THREADS="1")
    with open(log_path, "a", encoding="utf-8") as log:
        return subprocess.call([sys.executable, "-m", "tfclf.run", "--config", config_path], stdout=log,
                               stderr=subprocess.STDOUT, env=env, preexec_fn=_die_with_parent)


def _host() -> str:
    """Where a trial ran: this machine and process (the grid's, or a Ray worker's)."""
    return f"{socket.gethostname()}/{os.getpid()}"


def _trial_on_ray_worker(trial, threads: int, cwd: str) -> dict:
    """A Ray task: run the trial from the grid's working directory, on whichever node Ray chose."""
    import ray
    os.chdir(cwd)
    return {**run_trial(trial, threads), "ray_node": ray.get_runtime_context().get_node_id()}


@contextlib.contextmanager
def local_engine(parallel: int):
    """Trials in subprocesses of this process, `parallel` at a time, the cores split between them."""
    threads = max(1, (os.cpu_count() or 1) // parallel) if parallel > 1 else 0

    def finished(todo):
        with concurrent.futures.ThreadPoolExecutor(max_workers=parallel) as pool:
            futures = {pool.submit(run_trial, trial, threads): trial for trial in todo}
            for future in concurrent.futures.as_completed(futures):
                yield futures[future], future.result()
    yield finished, f", {parallel} at a time"


def _check_reachable(address: str) -> None:
    """A HOST:PORT that nothing answers on fails here in one line (Ray itself retries for minutes)."""
    if address in ("local", "auto"):
        return
    host, _, port = address.split("://")[-1].rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except (OSError, ValueError) as error:
        raise ValueError(f"--ray {address}: no Ray cluster answers there ({error}); start one with "
                         "`ray start --head --port PORT` on that machine, or use --ray local") from None


@contextlib.contextmanager
def ray_engine(address: str, cpus_per_trial: int):
    """Each trial a Ray task; results come back to this process, which alone appends to the ledger. Ray is
    started (or joined) at the first trial to run, once for the whole grid, and shut down at the end."""
    session = {}

    def connect():
        try:
            import ray
        except ImportError:
            raise ValueError("--ray: needs the ray package, which is not installed; install it with: pip install "
                             "'tfclf[ray]' (a checkout: pip install -r requirements.txt)") from None
        session.update(ray=ray, started=not ray.is_initialized())
        if session["started"]:
            _check_reachable(address)
            try:
                ray.init(address=None if address == "local" else address, include_dashboard=False,
                         log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": ROOT}}, configure_logging=False)
            except ConnectionError as error:
                session["started"] = False
                raise ValueError(f"--ray {address}: {str(error).strip().splitlines()[0]}; start a cluster with "
                                 "`ray start --head`, or use --ray local") from None
        available = int(ray.cluster_resources().get("CPU", 0))
        if available < cpus_per_trial:
            raise ValueError(f"--cpus-per-trial {cpus_per_trial}: the Ray cluster at {address} has {available} "
                             "CPU(s); ask for fewer")
        # max_retries: a trial whose node died runs again (from its backup); a failing trial is not retried.
        session["task"] = ray.remote(num_cpus=cpus_per_trial, max_retries=2)(_trial_on_ray_worker)

    def finished(todo):
        if not todo:
            return
        if "task" not in session:
            connect()
        ray = session["ray"]
        pending = {session["task"].remote(trial, cpus_per_trial, os.getcwd()): trial for trial in todo}
        while pending:
            [ready], _ = ray.wait(list(pending), num_returns=1)
            trial = pending.pop(ready)
            try:
                yield trial, ray.get(ready)
            except ray.exceptions.RayError as error:  # the worker or its node was lost for good
                yield trial, study_lib.entry_from_failure(trial, f"Ray: {str(error).strip().splitlines()[0]}")
    try:
        yield finished, f" on Ray ({address}), {cpus_per_trial} CPU(s) each"
    finally:
        if session.get("started"):
            session["ray"].shutdown()


def run_all(trials, ledger, engine, retry_failed: bool = False) -> None:
    """Runs the trials not yet in the ledger on `engine` (local_engine or ray_engine), appending each."""
    done = ledger.read()
    todo = [t for t in trials if t.digest not in done or (retry_failed and done[t.digest]["status"] != "ok")]
    todo = list({t.digest: t for t in todo}.values())  # a setting repeated in two variants runs once
    finished, description = engine
    print(f"{len(trials) - len(todo)} trial(s) already in the ledger, {len(todo)} to run{description}")
    for number, (trial, entry) in enumerate(finished(todo), 1):
        ledger.append(entry)
        outcome = (f"val {entry['val']['macro_f1']:.4f} macro-F1" if entry["status"] == "ok"
                   else f"FAILED: {entry['error']}")
        print(f"[{time.strftime('%H:%M:%S')}] {number}/{len(todo)} {trial.setting} seed={trial.seed}: {outcome}",
              flush=True)


def check_locations(study, out: str) -> None:
    """The grid directory and every trial's outputs are apart (rundir.check_locations), before any trial:
    no export directory equal to or inside the grid directory, and each trial's own run checks."""
    trials = study_lib.expand(study, out)
    configs = [config_lib.from_flat(trial.config, source=f"study {study.name}") for trial in trials]
    roots = {config.export.export_dir for config in configs if not config.export.skip_export}
    inputs = {config.data.data for config in configs if os.path.exists(config.data.data)}
    rundir.check_locations([rundir.Location("grid --out", out, "dir"),
                            *[rundir.Location("--export-dir", root, "root") for root in sorted(roots)],
                            *[rundir.Location("--data", path, "input") for path in sorted(inputs)]])
    for config in configs:
        rundir.check_locations(rundir.run_locations(config))


def run_study(study, engine, out: str, retry_failed: bool = False, top_k=None, seeds=None) -> str:
    """Runs a study's trials (then, with top_k and seeds, its best settings over more seeds) and writes
    the tables and plots, holding the grid directory's lock; returns results.md."""
    with rundir.locked(out, "grid --out"):
        return _run_study(study, engine, out, retry_failed, top_k, seeds)


def _run_study(study, engine, out, retry_failed, top_k, seeds) -> str:
    os.makedirs(out, exist_ok=True)
    ledger = study_lib.Ledger(os.path.join(out, "ledger.jsonl"))
    ledger.verify()  # a damaged ledger is one line before any trial runs
    trials = study_lib.expand(study, out)
    # Before any trial: a trial that finds the grid's experiment above it writes only its own session.
    hparams.write_grid_experiment(out, [t.config for t in trials])
    run_all(trials, ledger, engine, retry_failed)
    top_k = top_k if top_k is not None else study.top_k
    seeds = seeds if seeds is not None else study.top_seeds
    summary = None
    if top_k and seeds:
        frame = study_lib.table(study, trials, ledger.read())
        best = study_lib.by_setting(study, frame).head(top_k)["setting"].tolist()
        reruns = [t for t in study_lib.expand(study, out, study_lib.seeds_for(study, seeds)) if t.setting in best]
        print(f"top {len(best)} setting(s) with {seeds} seeds each")
        hparams.write_grid_experiment(out, [t.config for t in trials + reruns])
        run_all(reruns, ledger, engine, retry_failed)
        trials = list({t.digest: t for t in trials + reruns}.values())
        frame = study_lib.table(study, reruns, ledger.read())
        summary = study_lib.by_setting(study, frame)
    elif len(study.seeds) > 1:  # select a setting by its mean over seeds, not a lucky seed
        summary = study_lib.by_setting(study, study_lib.table(study, trials, ledger.read()))
    markdown = results.write_results(study, trials, ledger.read(), out, summary)
    print(markdown)
    print(f"results in {out}/results.md, results.csv")
    return markdown
