"""`python -m tfclf.import_hf SRC_DIR --out DST_DIR`: a Hugging Face BERT/ELECTRA checkpoint
-> DST_DIR/encoder and DST_DIR/preprocess, usable as --encoder-handle / --preprocess-handle."""
import argparse
import sys

from tfclf import cli


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog=cli.prog("python -m tfclf.import_hf"), description=__doc__)
    parser.add_argument("source", help="directory with config.json, model.safetensors, vocab.txt")
    parser.add_argument("--out", required=True, help="destination directory (replaced atomically)")
    parser.add_argument("--seq-length", type=int, default=128, help="default length of the preprocessor's output")
    args = parser.parse_args(argv)

    def job():
        from tfclf import rundir
        rundir.check_locations([rundir.Location("--out", args.out, "dir"),  # --out is replaced: never the source
                                rundir.Location("SOURCE", args.source, "input")])
        from tfclf.models import hf_checkpoint  # imports TensorFlow
        handles = hf_checkpoint.import_checkpoint(args.source, args.out, seq_length=args.seq_length)
        print(f"encoder: {handles['encoder']}\npreprocess: {handles['preprocess']}\n"
              f"use: python -m tfclf.run --encoder-handle {handles['encoder']} "
              f"--preprocess-handle {handles['preprocess']} --encoder bert_base")
    return cli.run_main(job)


if __name__ == "__main__":
    sys.exit(main())
