"""Adaptive training's stopping rules, compared on whole trajectories (experiments/stopping_trajectory.py): each
rule stops at some validation round, the best checkpoint up to there (callbacks.improved, as BestCheckpoint
keeps it) is what the run would evaluate, and its test figures are read off the trajectory. No training here.

    python experiments/stopping_rules.py runs/sms-2.jsonl:122 runs/trec-42.jsonl:80 ... [--test macro_f1]

Each argument is a trajectory file and the run's steps per data epoch (the floor of some rules is in epochs).
Prints, per rule, each run's stopping step, evaluated round and test figure, and the rule's total steps.
"""
import argparse
import json

from tfclf.training import callbacks

# (name, floor: steps or ("epochs", k) = k data epochs but at least 100 steps, margin, patience). Progress is a gain
# above the margin over the value of the last round that made progress, or a tie with a 10% lower validation
# loss (budget.progressed with MIN_GAIN = margin).
RULES = [
    ("session 9: floor 100, margin 0.005, patience 2", 100, 0.005, 2),
    ("floor 1 epoch, margin 0.005, patience 2", ("epochs", 1), 0.005, 2),
    ("floor 2 epochs, margin 0.005, patience 2", ("epochs", 2), 0.005, 2),
    ("floor 100, margin 0.0025, patience 2", 100, 0.0025, 2),
    ("floor 100, any gain, patience 2", 100, 0.0, 2),
    ("floor 1 epoch, any gain, patience 2", ("epochs", 1), 0.0, 2),
    ("floor 1 epoch, margin 0.0025, patience 2", ("epochs", 1), 0.0025, 2),
    ("floor 2 epochs, any gain, patience 2", ("epochs", 2), 0.0, 2),
    ("floor 100, margin 0.005, patience 3", 100, 0.005, 3),
    ("floor 1 epoch, margin 0.005, patience 3", ("epochs", 1), 0.005, 3),
    ("floor 100, any gain, patience 1", 100, 0.0, 1),
    ("floor 1 epoch, any gain, patience 1", ("epochs", 1), 0.0, 1),
    ("floor 2 epochs, any gain, patience 1", ("epochs", 2), 0.0, 1),
    ("to the cap (4 epochs)", 10 ** 9, 0.0, 99),
]
TIE_LOSS_GAIN = 0.1


def progressed(value, loss, best, best_loss, margin, mode):
    if best is None:
        return True
    if value == best:
        return loss < best_loss * (1.0 - TIE_LOSS_GAIN)
    return value < best * (1.0 - margin) if mode == "min" else value > best + margin


def stop_round(rows, monitor, floor, margin, patience):
    """Index of the round after which the rule stops (the last round when it never does)."""
    mode = "min" if monitor.endswith("loss") else "max"
    best, best_loss, best_index = None, float("inf"), -1
    for index, row in enumerate(rows):
        value, loss = row["logs"][monitor], row["logs"]["val_loss"]
        if progressed(value, loss, best, best_loss, margin, mode):
            best, best_loss, best_index = value, loss, index
        if row["step"] >= floor and index - best_index >= patience:
            return index
    return len(rows) - 1


def evaluated_round(rows, monitor, last):
    """The best checkpoint among rounds 0..last, as BestCheckpoint keeps it."""
    mode = "min" if monitor.endswith("loss") else "max"
    best, best_loss, chosen = None, float("inf"), 0
    for index, row in enumerate(rows[:last + 1]):
        value, loss = row["logs"][monitor], row["logs"]["val_loss"]
        if callbacks.improved(value, loss, best, best_loss, mode):
            best, best_loss, chosen = value, loss, index
    return chosen


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="trajectory.jsonl:steps_per_epoch[:val_texts]")
    parser.add_argument("--monitor", default="", help="default: val_micro_f1 for multi-label rows, else val_macro_f1")
    args = parser.parse_args(argv)
    runs = []
    for spec in args.runs:
        path, epoch_steps, *rest = spec.split(":")
        rows = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
        multi = "micro_f1" in rows[0]["test"]
        monitor = args.monitor or ("val_micro_f1" if multi else "val_macro_f1")
        runs.append((path.rsplit("/", 1)[-1].replace(".jsonl", ""), rows, int(epoch_steps), monitor, multi))
    for name, rows, _, monitor, multi in runs:
        figures = "micro_f1 samples_f1 macro_f1" if multi else "macro_f1 accuracy"
        print(f"{name}: {monitor} per round " + " ".join(f"{row['logs'][monitor]:.4f}" for row in rows))
        print(f"{name}: test per round ({figures.split()[0]}) " + " ".join(
            f"{row['test'][figures.split()[0]]:.4f}" for row in rows) + f"; steps {[row['step'] for row in rows]}")
    print()
    print("| rule | " + " | ".join(name for name, *_ in runs) + " | steps in all | lowest test |")
    print("|---|" + "---|" * (len(runs) + 2))
    for rule, floor, margin, patience in RULES:
        cells, total, lowest = [], 0, {}
        for name, rows, epoch_steps, monitor, multi in runs:
            floor_steps = floor if isinstance(floor, int) else max(100, floor[1] * epoch_steps)
            last = stop_round(rows, monitor, floor_steps, margin, patience)
            chosen = evaluated_round(rows, monitor, last)
            key = "micro_f1" if multi else "macro_f1"
            test = rows[chosen]["test"][key]
            extra = f"/{rows[chosen]['test']['samples_f1']:.4f}" if multi else ""
            cells.append(f"{rows[last]['step']} ({rows[chosen]['step']}): {test:.4f}{extra}")
            total += rows[last]["step"]
            lowest[("multi" if multi else "single")] = min(lowest.get("multi" if multi else "single", 1.0), test)
        print(f"| {rule} | " + " | ".join(cells) + f" | {total} | "
              + ", ".join(f"{kind} {value:.4f}" for kind, value in lowest.items()) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
