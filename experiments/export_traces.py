"""The export's write and load time with and without tf-keras' layer traces, side by side in one process:
the default job's model (untrained: the time does not depend on the weights) saved as its serving module
twice each way, each loaded back and called once, with the probabilities compared.

    python experiments/export_traces.py [flags of python -m tfclf.run]   # writes ./export-traces-<n>/ (removed)
"""
import contextlib
import os
import shutil
import sys
import time

import numpy as np
from tfclf import run
from tfclf._backend import tf
from tfclf.stages import preparing, fitting
from tfclf.serving import signatures, saving
from tfclf.training import distribute
config = preparing.resolve(run.config_from_args(sys.argv[1:]))
prepared = preparing.prepare(config)
model, _ = fitting.build(prepared, distribute.make_strategy(config.train.strategy))
serving = prepared.family.serving_model(model, config.model, prepared.seq_len)
texts = tf.constant(["win a free prize now", "see you at lunch", "URGENT call 0800 now to claim"])
results = {}
for trial, traces in enumerate([True, False, True, False]):
    module = signatures.Serving.from_record(serving, prepared.class_names, {"temperature": 1.3})
    path = f"export-traces-{trial}"
    shutil.rmtree(path, ignore_errors=True)
    t = time.perf_counter()
    with saving.without_optimizers(module), (saving.without_layer_traces() if not traces else contextlib.nullcontext()):
        tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    dt = time.perf_counter() - t
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)
    t = time.perf_counter()
    loaded = tf.saved_model.load(path)
    out = loaded.signatures["serving_default"](text=texts)
    lt = time.perf_counter() - t
    results[trial] = out["probabilities"].numpy()
    print(f"save_traces={traces}: save {dt:.2f}s, {size/1e6:.1f} MB, load+first call {lt:.2f}s", out["class_name"].numpy(), flush=True)
print("max |diff| traces vs none:", float(np.abs(results[0] - results[1]).max()))
for trial in results:
    shutil.rmtree(f"export-traces-{trial}", ignore_errors=True)
