"""Scoring the validation texts with the default job's (packed, untrained) model at several batch sizes, the
first call (with its trace) included, as held_out.score_logits scores them (shortest first).

    python experiments/scoring_batch.py [flags of python -m tfclf.run]
"""
import sys, time
import numpy as np
from tfclf import run
from tfclf.stages import preparing, fitting, held_out
from tfclf.evaluation import scoring
from tfclf.training import distribute
config = preparing.resolve(run.config_from_args(sys.argv[1:]))
prepared = preparing.prepare(config)
model, _ = fitting.build(prepared, distribute.make_strategy(config.train.strategy))
texts = prepared.splits.val["text"]; lengths = prepared.lengths["val"]
ref = None
for batch in [32, 32, 64, 128, 256, 32, 128]:
    t = time.perf_counter()
    logits = scoring.predict_logits(model, texts, batch, prepared.input_fn(), lengths)
    dt = time.perf_counter() - t
    ref = logits if ref is None else ref
    print(f"batch {batch}: {dt:.2f}s ({len(texts)/dt:.0f} texts/s) max|diff| {np.abs(logits-ref).max():.2e}", flush=True)
