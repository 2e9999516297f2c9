"""Where a fine-tuning step's time goes: minilm_l6, one batch shape, each part timed on its own.

    .venv/bin/python experiments/step_breakdown.py [--batch 32] [--tokens 56] [--build native|savedmodel]
        [--pack-length 128] [--mixed-precision] [--adamw fused|keras] [--xla]

Parts (each a compiled tf.function, best of --repeats after a warm-up; wall seconds and this process's
CPU seconds, which a busy machine inflates less):
  tokenize   the preprocessing model's tokenize + bert_pack_inputs on one batch of SMS texts (tf.data does
             this in parallel with training, so it costs only when the cores are saturated)
  forward    the classifier's forward pass (training=True: dropout on)
  backward   forward + gradients of the loss
  step       forward + gradients + AdamW update with global-norm clipping (what `fit` runs)
  fit_step   the same step through `model.fit`, callbacks off: the framework's per-step cost is fit_step - step
With --pack-length, the batch's texts are packed into rows of that many tokens (models/packing.py) and the
packed classifier runs them (native build); --mixed-precision runs under mixed_bfloat16 where the CPU has bf16.
--adamw keras runs tf-keras' own AdamW instead of tfclf's FusedAdamW (training/optimizers.py); --xla compiles
the forward, backward and step functions with XLA (what `--xla` does to fit's train step).
Prints one JSON line.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tfclf import config as config_lib  # noqa: E402
from tfclf.stages import preparing  # noqa: E402
from tfclf._backend import keras, tf  # noqa: E402
from tfclf.data import splits  # noqa: E402
from tfclf.models import packing, transformer  # noqa: E402
from tfclf.tasks import kinds  # noqa: E402
from tfclf.training import fit as fit_lib, optimizers  # noqa: E402


def timed(work, repeats: int) -> dict:
    work()  # warm-up: tracing and oneDNN primitive creation are not the step
    best_wall, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        cpu, wall = os.times(), time.perf_counter()
        work()
        wall, after = time.perf_counter() - wall, os.times()
        best_wall = min(best_wall, wall)
        best_cpu = min(best_cpu, after.user + after.system - cpu.user - cpu.system)
    return {"wall": round(best_wall, 4), "cpu": round(best_cpu, 4)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=56)
    parser.add_argument("--build", default="native", choices=["native", "savedmodel"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pack-length", type=int, default=0, help="pack the batch into rows of this many tokens")
    parser.add_argument("--mixed-precision", action="store_true")
    parser.add_argument("--optimizer-xla", action="store_true", help="XLA-compile the optimizer's update (tf-keras "
                        "does it only with a GPU)")
    parser.add_argument("--adamw", default="fused", choices=["fused", "keras"],
                        help="tfclf's FusedAdamW (default) or tf-keras' own AdamW")
    parser.add_argument("--xla", action="store_true", help="XLA-compile the timed functions (fit's --xla)")
    args = parser.parse_args()
    if args.adamw == "keras":  # the optimizer tfclf used before FusedAdamW, with the same settings
        optimizers.OPTIMIZERS["adamw"] = lambda keras_module, lr, train: keras_module.optimizers.AdamW(
            learning_rate=lr, weight_decay=train.weight_decay, epsilon=1e-6, global_clipnorm=train.clip_norm)
    config = preparing.resolve(config_lib.from_flat({"encoder": "minilm_l6", "encoder_build": args.build,
                                                  "xla": args.xla, "out": "/tmp/unused"}))
    table, _ = splits.load(config.data)
    texts = table["text"].tolist()[:args.batch]
    pipeline = transformer.TextEncoderPipeline(config.model.preprocess_handle)
    packed = pipeline.pack_fn(128, args.pack_length) if args.pack_length else pipeline.map_fn(args.tokens, dynamic=False)
    strings = tf.constant(texts)
    tokenize = tf.function(lambda t: packed(t, tf.zeros([args.batch], tf.int32))[0])
    x = tokenize(strings)
    y = tf.zeros([args.batch], tf.int32)
    with fit_lib.keras_policy(args.mixed_precision):
        model = transformer.build_classifier(config.model, 2, config.model.encoder_handle,
                                             native=bool(args.pack_length) or args.build == "native")
        if args.pack_length:
            model = packing.PackedClassifier(model, config.model.pooling)
        fit_lib.compile_model(model, config.train, 1e-5, 1000, kinds.named("single_label").objective(config.train, 2, y))
    model.optimizer.jit_compile = args.optimizer_xla or model.optimizer.jit_compile
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function(jit_compile=args.xla or None)
    def forward():
        return model(x, training=True)

    @tf.function(jit_compile=args.xla or None)
    def backward():
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        return tape.gradient(loss, model.trainable_variables)

    step = tf.function(lambda: model.train_step((x, y)), jit_compile=args.xla or None)
    dataset = tf.data.Dataset.from_tensors((x, y)).repeat(4)
    parts = {"tokenize": timed(lambda: tokenize(strings), args.repeats),
             "forward": timed(lambda: forward(), args.repeats),
             "backward": timed(lambda: backward(), args.repeats),
             "step": timed(lambda: step(), args.repeats),
             "fit_step": {k: round(v / 4, 4) for k, v in timed(lambda: model.fit(dataset, verbose=0), 2).items()}}
    rows = x["input_word_ids"].shape
    print(json.dumps({"pack_length": args.pack_length, "rows": list(rows), "mixed_precision": args.mixed_precision,
                      "build": args.build, "adamw": args.adamw, "xla": args.xla,
                      "optimizer": type(model.optimizer).__name__, "optimizer_xla": bool(model.optimizer.jit_compile), "batch": args.batch, "tokens": args.tokens,
                      "cpu": open("/proc/cpuinfo").read().split("model name")[1].split("\n")[0].strip(": \t"),
                      "parts": parts}))


if __name__ == "__main__":
    main()
