"""`python -m tfclf.evaluate --model DIR --data FILE`: an exported model on a new labelled file,
with the same report as training (metrics.json, report.txt, predictions.csv, confusion_matrix.png).
"""
import argparse
import json
import os
import sys
import time

import numpy as np

from tfclf import cli, data, export, predict, readers, report


def evaluate(model_dir: str, data_path: str, text_columns: tuple, label_column: str, out: str) -> dict:
    serve = export.load(model_dir)
    with open(os.path.join(model_dir, export.EXTRA, "labels.json"), encoding="utf-8") as handle:
        class_names = json.load(handle)
    table, _ = readers.read(data_path, text_columns, label_column)
    table, dropped = data.validate(table, data_path, drop_invalid=False)
    unknown = sorted(set(table["label"]) - set(class_names))
    if unknown:
        raise ValueError(f"{data_path}: labels {unknown[:5]} are not among the model's classes "
                         f"{class_names}; check --label-column")
    index = {name: i for i, name in enumerate(class_names)}
    label_ids = table["label"].map(index).to_numpy()
    result = predict.predict(serve, table["text"].tolist(), progress=True)
    probabilities = result["probabilities"]
    loss = float(-np.mean(np.log(np.clip(probabilities[np.arange(len(label_ids)), label_ids], 1e-12, 1.0))))
    metrics = report.classification_metrics(label_ids, probabilities, class_names, loss)
    os.makedirs(out, exist_ok=True)
    predictions = report.write_predictions(table, probabilities, class_names, os.path.join(out, "predictions.csv"))
    report.confusion_matrix_plot(label_ids, probabilities.argmax(axis=1), class_names,
                                 os.path.join(out, "confusion_matrix.png"), os.path.basename(data_path))
    report.text_report(metrics, predictions, class_names, os.path.join(out, "report.txt"))
    report.write_json(os.path.join(out, "metrics.json"), {"test": metrics, "model": model_dir, "data": data_path,
                                                          "num_test": len(table)})
    return metrics


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfclf.evaluate", description=__doc__)
    parser.add_argument("--model", required=True, help="an exported saved_models/<name>/<version> directory")
    parser.add_argument("--data", required=True, help="labelled CSV/TSV/JSONL file or class-folder directory")
    parser.add_argument("--text-column", default="text", help="text column(s), comma-separated")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--out", help="report directory (default: runs/eval-<time>)")
    args = parser.parse_args(argv)

    def job():
        out = args.out or os.path.join("runs", f"eval-{time.strftime('%Y%m%d-%H%M%S')}")
        metrics = evaluate(args.model, args.data, tuple(args.text_column.split(",")), args.label_column, out)
        print(f"accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}; report in {out}/")
    return cli.run_main(job)


if __name__ == "__main__":
    sys.exit(main())
