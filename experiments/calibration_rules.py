"""Does temperature scaling harm the test ECE of finished runs, and which keep rule avoids it?

Scores each finished single-label run's trained weights on its own validation and test texts (cached in
`<run>/logits.npz`), then asks every rule below whether it would keep the temperature fitted on validation,
and prints one row per run and the mean change of test ECE and NLL each rule causes (served minus T = 1).

    python experiments/calibration_rules.py runs/bow-1 runs/bow-2 ...

The rules read calibration.choose_temperature's record (5-fold cross-validation on the validation split).
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tfclf.evaluation import calibration  # noqa: E402

RULES = {
    "always": lambda record: True,
    "held-out NLL gain > 0": lambda record: record["heldout"]["nll_gain"] > 0,
    "NLL gain > 1 SE": lambda record: record["heldout"]["nll_gain"] > record["heldout"]["nll_gain_se"],
    "NLL gain > 0 and ECE not worse": lambda record: (record["heldout"]["nll_gain"] > 0
                                                      and record["heldout"]["ece_after"] <= record["heldout"]["ece_before"]),
    "gain > fold-to-fold noise (shipped)": lambda record: record["kept"],
}


def logits_of(run_dir: str) -> dict:
    """{"val", "test", "val_labels", "test_labels"}: scored once from the run's trained weights, then cached."""
    cache = os.path.join(run_dir, "logits.npz")
    if not os.path.isfile(cache):
        from tfclf import config as config_lib
        from tfclf.stages import fitting, held_out, preparing
        from tfclf.training import distribute
        config = config_lib.load(os.path.join(run_dir, "config.json"))
        prepared = preparing.prepare(config)
        model, _ = fitting.build(prepared, distribute.make_strategy("default"))
        if fitting.load_trained(model, run_dir) is None:
            raise SystemExit(f"{run_dir}: no trained/ weights")
        scored = {split: held_out.score_split(model, prepared, split) for split in ("val", "test")}
        np.savez(cache, **{split: logits for split, (logits, _) in scored.items()},
                 **{f"{split}_labels": labels for split, (_, labels) in scored.items()})
    with np.load(cache) as stored:
        return dict(stored)


def row(run_dir: str) -> dict:
    scored = logits_of(run_dir)
    record = calibration.choose_temperature(scored["val"], scored["val_labels"])
    test, labels, fitted = scored["test"], scored["test_labels"], record["fitted"]
    ece = {t: calibration.logits_ece(test / t, labels) for t in (1.0, fitted)}
    nll = {t: calibration.negative_log_likelihood(test, labels, t) for t in (1.0, fitted)}
    kept = {name: bool(rule(record)) for name, rule in RULES.items()}
    return {"run": os.path.basename(run_dir.rstrip("/")), "fitted": fitted, "record": record, "kept": kept,
            "ece_change": {name: (ece[fitted] - ece[1.0]) if keep else 0.0 for name, keep in kept.items()},
            "nll_change": {name: (nll[fitted] - nll[1.0]) if keep else 0.0 for name, keep in kept.items()},
            "ece": ece, "nll": nll}


def main(run_dirs) -> None:
    rows = [row(run_dir) for run_dir in run_dirs]
    print("| run | fitted T | held-out NLL gain +- SE | held-out ECE T=1 -> fold T | test ECE T=1 -> fitted | "
          "test NLL T=1 -> fitted | " + " | ".join(RULES) + " |")
    print("|---" * (6 + len(RULES)) + "|")
    for r in rows:
        held = r["record"]["heldout"]
        print(f"| {r['run']} | {r['fitted']:.3f} | {held['nll_gain']:+.4f} +- {held['nll_gain_se']:.4f} | "
              f"{held['ece_before']:.4f} -> {held['ece_after']:.4f} | {r['ece'][1.0]:.4f} -> {r['ece'][r['fitted']]:.4f} | "
              f"{r['nll'][1.0]:.4f} -> {r['nll'][r['fitted']]:.4f} | "
              + " | ".join("kept" if r["kept"][name] else "-" for name in RULES) + " |")
    print(f"\nover {len(rows)} runs: mean change of test ECE / NLL by calibration (served minus T = 1), "
          "and in how many runs it made test ECE worse")
    for name in RULES:
        ece = np.array([r["ece_change"][name] for r in rows])
        nll = np.array([r["nll_change"][name] for r in rows])
        print(f"  {name:<36} kept {sum(r['kept'][name] for r in rows):>2}  ECE {ece.mean():+.5f} "
              f"(+- {ece.std(ddof=1) / np.sqrt(len(ece)) if len(ece) > 1 else 0:.5f})  worse in {int((ece > 0).sum())}  "
              f"NLL {nll.mean():+.5f}")


if __name__ == "__main__":
    main(sys.argv[1:])
