"""`python -m tfclf.bench`: fine-tuning speed, the TF "Classify text with BERT" tutorial's way vs tfclf's.

Same encoder, data slice, split, batch size, epochs, optimizer and seed, in one process:
  baseline  the tutorial: preprocessing model inside the Keras model, every text packed to --seq-len
            (128) tokens, plain fit on raw strings; inference with model.predict at the training batch size;
  tfclf     `runner.train` as `python -m tfclf.run` does it: tokenization in tf.data (parallel map, cache),
            length-grouped batches padded to their longest text; inference through the exported SavedModel
            (`tfclf.predict`: length-sorted batches of --infer-batch, padding trimmed per batch).
Prints examples/s for both, the ratios, model FLOP utilization against this machine's measured matmul peak
and, with --scaling, how training time grows with data size and sequence length. The last line is JSON.

    python -m tfclf.bench                      # minilm_l6, 1,000 SMS Spam texts, 2 epochs: ~6 min on 2 cores
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

from tfclf import cli


def matmul_peak(dtype: str, size: int = 2048, seconds: float = 3.0) -> float:
    """FLOP/s of a large square matmul on this machine (best of repeated runs)."""
    from tfclf._backend import tf
    a = tf.random.normal((size, size), dtype=tf.float32)
    a, b = tf.cast(a, dtype), tf.cast(tf.transpose(a), dtype)
    matmul = tf.function(lambda x, y: tf.reduce_sum(tf.cast(tf.matmul(x, y)[:1, :1], tf.float32)))
    matmul(a, b).numpy()
    best, deadline = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        matmul(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2.0 * size ** 3 / best


def encoder_shape(encoder_layer) -> dict:
    """Non-embedding parameters, layers and width of a TF Hub BERT-family encoder layer."""
    weights = encoder_layer.weights
    non_embedding = sum(int(np.prod(w.shape)) for w in weights if "embedding" not in w.name and w.shape.rank)
    layers = len({w.name.split("/")[1] for w in weights if w.name.startswith("transformer/layer_")})
    hidden = next(int(w.shape[-1]) for w in weights if "word_embeddings" in w.name)
    return {"non_embedding_params": non_embedding, "layers": layers, "hidden": hidden}


def train_flops_per_example(shape: dict, tokens) -> float:
    """≈ 6 x non-embedding parameters x tokens + attention scores and mixing (12 x layers x tokens^2 x width),
    forward and backward, averaged over examples of `tokens` tokens each."""
    tokens = np.asarray(tokens, dtype=np.float64)
    return float(np.mean(6 * shape["non_embedding_params"] * tokens + 12 * shape["layers"] * tokens ** 2
                         * shape["hidden"]))


def best_of(repeats: int, work) -> float:
    """The fastest of `repeats` timed calls, in seconds (after a warm-up call by the caller)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def tutorial_model(handles: dict, num_classes: int, seq_len: int, dropout: float = 0.1):
    """The tutorial's model: strings -> preprocessing (packed to seq_len) -> encoder -> dropout -> dense."""
    from tfclf import encoders
    from tfclf._backend import hub, keras, tf
    text = keras.Input(shape=(), dtype=tf.string, name="text")
    preprocessor = hub.load(encoders.resolve(handles["preprocess"]))
    tokenize = encoders.load_hub(preprocessor.tokenize, name="tokenize")
    pack = encoders.load_hub(preprocessor.bert_pack_inputs, arguments={"seq_length": seq_len}, name="pack")
    encoder = encoders.load_hub(handles["encoder"], trainable=True, name="encoder")
    outputs = encoder(pack([tokenize(text)]))
    net = keras.layers.Dropout(dropout)(outputs["pooled_output"])
    return keras.Model(text, keras.layers.Dense(num_classes, dtype="float32", name="logits")(net)), encoder


