"""Scores a finished run's trained weights on its own validation and test texts under other long-text
settings: truncation sides (transformers only: a recurrent model's side is one of its layers), and windows
aggregated by mean or max (so that one trained model answers
"which aggregation?" and "does chunking help a model trained on the first window?" without retraining).

    python experiments/long_text_eval.py runs/imdb-head runs/imdb-chunk

Prints one markdown row per (run, setting): validation and test macro-F1, accuracy, windows scored and
seconds. The run's data file must still be where config.json says.
"""
import argparse
import dataclasses
import os
import sys
import time

import numpy as np
from sklearn import metrics

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tfclf import config as config_lib  # noqa: E402
from tfclf.stages import fitting, held_out, preparing  # noqa: E402
from tfclf.training import distribute  # noqa: E402

SETTINGS = {
    "truncate head": {"long_text": "truncate", "truncate": "head"},
    "truncate head+tail": {"long_text": "truncate", "truncate": "head+tail"},
    "chunk, mean": {"long_text": "chunk", "chunk_aggregate": "mean"},
    "chunk, max": {"long_text": "chunk", "chunk_aggregate": "max"},
}


def evaluate(run_dir: str) -> list:
    config = config_lib.load(os.path.join(run_dir, "config.json"))
    prepared = preparing.prepare(config)
    model, _ = fitting.build(prepared, distribute.make_strategy("default"))
    if fitting.load_trained(model, run_dir) is None:
        raise SystemExit(f"{run_dir}: no trained/ weights (an unfinished run?)")
    rows = []
    for name, changes in SETTINGS.items():
        if (not prepared.family.tokenized and changes["long_text"] == "truncate"
                and changes["truncate"] != config.model.truncate):
            continue  # a recurrent model's truncation side is a layer of the trained model: not re-scorable
        model_config = dataclasses.replace(config.model, **changes)
        variant = dataclasses.replace(prepared, config=dataclasses.replace(config, model=model_config))
        row = {"run": os.path.basename(run_dir.rstrip("/")), "trained": _trained(config.model), "scored": name}
        started = time.perf_counter()
        scorer = held_out.text_scorer(model, variant)
        for split in ("val", "test"):
            predicted = held_out.score_logits(model, variant, split, scorer).argmax(axis=1)
            labels = getattr(prepared.splits, split)["label_id"].to_numpy()
            row[f"{split}_macro_f1"] = metrics.f1_score(labels, predicted, average="macro")
            row[f"{split}_accuracy"] = metrics.accuracy_score(labels, predicted)
        row["seconds"] = time.perf_counter() - started
        windows = (sum(int(variant.windows_per_text(split).sum()) for split in ("val", "test"))
                   if changes["long_text"] == "chunk" else len(prepared.splits.val) + len(prepared.splits.test))
        row["windows"] = windows
        rows.append(row)
        print(_line(row), flush=True)
    return rows


def _trained(model_config) -> str:
    if model_config.long_text == "chunk":
        return f"chunk ({model_config.chunk_train} windows)"
    return f"truncate {model_config.truncate}"


def _line(row: dict) -> str:
    return (f"| {row['run']} | {row['trained']} | {row['scored']} | {row['val_macro_f1']:.4f} | "
            f"{row['test_macro_f1']:.4f} | {row['test_accuracy']:.4f} | {row['windows']} | {row['seconds']:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="finished run directories")
    args = parser.parse_args()
    print("| run | trained on | scored as | val macro-F1 | test macro-F1 | test accuracy | windows scored | s |")
    print("|---|---|---|---|---|---|---|---|")
    rows = [row for run in args.runs for row in evaluate(run)]
    best = max(rows, key=lambda row: row["val_macro_f1"])
    print(f"best on validation: {best['run']} scored as {best['scored']} (test macro-F1 "
          f"{best['test_macro_f1']:.4f}; {np.mean([r['test_macro_f1'] for r in rows]):.4f} mean of all rows)")


if __name__ == "__main__":
    main()
