"""`python -m tfclf.predict --model DIR "text one" "text two"`, or a whole file in batches:

    python -m tfclf.predict --model saved_models/spam/1 --input new.csv --text-column text --output scored.csv
"""
import argparse
import sys

from tfclf import cli


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
        import os
        if args.batch_size < 1:
            raise ValueError(f"--batch-size {args.batch_size}: must be >= 1")
        if args.output and not os.path.isdir(os.path.dirname(os.path.abspath(args.output))):
            raise ValueError(f"--output {args.output}: its directory does not exist; create it or choose another path")
        from tfclf.data import readers
        from tfclf.serving import export, predict  # imports TensorFlow
        serve = export.load(args.model)
        if args.input:
            if not args.output:
                raise ValueError("--input needs --output FILE.csv for the scored rows")
            frame = readers.read_texts(args.input, tuple(args.text_column.split(",")))
            result = predict.predict(serve, frame["text"].tolist(), args.batch_size, progress=True)
            frame["predicted"] = [name.decode() for name in result["class_name"]]
            frame["confidence"] = result["probabilities"].max(axis=1)
            frame.to_csv(args.output, index=False)
            print(f"wrote {len(frame)} predictions to {args.output}")
            return
        result = predict.predict(serve, args.texts, args.batch_size)
        for text, name, probabilities in zip(args.texts, result["class_name"], result["probabilities"]):
            print(f"{name.decode()}\t{probabilities.max():.4f}\t{text}")
    return cli.run_main(job)


if __name__ == "__main__":
    sys.exit(main())
