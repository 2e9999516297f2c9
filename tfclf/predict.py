"""`python -m tfclf.predict --model DIR "text one" "text two"`, or a whole file in batches:

    python -m tfclf.predict --model saved_models/spam/1 --input new.csv --text-column text --output scored.csv
"""
import argparse
import sys

import numpy as np

from tfclf import cli, export, readers


def predict(serve, texts, batch_size: int = 256, progress: bool = False) -> dict:
    """Scores texts in batches, shortest first (exported transformer models pad each batch only to its
    longest text); returns numpy arrays of probabilities, class ids and class names in the input order."""
    from tfclf._backend import tf
    texts = [str(text) for text in texts]
    order = np.argsort([len(text) for text in texts], kind="stable")
    parts = []
    for start in range(0, len(texts), batch_size):
        parts.append(serve(text=tf.constant([texts[i] for i in order[start:start + batch_size]])))
        if progress:
            done = min(start + batch_size, len(texts))
            print(f"\rscored {done}/{len(texts)}", end="" if done < len(texts) else "\n", file=sys.stderr)
    if not parts:
        raise ValueError("no texts to score; pass texts as arguments or --input FILE")
    result = {}
    for key in parts[0]:
        values = np.concatenate([part[key].numpy() for part in parts])
        result[key] = np.empty_like(values)
        result[key][order] = values
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfclf.predict", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("texts", nargs="*", help="texts to classify")
    parser.add_argument("--model", required=True, help="an exported saved_models/<name>/<version> directory")
    parser.add_argument("--input", help="CSV/TSV/JSONL file to score")
    parser.add_argument("--text-column", default="text", help="text column(s) of --input, comma-separated")
    parser.add_argument("--output", help="where to write --input's rows with predictions (CSV)")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args(argv)

    def job():
        serve = export.load(args.model)
        if args.input:
            if not args.output:
                raise ValueError("--input needs --output FILE.csv for the scored rows")
            frame = readers.read_texts(args.input, tuple(args.text_column.split(",")))
            result = predict(serve, frame["text"].tolist(), args.batch_size, progress=True)
            frame["predicted"] = [name.decode() for name in result["class_name"]]
            frame["confidence"] = result["probabilities"].max(axis=1)
            frame.to_csv(args.output, index=False)
            print(f"wrote {len(frame)} predictions to {args.output}")
            return
        result = predict(serve, args.texts, args.batch_size)
        for text, name, probabilities in zip(args.texts, result["class_name"], result["probabilities"]):
            print(f"{name.decode()}\t{probabilities.max():.4f}\t{text}")
    return cli.run_main(job)


if __name__ == "__main__":
    sys.exit(main())