def run_baseline(config, splits, seq_len: int) -> dict:
    from sklearn.metrics import f1_score
    from tfclf import callbacks, training
    from tfclf._backend import tf
    training.seed_everything(config.train.seed)
    num_classes, batch = len(splits.class_names), config.train.batch_size
    model, encoder = tutorial_model({"encoder": config.model.encoder_handle,
                                     "preprocess": config.model.preprocess_handle}, num_classes, seq_len)
    steps = int(np.ceil(len(splits.train) / batch)) * config.train.epochs
    training.compile_model(model, config.train, num_classes, config.train.lr, steps)

    def strings(frame, shuffle=False):
        dataset = tf.data.Dataset.from_tensor_slices((frame["text"].to_numpy().astype(str),
                                                      frame["label_id"].to_numpy()))
        if shuffle:
            dataset = dataset.shuffle(len(frame), seed=config.train.seed)
        return dataset.batch(batch).cache().prefetch(tf.data.AUTOTUNE)  # as the tutorial
    throughput = callbacks.Throughput(len(splits.train))
    model.fit(strings(splits.train, True), validation_data=strings(splits.val), epochs=config.train.epochs,
              callbacks=[throughput], verbose=2)
    texts = tf.constant(splits.test["text"].to_numpy().astype(str))
    logits = model.predict(texts, batch_size=batch, verbose=0)  # warm-up: tracing is not inference
    infer_seconds = best_of(2, lambda: model.predict(texts, batch_size=batch, verbose=0))
    return {"train_examples_per_sec": throughput.examples_per_sec,
            "infer_examples_per_sec": len(splits.test) / infer_seconds,
            "test_macro_f1": float(f1_score(splits.test["label_id"], logits.argmax(1), average="macro")),
            "shape": encoder_shape(encoder)}


def run_tfclf(config, splits, infer_batch: int) -> dict:
    from tfclf import export, predict, runner
    result = runner.train(config)
    serve = export.load(result.export_path)
    texts = splits.test["text"].tolist()
    predict.predict(serve, texts, infer_batch)  # warm-up
    infer_seconds = best_of(2, lambda: predict.predict(serve, texts, infer_batch))
    return {"train_examples_per_sec": result.metrics["train_examples_per_sec"],
            "infer_examples_per_sec": len(texts) / infer_seconds,
            "test_macro_f1": result.metrics["test"]["macro_f1"], "run_dir": result.run_dir}


def padded_tokens(config, splits, lengths, seq_len: int) -> float:
    """Mean tokens per training example that tfclf's length-grouped, trimmed batches actually carry."""
    from tfclf import data, transformer
    pipeline = transformer.TextEncoderPipeline(config.model.preprocess_handle)
    dataset = data.make_dataset(splits.train["text"], splits.train["label_id"], config.train.batch_size,
                                shuffle=True, seed=config.train.seed, map_fn=pipeline.map_fn(seq_len),
                                lengths=lengths)
    total = sum(int(np.prod(x["input_word_ids"].shape)) for x, _ in dataset)
    return total / len(splits.train)


def scaling(config, splits, sizes, seq_lens) -> dict:
    """Training seconds vs data size (tfclf, 1 epoch) and vs sequence length (fixed padding, a few steps)."""
    import dataclasses
    from tfclf import callbacks, runner, training
    from tfclf._backend import tf
    rows = {"size": [], "seq_len": []}
    for size in sizes:
        run = runner.train(dataclasses.replace(
            config, out=os.path.join(os.path.dirname(config.out), f"size-{size}"),
            data=dataclasses.replace(config.data, max_examples=size),
            train=dataclasses.replace(config.train, epochs=1),
            export=dataclasses.replace(config.export, skip_export=True)))
        rate = run.metrics["train_examples_per_sec"]
        rows["size"].append({"examples": size, "train_examples": run.metrics["num_train"],
                             "train_seconds": run.metrics["num_train"] / rate, "examples_per_sec": rate})
    batch = config.train.batch_size
    frame = splits.train.iloc[:4 * batch]
    for seq_len in seq_lens:
        training.seed_everything(config.train.seed)
        model, _ = tutorial_model({"encoder": config.model.encoder_handle,
                                   "preprocess": config.model.preprocess_handle}, len(splits.class_names), seq_len)
        training.compile_model(model, config.train, len(splits.class_names), config.train.lr, 8)
        dataset = tf.data.Dataset.from_tensor_slices((frame["text"].to_numpy().astype(str),
                                                      frame["label_id"].to_numpy())).batch(batch).cache()
        throughput = callbacks.Throughput(len(frame))
        model.fit(dataset, epochs=2, callbacks=[throughput], verbose=0)  # epoch 1 traces; epoch 2 is timed
        seconds = throughput.epoch_seconds[-1]
        rows["seq_len"].append({"seq_len": seq_len, "examples_per_sec": len(frame) / seconds,
                                "seconds_per_1k_examples": 1000 * seconds / len(frame)})
    return rows


