"""A tiny random Hugging Face BERT checkpoint and an independent numpy forward pass."""
import json
import math
import os
import struct

import numpy as np

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "dog", "##s",
         "free", "prize", "call", "now", "hello", "friend", "cafe", ",", ".", "!", "'", "中", "文", "un",
         "##believ", "##able", "e", "c", "a", "f"]


def write_safetensors(path, arrays):
    header, offset, blobs = {}, 0, []
    for name, array in arrays.items():
        data = np.ascontiguousarray(array, dtype=np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    encoded = json.dumps(header).encode()
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(encoded)) + encoded + b"".join(blobs))


def write_tiny_bert(directory, hidden=8, layers=2, heads=2, intermediate=16, positions=32, seed=0,
                    model_type="bert", vocab=VOCAB, scale=0.3):
    """`scale` is the std of the dense weights: 0.3 makes a tough numeric test, 0.02 (BERT's
    initializer) a near-identity network that trains quickly on toy data."""
    rng = np.random.default_rng(seed)
    os.makedirs(directory, exist_ok=True)
    config = {"model_type": model_type, "vocab_size": len(vocab), "hidden_size": hidden,
              "num_hidden_layers": layers, "num_attention_heads": heads, "intermediate_size": intermediate,
              "hidden_act": "gelu", "max_position_embeddings": positions, "type_vocab_size": 2,
              "layer_norm_eps": 1e-12, "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1}
    weights = {
        "embeddings.word_embeddings.weight": rng.normal(0, 0.5, (len(vocab), hidden)),
        "embeddings.position_embeddings.weight": rng.normal(0, 0.5, (positions, hidden)),
        "embeddings.token_type_embeddings.weight": rng.normal(0, 0.5, (2, hidden)),
        "embeddings.LayerNorm.weight": rng.normal(1, 0.1, hidden),
        "embeddings.LayerNorm.bias": rng.normal(0, 0.1, hidden),
        "pooler.dense.weight": rng.normal(0, scale, (hidden, hidden)),
        "pooler.dense.bias": rng.normal(0, 0.1, hidden),
    }
    for i in range(layers):
        p = f"encoder.layer.{i}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value",
                     "attention.output.dense"):
            weights[p + name + ".weight"] = rng.normal(0, scale, (hidden, hidden))
            weights[p + name + ".bias"] = rng.normal(0, 0.1, hidden)
        weights[p + "intermediate.dense.weight"] = rng.normal(0, scale, (intermediate, hidden))
        weights[p + "intermediate.dense.bias"] = rng.normal(0, 0.1, intermediate)
        weights[p + "output.dense.weight"] = rng.normal(0, scale, (hidden, intermediate))
        weights[p + "output.dense.bias"] = rng.normal(0, 0.1, hidden)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            weights[p + norm + ".weight"] = rng.normal(1, 0.1, hidden)
            weights[p + norm + ".bias"] = rng.normal(0, 0.1, hidden)
    prefix = "electra." if model_type == "electra" else "bert."
    write_safetensors(os.path.join(directory, "model.safetensors"), {prefix + k: v for k, v in weights.items()})
    with open(os.path.join(directory, "config.json"), "w") as handle:
        json.dump(config, handle)
    with open(os.path.join(directory, "vocab.txt"), "w") as handle:
        handle.write("\n".join(vocab) + "\n")
    return config, {k: v.astype(np.float32) for k, v in weights.items()}


def numpy_bert(config, w, ids, mask, types):
    """Reference forward pass of Hugging Face BertModel in numpy (float64)."""
    def norm(x, name):
        mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + 1e-12) * w[name + ".weight"] + w[name + ".bias"]

    def dense(x, name):
        return x @ w[name + ".weight"].T + w[name + ".bias"]

    erf = np.vectorize(math.erf)
    positions = np.arange(ids.shape[1])
    x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][positions]
         + w["embeddings.token_type_embeddings.weight"][types])
    x = norm(x.astype(np.float64), "embeddings.LayerNorm")
    heads = config["num_attention_heads"]
    batch, length, hidden = x.shape
    size = hidden // heads
    bias = (1.0 - mask[:, None, None, :]) * -1e9
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        q, k, v = (dense(x, p + f"attention.self.{n}").reshape(batch, length, heads, size).transpose(0, 2, 1, 3)
                   for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(size) + bias
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        context = (scores / scores.sum(-1, keepdims=True)) @ v
        context = context.transpose(0, 2, 1, 3).reshape(batch, length, hidden)
        x = norm(dense(context, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
        inner = dense(x, p + "intermediate.dense")
        inner = 0.5 * inner * (1.0 + erf(inner / math.sqrt(2.0)))
        x = norm(dense(inner, p + "output.dense") + x, p + "output.LayerNorm")
    pooled = np.tanh(dense(x[:, 0], "pooler.dense"))
    return x, pooled
