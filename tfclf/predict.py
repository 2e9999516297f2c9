"""`python -m tfclf.predict --model DIR "text one" "text two"`, or a whole file in batches:

    python -m tfclf.predict --model saved_models/spam/1 --input new.csv --text-column text --output scored.csv
    python -m tfclf.predict --model saved_models/spam --input new.csv > scored.csv   # the newest version
    python -m tfclf.predict --model runs/spam --explain "WIN a free prize, call now"  # the run's export

--model takes a version directory, a model directory (its newest version) or a run directory (its export).
--input's rows come back once, with `predicted`, `confidence` and a `p_<class>` column per class (multi-label:
`predicted` and `p_<label>`), as CSV in --output or, without it, on stdout.

A multi-label model prints each text's predicted label set (`{}` when no label passes its threshold)
with the chosen labels' probabilities. `--explain` adds, per text, the words whose removal changes the predicted class's probability most
(word occlusion through the SavedModel alone, so it works for every exported model).
"""
import argparse
import sys

from tfclf import cli


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog=cli.prog("python -m tfclf.predict"), description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("texts", nargs="*", help="texts to classify")
    parser.add_argument("--model", required=True, help="an exported saved_models/<name>/<version> directory, "
                        "saved_models/<name> (its newest version) or a run directory (its export)")
    parser.add_argument("--input", help="CSV/TSV/JSONL file to score")
    parser.add_argument("--text-column", default="text", help="text column(s) of --input, comma-separated")
    parser.add_argument("--output", help="where to write --input's rows with predictions (CSV; default: stdout)")
    parser.add_argument("--with-text", action="store_true",
                        help="add a `text` column: the text as scored (--text-column's columns joined)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--explain", action="store_true",
                        help="show the words that moved each prediction most (one extra model call per word)")
    parser.add_argument("--top-words", type=int, default=5, help="words shown per text with --explain")
    args = parser.parse_args(argv)

    def job():
        import os
        for flag, value in (("--batch-size", args.batch_size), ("--top-words", args.top_words)):
            if value < 1:
                raise ValueError(f"{flag} {value}: must be >= 1")
        if args.output and not os.path.isdir(os.path.dirname(os.path.abspath(args.output))):
            raise ValueError(f"--output {args.output}: its directory does not exist; create it or choose another path")
        if args.output:
            from tfclf import rundir
            rundir.check_locations([rundir.Location("--output", args.output, "file", replace=args.overwrite),
                                    *[rundir.Location(flag, path, "input") for flag, path in
                                      (("--input", args.input), ("--model", args.model)) if path]])
        from tfclf.evaluation import explain
        from tfclf.serving import exported  # imports TensorFlow
        from tfclf.tasks import kinds
        model = exported.ExportedModel.open(args.model, "--model")
        task = kinds.of_export(model)
        if args.explain:
            task.check_explain()

        def explained(texts, class_ids):
            return explain.occlusion(lambda batch: model.predict(batch, args.batch_size)["probabilities"],
                                     texts, top=args.top_words, predicted=class_ids)
        if args.input:
            return _write(_score_input(model, task, args, explained), args)
        result = model.predict(args.texts, args.batch_size)
        explanations = explained(args.texts, result["class_id"]) if args.explain else []
        for index, line in enumerate(task.prediction_lines(args.texts, result, model.class_names)):
            print(line)
            if explanations:
                print(f"\twords: {explain.format_words(explanations[index]) or '(no words)'}")
    return cli.run_main(job)


def _score_input(model, task, args, explained):
    """--input's rows with the task's prediction columns (and, with --with-text, the text as scored in `text`;
    with --explain, each text's `explanation`)."""
    from tfclf.data import readers
    from tfclf.evaluation import explain
    frame, texts = readers.read_texts(args.input, tuple(args.text_column.split(",")))
    if args.with_text:
        if "text" in frame.columns and args.text_column != "text":
            raise ValueError(f"--with-text: {args.input} already has a column `text` that is not --text-column "
                             f"{args.text_column}; rename that column, or drop --with-text")
        frame["text"] = texts
    result = model.predict(texts, args.batch_size, progress=True)
    for column, values in task.prediction_columns(result, model.class_names).items():
        frame[column] = values
    if args.explain:
        frame["explanation"] = [explain.format_words(e) for e in explained(texts, result["class_id"])]
    return frame


def _write(frame, args) -> None:
    """The scored rows as CSV in --output (and a line saying so on stderr), or on stdout."""
    if not args.output:
        frame.to_csv(sys.stdout, index=False)
        return
    from tfclf import files
    with files.atomic_write(args.output) as handle:  # a full disk leaves the old file (--overwrite) or none, never half
        frame.to_csv(handle, index=False)
    print(f"wrote {len(frame)} predictions to {args.output}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
