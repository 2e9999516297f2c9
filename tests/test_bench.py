"""The benchmark's arithmetic and a tiny end-to-end run; length-grouped batches."""
import json
import os
import sys

import numpy as np
import pytest

from conftest import toy_rows, write_csv
from tfclf import bench
from tfclf.data import pipeline
from tfclf.models import tfhub as encoders
from tfclf.studies import benchmark


def test_training_flops_follow_the_6_n_t_rule_plus_attention():
    shape = {"non_embedding_params": 1000, "layers": 2, "hidden": 8}
    # 6 * 1000 * 10 + 12 * 2 * 100 * 8 = 79,200 and 6 * 1000 * 20 + 12 * 2 * 400 * 8 = 196,800
    assert benchmark.train_flops_per_example(shape, [10, 20]) == pytest.approx((79200 + 196800) / 2)


def test_encoder_shape_counts_non_embedding_parameters(tiny_hub):
    shape = benchmark.encoder_shape(encoders.load_hub(tiny_hub["encoder"], trainable=True, name="encoder"))
    hidden, intermediate, layers = 32, 64, 2
    per_layer = 4 * (hidden * hidden + hidden) + 2 * 2 * hidden + (hidden * intermediate + intermediate) + \
        (intermediate * hidden + hidden)
    pooler = hidden * hidden + hidden
    assert shape["layers"] == layers and shape["hidden"] == hidden
    assert shape["non_embedding_params"] == layers * per_layer + pooler  # embedding tables and their LayerNorm out


def test_length_grouped_batches_keep_every_example_once_group_lengths_and_keep_the_class_mix():
    rng = np.random.default_rng(0)
    labels = (rng.random(480) < 0.15).astype(np.int32)  # class 1 is rarer and longer, as spam
    lengths = np.where(labels == 1, rng.integers(20, 100, 480), rng.integers(1, 60, 480))
    texts = [f"t{i}" for i in range(480)]

    def dataset(**grouping):
        return pipeline.make_dataset(texts, np.column_stack([labels, np.arange(480)]).astype(np.float32), 16,
                                 shuffle=True, seed=1, **grouping)

    def batches(dataset):
        ids = [batch[1].numpy()[:, 1].astype(int) for batch in dataset]
        return (np.concatenate(ids), np.mean([lengths[b].max() for b in ids]),
                np.std([labels[b].mean() for b in ids]))
    grouped = dataset(lengths=lengths, pool_batches=10)
    ids, grouped_padding, grouped_mix = batches(grouped)
    assert sorted(ids.tolist()) == list(range(480))
    _, plain_padding, plain_mix = batches(dataset())
    assert grouped_padding < 0.9 * plain_padding, (grouped_padding, plain_padding)  # shorter padded batches
    assert grouped_mix < plain_mix  # ...without batches of one class (plain length sorting fails this)
    again, _, _ = batches(grouped)
    assert again.tolist() != ids.tolist()  # reshuffled every epoch


@pytest.mark.slow
def test_bench_runs_both_pipelines_and_ends_with_json(tmp_path, tiny_hub, capsys, monkeypatch):
    # The matmul peak measured on 512 x 512 for 0.3 s instead of 2048 x 2048 for 3 s per precision (6 s of both
    # cores where bf16 runs): the same function and arithmetic; the figure itself is not what this test checks.
    peak = benchmark.matmul_peak
    monkeypatch.setattr(benchmark, "matmul_peak", lambda dtype: peak(dtype, size=512, seconds=0.3))
    toy = write_csv(tmp_path / "toy.csv", toy_rows(120, filler=1))
    code = bench.main(["--encoder", "bert_small", "--encoder-handle", tiny_hub["encoder"],
                       "--preprocess-handle", tiny_hub["preprocess"], "--data", toy, "--max-examples", "0",
                       "--epochs", "1", "--batch-size", "8", "--seq-len", "32", "--pack-length", "32",
                       "--lr", "0.002", "--out", str(tmp_path / "bench")])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("train_speedup", "infer_speedup", "unpacked_train_speedup", "baseline_test_macro_f1",
                "tfclf_test_macro_f1", "unpacked_test_macro_f1", "mfu", "mfu_percent", "unpacked_mfu_percent"):
        assert key in result and result[key] > 0, key
    # Packed rows carry little more than the real tokens; the tutorial pads every text to 32.
    assert result["tfclf_tokens_carried"] <= 1.5 * result["mean_tokens"] < result["baseline_tokens_carried"] == 32
    assert 0 < result["mfu"] < 1 and result["mfu_percent"] == pytest.approx(100 * result["mfu"], rel=1e-2)
    assert result["peak_gflops"] > 1 and result["precision"] == "float32" and result["cpu"]["cores"] >= 1


def test_peer_without_torch_is_refused_before_anything_trains(tmp_path, capsys):
    code = bench.main(["--peer", "hf", "--peer-python", sys.executable, "--out", str(tmp_path / "bench")])
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("tfclf: error: --peer-python ") and "cannot import torch" in error
    assert len(error.splitlines()) == 1 and not (tmp_path / "bench").exists()


PEER = os.environ.get("TFCLF_PEER_PYTHON", "")


@pytest.mark.slow
@pytest.mark.skipif(not PEER, reason="set TFCLF_PEER_PYTHON to an interpreter with torch and transformers "
                                     "(a separate environment; never tfclf's) to test the PyTorch peer")
def test_bench_peer_fine_tunes_the_same_checkpoint_with_pytorch(tmp_path, tiny_hub, capsys):
    toy = write_csv(tmp_path / "toy.csv", toy_rows(120, filler=1))
    hf_dir = os.path.normpath(os.path.join(tiny_hub["encoder"], "..", "..", "hf"))
    code = bench.main(["--encoder", "bert_small", "--encoder-handle", tiny_hub["encoder"],
                       "--preprocess-handle", tiny_hub["preprocess"], "--data", toy, "--max-examples", "0",
                       "--epochs", "8", "--batch-size", "8", "--seq-len", "32", "--lr", "0.002", "--skip-baseline",
                       "--peer", "hf", "--peer-python", PEER, "--peer-checkpoint", hf_dir,
                       "--out", str(tmp_path / "bench")])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "train_speedup" not in result and result["peer_train_speedup"] > 0
    assert result["peer_test_macro_f1"] > 0.8 and result["tfclf_test_macro_f1"] > 0.8  # both learn the toy task
