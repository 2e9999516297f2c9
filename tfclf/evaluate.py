"""`python -m tfclf.evaluate --model DIR --data FILE`: an exported model on a new labelled file,
with the same report as training (metrics.json, report.txt, report.html, predictions.csv, confusion_matrix.png,
reliability.png, and pr_curve.png for a thresholded model). Classes are the export's own decisions (its
stored threshold applies); ECE and Brier score are of its served (calibrated) probabilities.
"""
import argparse
import json
import os
import sys
import time

from tfclf import cli


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfclf.evaluate", description=__doc__)
    parser.add_argument("--model", required=True, help="an exported saved_models/<name>/<version> directory")
    parser.add_argument("--data", required=True, help="labelled CSV/TSV/JSONL file or class-folder directory")
    parser.add_argument("--text-column", default="text", help="text column(s), comma-separated (default: text)")
    parser.add_argument("--label-column", default="label", help="label column (default: label)")
    parser.add_argument("--label-separator", default=None,
                        help="multi-label models: separator of the label column (default: the model's training data's)")
    parser.add_argument("--label-columns", default=None,
                        help="multi-label models: 0/1 label columns, comma-separated (default: the model's training data's)")
    parser.add_argument("--out", help="report directory (default: runs/eval-<time>)")
    args = parser.parse_args(argv)

    def job():
        from tfclf import workflows  # imports TensorFlow
        out = args.out or os.path.join("runs", f"eval-{time.strftime('%Y%m%d-%H%M%S')}")
        columns = None if args.label_columns is None else tuple(c.strip() for c in args.label_columns.split(",")
                                                                  if c.strip())
        metrics = workflows.evaluate_export(args.model, args.data, tuple(args.text_column.split(",")),
                                            args.label_column, out, args.label_separator, columns)
        with open(os.path.join(out, "metrics.json"), encoding="utf-8") as handle:
            served = json.load(handle)["decision"]["served"]
        if "micro_f1" in metrics:
            print(f"micro-F1 {metrics['micro_f1']:.4f}, macro-F1 {metrics['macro_f1']:.4f}, samples-F1 "
                  f"{metrics['samples_f1']:.4f}, subset accuracy {metrics['subset_accuracy']:.4f}, Hamming loss "
                  f"{metrics['hamming_loss']:.4f}; report in {out}/")
            return
        print(f"accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}, ECE {served['ece']:.4f}, "
              f"Brier {served['brier']:.4f}; report in {out}/")
    return cli.run_main(job)


if __name__ == "__main__":
    sys.exit(main())
