"""A study: a YAML spec expanded into trials, the ledger of finished trials, and the results tables.
No TensorFlow and no subprocesses here (grid.py runs the trials); the only I/O is the spec and the ledger.

    base: {data: sms_spam, encoder: lstm, epochs: 1}   # any run config keys (CLI flags, underscores)
    variants: [{encoder: lstm}, {encoder: pyramid_lstm, rnn_layers: 4}]   # optional, crossed with grid
    grid: {opt: [adam, sgd], lr: [0.001, 0.01]}
    select: val.macro_f1                                # a validation metric; never a test one
    seeds: [42]
"""
import dataclasses
import hashlib
import itertools
import json
import os
import threading

import numpy as np
import pandas as pd

from tfclf import config as config_lib

SPEC_KEYS = {"name", "description", "base", "variants", "grid", "select", "seeds", "top_k", "top_seeds"}
METRICS = ("accuracy", "macro_f1", "weighted_f1", "loss",
           "micro_f1", "samples_f1", "subset_accuracy", "hamming_loss")  # the last four: multi-label data


@dataclasses.dataclass(frozen=True)
class Trial:
    params: dict          # variant + grid point: what distinguishes this setting
    seed: int
    config: dict          # flat run config, out included
    digest: str           # the run config's digest: the trial's identity in the ledger

    @property
    def setting(self) -> str:
        return " ".join(f"{key}={value}" for key, value in self.params.items()) or "base"


@dataclasses.dataclass(frozen=True)
class Study:
    name: str
    base: dict
    variants: tuple
    grid: dict
    select: str
    seeds: tuple
    top_k: int = 0
    top_seeds: int = 0

    @property
    def metric(self) -> str:
        return self.select.split(".", 1)[1]

    @property
    def higher_is_better(self) -> bool:
        return not self.metric.endswith("loss")  # loss, hamming_loss


