"""The data's first look, written into every run directory: eda.json (class counts, lengths, the sequence
cap and how many texts exceed it), class_distribution.png and length_histogram.png.

    eda.write(splits, seq_len, "words", train_lengths, run_dir)
"""
import os

import numpy as np
import pandas as pd

from tfclf import files
from tfclf.data import splits as splits_lib
from tfclf.evaluation import plots


def write(splits: splits_lib.Splits, seq_len: int, length_unit: str, model_lengths, run_dir: str,
          extra: dict = None, kind: str = "class", note: str = "") -> dict:
    """Class counts, length statistics, bar chart (of texts per `kind`: the task's label word, with its
    `note`) and length histogram; returns eda.json's content."""
    words = np.array([len(text.split()) for text in splits.train["text"]], dtype=np.int32)
    model_lengths = np.asarray(model_lengths)
    summary = {
        **splits.summary,
        "class_names": splits.class_names,
        "train_word_length": {"mean": float(words.mean()), "p50": float(np.percentile(words, 50)),
                              "p95": float(np.percentile(words, 95)), "max": int(words.max())},
        "seq_len": int(seq_len),
        "length_unit": length_unit,
        "train_share_truncated": float((model_lengths > seq_len).mean()),
        **(extra or {}),
    }
    files.write_json(os.path.join(run_dir, "eda.json"), summary)
    counts = pd.DataFrame(splits.summary["class_counts"]).loc[splits.class_names]
    plots.save_figure(plots.class_distribution_figure(counts, kind, note),
                      os.path.join(run_dir, "class_distribution.png"))
    sampled = getattr(splits, "counts", {}).get("train", 0) > len(splits.train)  # streamed: the training sample
    plots.save_figure(plots.length_histogram_figure(model_lengths, seq_len, length_unit,
                                                    len(splits.train) if sampled else 0),
                      os.path.join(run_dir, "length_histogram.png"))
    return summary
