"""`python -m tfclf.evaluate --model DIR --data FILE`: an exported model on a new labelled file,
with the same report as training (metrics.json, report.txt, report.html, predictions.csv, confusion_matrix.png,
reliability.png, and pr_curve.png for a thresholded model). Classes are the export's own decisions (its
stored threshold applies); ECE and Brier score are of its served (calibrated) probabilities.
"""
import argparse
import hashlib
import json
import os
import re
import sys

from tfclf import cli


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog=cli.prog("python -m tfclf.evaluate"), description=__doc__)
    parser.add_argument("--model", required=True, help="an exported saved_models/<name>/<version> directory, "
                        "saved_models/<name> (its newest version) or a run directory (its export)")
    parser.add_argument("--data", required=True, help="labelled CSV/TSV/JSONL file or class-folder directory")
    parser.add_argument("--text-column", default="text", help="text column(s), comma-separated (default: text)")
    parser.add_argument("--label-column", default="label", help="label column (default: label)")
    parser.add_argument("--label-separator", default=None,
                        help="multi-label models: separator of the label column (default: the model's training data's)")
    parser.add_argument("--label-columns", default=None,
                        help="multi-label models: 0/1 label columns, comma-separated (default: the model's training data's)")
    parser.add_argument("--out", help="report directory (default: runs/eval-<model>-<version>-<data>-<digest of "
                                      "both>; the same model and data give the same directory)")
    args = parser.parse_args(argv)

    def job():
        from tfclf.jobs import export_evaluation  # imports TensorFlow
        from tfclf.serving import export
        from tfclf.tasks import kinds
        args.model = export.resolve(args.model, "--model")
        out = args.out or default_out(args.model, args.data, args.text_column, args.label_column)
        columns = None if args.label_columns is None else tuple(c.strip() for c in args.label_columns.split(",")
                                                                  if c.strip())
        metrics = export_evaluation.evaluate_export(args.model, args.data, tuple(args.text_column.split(",")),
                                            args.label_column, out, args.label_separator, columns)
        with open(os.path.join(out, "metrics.json"), encoding="utf-8") as handle:
            summary = json.load(handle)
        print(f"{kinds.of_metrics(summary).evaluation_line(metrics, summary['decision']['served'])}; "
              f"report in {out}/")
    return cli.run_main(job)


def default_out(model_dir: str, data_path: str, text_column: str = "text", label_column: str = "label") -> str:
    """runs/eval-<model name>-<version>-<data name>-<digest>: the digest is of the export's absolute path, the
    data's absolute path, size and modification time and the columns, so the same evaluation lands in the
    same directory (and is refused a second time) while a changed file or another model gets its own.

        >>> default_out("saved_models/spam/3", "new.csv").startswith(os.path.join("runs", "eval-spam-3-new-"))
        True
    """
    model_dir = os.path.abspath(model_dir)
    stat = os.stat(data_path) if os.path.exists(data_path) else None
    key = [model_dir, os.path.abspath(data_path), stat.st_size if stat else 0, stat.st_mtime_ns if stat else 0,
           text_column, label_column]
    digest = hashlib.sha256(json.dumps(key).encode()).hexdigest()[:8]
    name = os.path.basename(os.path.normpath(data_path)).split(".")[0]
    parts = [os.path.basename(os.path.dirname(model_dir)), os.path.basename(model_dir), name]
    return os.path.join("runs", "eval-" + "-".join(re.sub(r"[^\w.-]+", "_", part) for part in parts if part)
                        + f"-{digest}")


if __name__ == "__main__":
    sys.exit(main())
