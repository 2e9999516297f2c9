"""Fine-tune the default MiniLM classifier on the manual-pages set once per length cap, with the same steps,
and tabulate quality and speed (the fine-tuned counterpart of long_cap_probe.py).

    python experiments/man_sections.py                       # ~/.cache/tfclf/man_sections.jsonl
    python experiments/long_cap_finetune.py DATA OUT_DIR [extra tfclf.run flags...]

Each arm is `python -m tfclf.run --data DATA --out OUT_DIR/<arm> --skip-export <arm's flags> <extra flags>`
run one after the other (its output in OUT_DIR/<arm>.log); an arm whose metrics.json exists is not run again.
Prints one JSON row per arm: steps, validation and test macro-F1, training texts/s, the run's wall seconds.
"""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARMS = {"256-head+tail": ["--seq-len", "256", "--truncate", "head+tail"], "512-head": ["--seq-len", "512"]}


def run_arm(data: str, out: str, name: str, extra: list) -> dict:
    run_dir = os.path.join(out, name)
    metrics_path = os.path.join(run_dir, "metrics.json")
    if not os.path.exists(metrics_path):
        command = [sys.executable, "-m", "tfclf.run", "--data", data, "--out", run_dir, "--skip-export",
                   *ARMS[name], *extra]
        with open(os.path.join(out, f"{name}.log"), "w", encoding="utf-8") as log:
            subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=True, cwd=out,
                           env={**os.environ, "PYTHONPATH": ROOT})
    with open(metrics_path, encoding="utf-8") as handle:
        metrics = json.load(handle)
    return {"arm": name, "seq_len": metrics["seq_len"], "steps": metrics["train_steps"],
            "val_macro_f1": round(metrics["val"]["macro_f1"], 4), "test_macro_f1": round(metrics["test"]["macro_f1"], 4),
            "test_accuracy": round(metrics["test"]["accuracy"], 4),
            "train_texts_per_s": round(metrics["train_examples_per_sec"], 2), "wall_s": round(metrics["wall_seconds"])}


def main(data: str, out: str, extra: list) -> list:
    os.makedirs(out, exist_ok=True)
    rows = []
    for name in ARMS:
        rows.append(run_arm(os.path.abspath(data), out, name, extra))
        print(json.dumps(rows[-1]), flush=True)
    return rows


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
