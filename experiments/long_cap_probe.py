"""Linear probe of MiniLM features under different length caps on the manual-pages set (no fine-tuning).

For each cap, the untrained-head classifier is built as the default run builds it; the representation its head
reads (the pooled text vector) is computed once for every text, and a logistic regression fitted on the
training split is scored on validation and test. Cheap (one forward pass per text and cap), so it can compare
what each cap keeps of a long text where a fine-tune of each would take an hour on 2 cores.

    python experiments/man_sections.py            # ~/.cache/tfclf/man_sections.jsonl
    python experiments/long_cap_probe.py ~/.cache/tfclf/man_sections.jsonl probe.json

Prints one JSON row per cap (validation and test macro-F1 of the probe, the C chosen on validation).
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from sklearn import linear_model, metrics, preprocessing  # noqa: E402

from tfclf import config as config_lib  # noqa: E402
from tfclf._backend import keras  # noqa: E402
from tfclf.stages import fitting, held_out, preparing  # noqa: E402
from tfclf.training import distribute  # noqa: E402

ARMS = [(128, "head+tail"), (256, "head"), (256, "head+tail"), (512, "head"), (512, "head+tail")]
def main(data: str) -> list:
    rows = []
    for seq_len, side in ARMS:
        config = config_lib.from_flat({"data": data, "seq_len": seq_len, "truncate": side, "pack": "off",
                                       "skip_export": True}, "probe")
        config = preparing.resolve(config)
        prepared = preparing.prepare(config)
        model, _ = fitting.build(prepared, distribute.make_strategy("default"))
        head = model.layers[-1]
        features = keras.Model(model.inputs, head.input)
        started = time.perf_counter()
        X = {s: held_out.score_logits(features, prepared, s) for s in ("train", "val", "test")}
        seconds = time.perf_counter() - started
        y = {s: getattr(prepared.splits, s)["label_id"].to_numpy() for s in X}
        scaler = preprocessing.StandardScaler().fit(X["train"])
        best = None
        for C in (0.01, 0.1, 1.0):
            clf = linear_model.LogisticRegression(C=C, max_iter=3000).fit(scaler.transform(X["train"]), y["train"])
            val = metrics.f1_score(y["val"], clf.predict(scaler.transform(X["val"])), average="macro")
            if best is None or val > best[0]:
                best = (val, C, clf)
        val, C, clf = best
        test = metrics.f1_score(y["test"], clf.predict(scaler.transform(X["test"])), average="macro")
        row = {"seq_len": seq_len, "truncate": side, "C": C, "val_macro_f1": round(val, 4),
               "test_macro_f1": round(test, 4), "texts": int(sum(len(v) for v in X.values())),
               "scoring_seconds": round(seconds, 1), "head_layer": head.name}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


if __name__ == "__main__":
    rows = main(sys.argv[1])
    if len(sys.argv) > 2:
        with open(sys.argv[2], "w") as out:
            json.dump(rows, out, indent=1)