def print_scaling(rows: dict) -> dict:
    print("\n== scaling: tfclf, 1 epoch\n| examples | train examples | train s | ex/s |\n|---|---|---|---|")
    for row in rows["size"]:
        print(f"| {row['examples']} | {row['train_examples']} | {row['train_seconds']:.1f} | "
              f"{row['examples_per_sec']:.1f} |")
    print("\n== scaling: fixed padding (tutorial), per sequence length\n| seq_len | ex/s | s per 1k examples |"
          "\n|---|---|---|")
    for row in rows["seq_len"]:
        print(f"| {row['seq_len']} | {row['examples_per_sec']:.2f} | {row['seconds_per_1k_examples']:.0f} |")
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfclf.bench", description=__doc__,
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
    parser.add_argument("--scaling", action="store_true", help="also time data sizes and sequence lengths")
    parser.add_argument("--sizes", default="1000,2000,4000", help="data sizes for --scaling")
    parser.add_argument("--seq-lens", default="64,128,256", help="sequence lengths for --scaling")
    parser.add_argument("--scaling-only", action="store_true", help="skip the comparison; only --scaling")
    parser.add_argument("--out", help="directory for the runs (default: a temporary one)")
    args = parser.parse_args(argv)

    def job():
        from tfclf import config as config_lib, data, models, runner, training, transformer
        from tfclf._backend import tf
        if models.MODELS.get(args.encoder, {}).get("input") != "tokens":
            raise ValueError(f"--encoder {args.encoder}: the benchmark compares transformer pipelines; choose "
                             f"one of: {', '.join(k for k, v in models.MODELS.items() if v['input'] == 'tokens')}")
        out = args.out or tempfile.mkdtemp(prefix="tfclf-bench-")
        config = runner.resolve(config_lib.from_flat({
            "data": args.data, "encoder": args.encoder, "max_examples": args.max_examples, "epochs": args.epochs,
            "val_fraction": args.val_fraction, "test_fraction": args.test_fraction,
            "batch_size": args.batch_size, "seq_len": args.seq_len, "lr": args.lr, "seed": args.seed,
            "encoder_handle": args.encoder_handle, "preprocess_handle": args.preprocess_handle,
            "restore_best": False, "out": os.path.join(out, "tfclf"), "export_dir": os.path.join(out, "models")}))
        table, stats = data.load(config.data)
        splits = data.prepare(table, config.data, args.seed, source=stats["source"])
        pipeline = transformer.TextEncoderPipeline(config.model.preprocess_handle)
        lengths = np.minimum(pipeline.lengths(splits.train["text"]), args.seq_len)
        cpu = open("/proc/cpuinfo", encoding="utf-8").read()
        bf16 = "avx512_bf16" in cpu or "amx_bf16" in cpu
        peak = {"float32": matmul_peak("float32")}
        if bf16:
            peak["bfloat16"] = matmul_peak("bfloat16")
        print(f"matmul peak: " + ", ".join(f"{k} {v / 1e9:.1f} GFLOP/s" for k, v in peak.items())
              + ("" if bf16 else " (no avx512_bf16/amx_bf16 on this CPU: bf16 not measured)"))
        print(f"{len(splits.train)} train / {len(splits.val)} val / {len(splits.test)} test texts, "
              f"{args.epochs} epoch(s), batch {args.batch_size}, {os.cpu_count()} CPU cores, TF {tf.__version__}")

        if args.scaling_only:
            print_scaling(scaling(config, splits, [int(s) for s in args.sizes.split(",")],
                                  [int(s) for s in args.seq_lens.split(",")]))
            return
        print("\n== baseline (tutorial)")
        base = run_baseline(config, splits, args.seq_len)
        print("\n== tfclf")
        ours = run_tfclf(config, splits, args.infer_batch)
        shape = base.pop("shape")
        useful = train_flops_per_example(shape, lengths)
        padded_base = train_flops_per_example(shape, np.full(len(lengths), args.seq_len))
        carried = padded_tokens(config, splits, lengths, args.seq_len)
        for name, run in (("baseline", base), ("tfclf", ours)):
            run["mfu"] = useful * run["train_examples_per_sec"] / peak["float32"]
        base["hardware_utilization"] = padded_base * base["train_examples_per_sec"] / peak["float32"]
        summary = {
            "encoder": args.encoder, "train_examples": len(splits.train), "test_examples": len(splits.test),
            "epochs": args.epochs, "batch_size": args.batch_size,
            "baseline_train_examples_per_sec": round(base["train_examples_per_sec"], 2),
            "tfclf_train_examples_per_sec": round(ours["train_examples_per_sec"], 2),
            "train_speedup": round(ours["train_examples_per_sec"] / base["train_examples_per_sec"], 2),
            "baseline_infer_examples_per_sec": round(base["infer_examples_per_sec"], 2),
            "tfclf_infer_examples_per_sec": round(ours["infer_examples_per_sec"], 2),
            "infer_speedup": round(ours["infer_examples_per_sec"] / base["infer_examples_per_sec"], 2),
            "baseline_test_macro_f1": round(base["test_macro_f1"], 4),
            "tfclf_test_macro_f1": round(ours["test_macro_f1"], 4),
            "mean_tokens": round(float(lengths.mean()), 1), "tfclf_tokens_carried": round(carried, 1),
            "baseline_tokens_carried": args.seq_len,
            "train_gflops_per_example": round(useful / 1e9, 3),
            "peak_gflops_float32": round(peak["float32"] / 1e9, 1),
            "mfu": round(ours["mfu"], 4), "baseline_mfu": round(base["mfu"], 4),
            "baseline_hardware_utilization": round(base["hardware_utilization"], 4),
        }
        print("\n== result")
        print(f"{'':<10}{'train ex/s':>12}{'infer ex/s':>12}{'test macro-F1':>15}{'MFU':>8}")
        for name, run in (("baseline", base), ("tfclf", ours)):
            print(f"{name:<10}{run['train_examples_per_sec']:>12.2f}{run['infer_examples_per_sec']:>12.2f}"
                  f"{run['test_macro_f1']:>15.4f}{run['mfu']:>8.1%}")
        print(f"speedup: train x{summary['train_speedup']}, inference x{summary['infer_speedup']}; tokens per "
              f"training example: {summary['mean_tokens']} real, tfclf carries {summary['tfclf_tokens_carried']}, "
              f"the baseline {args.seq_len} (its FLOP utilization counting padding: "
              f"{summary['baseline_hardware_utilization']:.1%})")
        if args.scaling:
            summary["scaling"] = print_scaling(scaling(config, splits, [int(s) for s in args.sizes.split(",")],
                                                       [int(s) for s in args.seq_lens.split(",")]))
        print(json.dumps(summary))
    return cli.run_main(job)


if __name__ == "__main__":
    sys.exit(main())
