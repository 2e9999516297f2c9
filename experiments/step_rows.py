"""Per-step time of the default job's packed training batches by their row count: is the first batch of a
new row count slower than its repeats (shape warm-up, retracing)? Runs the job's own pipeline through Keras'
train function (traced once, as in fit), STEPS steps (default 150).

    STEPS=60 python experiments/step_rows.py [flags of python -m tfclf.run]
"""
import os, sys, time, collections
import numpy as np
from tfclf import run
from tfclf.data import pipeline
from tfclf.stages import preparing, fitting
from tfclf.training import distribute
config = preparing.resolve(run.config_from_args(sys.argv[1:]))
prepared = preparing.prepare(config)
strategy = distribute.make_strategy(config.train.strategy)
model, schedule = fitting.build(prepared, strategy)
splits = prepared.splits
labels = prepared.task.targets(splits.train, splits.class_names)
ds = pipeline.make_dataset(splits.train["text"], labels, config.train.batch_size, shuffle=True, seed=42,
                           map_fn=prepared.input_fn()).repeat()
train_fn = model.make_train_function()
seen = collections.Counter(); first, again = [], []
t0 = time.perf_counter()
it = iter(ds)
for i, (x, y) in enumerate(ds.take(int(os.environ.get("STEPS", "150")))):
    rows = int(x["input_word_ids"].shape[0]) if isinstance(x, dict) else int(x.shape[0])
    t = time.perf_counter(); out = train_fn(it); float(out['loss']); dt = time.perf_counter() - t
    (first if seen[rows] == 0 else again).append(dt); seen[rows] += 1
    if i < 5 or seen[rows] == 1: print(f"step {i} rows {rows} {dt:.3f}s {'NEW' if seen[rows]==1 else ''}", flush=True)
print("rows seen", sorted(seen.items()))
print(f"first-of-shape: n={len(first)} mean {np.mean(first[1:]):.3f}s; repeat: n={len(again)} mean {np.mean(again):.3f}s median {np.median(again):.3f}")
print(f"last 50 steps mean {np.mean(again[-50:]):.3f}s; total {time.perf_counter()-t0:.1f}s")