def read_spec(path: str) -> dict:
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such study file; give an experiments/*.yaml file")
    raw = config_lib.load_yaml(path, path) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping with base, grid, select, seeds")
    return raw


def parse(raw: dict, source: str, overrides: dict = None) -> Study:
    """Validates a spec; `overrides` (from --set) replace base keys. Errors name the file and key."""
    unknown = set(raw) - SPEC_KEYS
    if unknown:
        raise ValueError(f"{source}: unknown key(s) {', '.join(sorted(unknown))}; valid: {', '.join(sorted(SPEC_KEYS))}")
    holds = {"base": (dict, "a mapping of run config keys to values, e.g. base: {encoder: bow}"),
             "grid": (dict, "a mapping of config keys to lists of values, e.g. grid: {lr: [0.01, 0.1]}"),
             "variants": (list, "a list of mappings of config keys, e.g. variants: [{encoder: bow}]")}
    for section, (kind, what) in holds.items():
        if raw.get(section) is not None and not isinstance(raw[section], kind):
            raise ValueError(f"{source}: {section} holds {raw[section]!r}; it must be {what}")
    base = {**(raw.get("base") or {}), **(overrides or {})}
    grid = raw.get("grid") or {}
    variants = raw.get("variants") or [{}]
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ValueError(f"{source}: grid.{key} must be a non-empty list of values")
        repeated = [value for index, value in enumerate(values) if value in values[:index]]
        if repeated:  # refused, not removed: a repeat is more often a typo for another value than meant
            raise ValueError(f"{source}: grid.{key} lists {repeated[0]!r} more than once, which would run once "
                             "and be listed twice; remove the repeat (or correct it to the value you meant)")
    select = str(raw.get("select", "val.macro_f1"))
    split, _, metric = select.partition(".")
    if split != "val" or metric not in METRICS:
        raise ValueError(f"{source}: select {select!r}: choose val.<metric>, metric one of {', '.join(METRICS)} "
                         "(the test set is never used to select)")
    seeds = raw.get("seeds", [base.get("seed", 42)])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise ValueError(f"{source}: seeds must be a non-empty list of integers")
    name = str(raw.get("name") or os.path.splitext(os.path.basename(source))[0])
    for key in ("top_k", "top_seeds"):
        value = raw.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{source}: {key} {value!r} must be a whole number >= 0 (0: off)")
    study = Study(name, base, tuple(variants), grid, select, tuple(seeds), int(raw.get("top_k", 0)),
                  int(raw.get("top_seeds", 0)))
    seen = {}
    for trial in expand(study, "unused"):  # every trial's config is valid before anything runs
        other = seen.setdefault(trial.digest, trial)
        if other is not trial:  # e.g. `lr: [0.001, 1e-3]`, or a variant equal to the base
            raise ValueError(f"{source}: trials '{other.setting}' and '{trial.setting}' (seed {trial.seed}) are the "
                             "same run config, which would run once and be listed twice; remove one of them")
    return study


def _trial(study: Study, params: dict, seed: int, out_root: str) -> Trial:
    values = {"skip_export": True, **study.base, **params, "seed": seed}
    try:
        config = config_lib.from_flat(values, source=f"study {study.name}")
    except ValueError as error:
        raise ValueError(f"study {study.name}, trial {params}: {error}") from None
    digest = config.digest()
    return Trial(params, seed, {**values, "out": os.path.join(out_root, "trials", digest)}, digest)


def expand(study: Study, out_root: str, seeds=None) -> list:
    """variants x grid product x seeds, in a stable order."""
    keys = list(study.grid)
    trials = []
    for variant in study.variants:
        if not isinstance(variant, dict):
            raise ValueError(f"study {study.name}: each variant must be a mapping of config keys")
        for values in itertools.product(*(study.grid[key] for key in keys)):
            params = {**variant, **dict(zip(keys, values))}
            trials += [_trial(study, params, seed, out_root) for seed in (seeds or study.seeds)]
    return trials


def seeds_for(study: Study, count: int) -> list:
    """The study's seeds, extended by consecutive integers to `count` seeds."""
    seeds = list(study.seeds)
    candidate = max(seeds) + 1
    while len(seeds) < count:
        seeds.append(candidate)
        candidate += 1
    return seeds[:max(count, len(study.seeds))]


class Ledger:
    """Append-only JSON lines, one per finished (or failed) trial, keyed by the trial's digest; each line
    carries a checksum of itself ("check"), so a changed line is found, not read as a result."""

    def __init__(self, path: str):
        self.path, self.lock = path, threading.Lock()

    def read(self) -> dict:
        """The entries by trial digest. A last line without its newline was cut by a kill mid-write and is left
        out (that trial runs again); any other damaged line is a ValueError naming the line."""
        if not os.path.isfile(self.path):
            return {}
        with open(self.path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().split("\n")
        entries = {}
        for number, line in enumerate(lines[:-1], 1):  # lines[-1]: "" after the last newline, or a cut line
            if line.strip():
                entry = _ledger_entry(line, f"{self.path} line {number}")
                entries[entry["trial"]] = entry
        return entries

    def verify(self) -> None:
        """Before a grid resumes: a ValueError for a damaged line; a line cut by a kill mid-write is removed,
        so the next entry starts on a line of its own."""
        self.read()
        if os.path.isfile(self.path):
            with open(self.path, "rb+") as handle:
                content = handle.read()
                if content and not content.endswith(b"\n"):
                    handle.truncate(content.rfind(b"\n") + 1)
                    print(f"{self.path}: removed its last line, cut short by an interrupted write (that trial runs "
                          "again)")

    def append(self, entry: dict) -> None:
        line = json.dumps({**entry, "check": _ledger_check(entry)}, sort_keys=True) + "\n"
        with self.lock, open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())


def _ledger_check(entry: dict) -> str:
    return hashlib.sha256(json.dumps(entry, sort_keys=True).encode()).hexdigest()[:16]


def _ledger_entry(line: str, where: str) -> dict:
    """One ledger line, verified (a line from before checksums is taken as it is)."""
    fix = ("delete that line (its trial runs again) or the grid directory (all trials run again), then run the "
           "same command")
    try:
        entry = json.loads(line)
    except ValueError:
        raise ValueError(f"{where}: damaged (not a JSON line); {fix}") from None
    if not isinstance(entry, dict) or not isinstance(entry.get("trial"), str) or "status" not in entry:
        raise ValueError(f"{where}: not a ledger entry (no trial digest or status); {fix}")
    check = entry.pop("check", None)
    if check is not None and check != _ledger_check(entry):
        raise ValueError(f"{where}: its content changed since the grid wrote it (checksum mismatch); {fix}")
    return entry


def entry_from_metrics(trial: Trial, metrics: dict) -> dict:
    history = metrics.get("history", {})
    return {"trial": trial.digest, "setting": trial.setting, "params": trial.params, "seed": trial.seed,
            "status": "ok", "error": "", "run_dir": trial.config["out"],
            "val": {key: metrics["val"][key] for key in METRICS if key in metrics["val"]},
            "test": {key: metrics["test"][key] for key in METRICS if key in metrics["test"]},
            "train_examples_per_sec": metrics.get("train_examples_per_sec", 0.0),
            "wall_seconds": metrics.get("wall_seconds", 0.0),
            "history": {key: values for key, values in history.items() if key.startswith("val_")}}


def entry_from_failure(trial: Trial, error: str) -> dict:
    return {"trial": trial.digest, "setting": trial.setting, "params": trial.params, "seed": trial.seed,
            "status": "failed", "error": error, "run_dir": trial.config["out"]}


def table(study: Study, trials: list, entries: dict) -> pd.DataFrame:
    """One row per finished trial, best first by the validation metric; failed trials last."""
    rows = []
    for trial in trials:
        entry = entries.get(trial.digest)
        if entry is None:
            continue
        row = {"setting": entry["setting"], **{k: str(v) for k, v in entry["params"].items()}, "seed": entry["seed"],
               "status": entry["status"]}
        for split in ("val", "test"):
            row.update({f"{split}_{key}": entry.get(split, {}).get(key, np.nan) for key in METRICS
                        if key in METRICS[:4] or key in entry.get(split, {})})  # multi-label columns when present
        row.update({"train_examples_per_sec": entry.get("train_examples_per_sec", np.nan),
                    "wall_seconds": entry.get("wall_seconds", np.nan), "error": entry["error"],
                    "trial": entry["trial"], "host": entry.get("host", "")})
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    for split in ("val", "test"):  # a multi-label metric's column, even when no trial finished
        frame[f"{split}_{study.metric}"] = frame.get(f"{split}_{study.metric}", np.nan)
    # Ties on the metric (small validation sets) go to the lower validation loss, as in BestCheckpoint.
    frame = frame.sort_values([f"val_{study.metric}", "val_loss", "setting", "seed"],
                              ascending=[not study.higher_is_better, True, True, True], na_position="last",
                              kind="stable")
    return frame.reset_index(drop=True)


def by_setting(study: Study, frame: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds of each setting's validation metric (and test, for the final report)."""
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        return pd.DataFrame()
    column = f"val_{study.metric}"
    summary = ok.groupby("setting", sort=False).agg(
        seeds=("seed", "count"), val_mean=(column, "mean"), val_std=(column, "std"),
        test_mean=(f"test_{study.metric}", "mean"), test_std=(f"test_{study.metric}", "std"),
        val_loss=("val_loss", "mean"), examples_per_sec=("train_examples_per_sec", "mean")).reset_index()
    summary = summary.sort_values(["val_mean", "val_loss", "setting"],
                                  ascending=[not study.higher_is_better, True, True])
    return summary.fillna({"val_std": 0.0, "test_std": 0.0}).reset_index(drop=True)
