"""Hugging Face BERT / ELECTRA-discriminator checkpoint -> TF Hub-format encoder + preprocessor.

    python -m tfclf.import_hf SRC_DIR --out DST_DIR

SRC_DIR holds `config.json`, `model.safetensors` and `vocab.txt`. DST_DIR gets
`encoder/` (a SavedModel with the TF Hub text-encoder interface: inputs
input_word_ids / input_mask / input_type_ids, outputs pooled_output /
sequence_output / encoder_outputs / default, trainable, the vocab as an asset)
and `preprocess/` (tokenize, bert_pack_inputs, default call), both built with
tf-models-official's BertEncoder and export_tfhub_lib, as the official TF Hub
BERTs are. Once imported, the two directories are ordinary TF Hub handles.
"""
import json
import os
import shutil
import struct

import numpy as np

from tfclf._backend import keras, tf

_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": None, "I64": np.int64, "I32": np.int32}


def read_safetensors(path: str) -> dict:
    """name -> numpy array, read directly from the safetensors layout (8-byte header size, JSON, data)."""
    with open(path, "rb") as handle:
        header_size = struct.unpack("<Q", handle.read(8))[0]
        header = json.loads(handle.read(header_size))
        buffer = handle.read()
    arrays = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        raw = buffer[start:end]
        if info["dtype"] == "BF16":  # widen bfloat16 to float32
            values = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
            arrays[name] = values.view(np.float32).reshape(info["shape"])
        elif info["dtype"] in _DTYPES:
            arrays[name] = np.frombuffer(raw, dtype=_DTYPES[info["dtype"]]).reshape(info["shape"])
        else:
            raise ValueError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
    return arrays


@keras.utils.register_keras_serializable(package="tfclf")
def exact_gelu(x):
    """erf-based GELU, as Hugging Face's "gelu" (tf-models' "gelu" is the tanh approximation)."""
    return keras.activations.gelu(x, approximate=False)


ACTIVATIONS = {"gelu": exact_gelu, "gelu_new": "gelu", "gelu_pytorch_tanh": "gelu", "relu": "relu"}


def read_checkpoint(source: str) -> tuple:
    """Returns (hf_config, weights without model prefix, vocab_path); ValueError names what is missing."""
    for name in ("config.json", "model.safetensors", "vocab.txt"):
        if not os.path.isfile(os.path.join(source, name)):
            raise ValueError(f"{source}: {name} not found; a Hugging Face BERT/ELECTRA checkpoint directory "
                             "needs config.json, model.safetensors and vocab.txt")
    with open(os.path.join(source, "config.json"), encoding="utf-8") as handle:
        hf_config = json.load(handle)
    if hf_config.get("model_type") not in ("bert", "electra"):
        raise ValueError(f"{source}/config.json: model_type {hf_config.get('model_type')!r} is not supported; "
                         "tfclf imports 'bert' and 'electra' checkpoints")
    if hf_config.get("hidden_act", "gelu") not in ACTIVATIONS:
        raise ValueError(f"{source}/config.json: hidden_act {hf_config['hidden_act']!r} is not supported")
    if abs(hf_config.get("layer_norm_eps", 1e-12) - 1e-12) > 1e-15:
        raise ValueError(f"{source}/config.json: layer_norm_eps must be 1e-12 (BertEncoder's fixed epsilon)")
    weights = {}
    for name, value in read_safetensors(os.path.join(source, "model.safetensors")).items():
        for prefix in ("bert.", "electra."):
            if name.startswith(prefix):
                name = name[len(prefix):]
        weights[name] = value
    return hf_config, weights, os.path.join(source, "vocab.txt")


def build_encoder(hf_config: dict, name: str = None):
    """tf-models' BertEncoder for a Hugging Face BERT/ELECTRA config (no weights loaded; no I/O)."""
    from official.nlp.modeling import networks

    hidden = hf_config["hidden_size"]
    embedding = hf_config.get("embedding_size", hidden)
    return networks.BertEncoder(
        vocab_size=hf_config["vocab_size"], hidden_size=hidden, num_layers=hf_config["num_hidden_layers"],
        num_attention_heads=hf_config["num_attention_heads"], inner_dim=hf_config["intermediate_size"],
        inner_activation=ACTIVATIONS[hf_config.get("hidden_act", "gelu")],
        output_dropout=hf_config.get("hidden_dropout_prob", 0.1),
        attention_dropout=hf_config.get("attention_probs_dropout_prob", 0.1),
        max_sequence_length=hf_config["max_position_embeddings"], type_vocab_size=hf_config["type_vocab_size"],
        initializer=keras.initializers.TruncatedNormal(stddev=hf_config.get("initializer_range", 0.02)),
        embedding_width=embedding if embedding != hidden else None, dict_outputs=True, name=name)


def _tf_weight(name: str, weights: dict, heads: int):
    """The Hugging Face array for one BertEncoder variable name, transposed/reshaped."""
    name = name.split(":")[0]

    def linear(key):
        return weights[key + ".weight"].T

    if name == "word_embeddings/embeddings":
        return weights["embeddings.word_embeddings.weight"]
    if name == "position_embedding/embeddings":
        return weights["embeddings.position_embeddings.weight"]
    if name == "type_embeddings/embeddings":
        return weights["embeddings.token_type_embeddings.weight"]
    if name.startswith("embeddings/layer_norm/"):
        return weights["embeddings.LayerNorm." + ("weight" if name.endswith("gamma") else "bias")]
    if name.startswith("embedding_projection/"):
        return linear("embeddings_project") if name.endswith("kernel") else weights["embeddings_project.bias"]
    if name.startswith("pooler_transform/"):
        if "pooler.dense.weight" not in weights:
            return None  # ELECTRA has no pooler: keep the initialised one (use --pooling cls or mean)
        return linear("pooler.dense") if name.endswith("kernel") else weights["pooler.dense.bias"]
    _, layer, part, *rest = name.split("/")
    hf = f"encoder.layer.{layer.split('_')[1]}."
    kind = rest[-1]
    if part == "self_attention":
        sub = rest[0]
        if sub in ("query", "key", "value"):
            key = hf + f"attention.self.{sub}"
            if kind == "kernel":
                kernel = linear(key)
                return kernel.reshape(kernel.shape[0], heads, -1)
            return weights[key + ".bias"].reshape(heads, -1)
        key = hf + "attention.output.dense"
        if kind == "kernel":
            kernel = linear(key)
            return kernel.reshape(heads, -1, kernel.shape[1])
        return weights[key + ".bias"]
    norm = "weight" if kind == "gamma" else "bias"
    mapping = {"self_attention_layer_norm": hf + "attention.output.LayerNorm." + norm,
               "output_layer_norm": hf + "output.LayerNorm." + norm}
    if part in mapping:
        return weights[mapping[part]]
    key = hf + ("intermediate.dense" if part == "intermediate" else "output.dense")
    return linear(key) if kind == "kernel" else weights[key + ".bias"]


def load_weights(encoder, hf_config: dict, weights: dict) -> None:
    heads = hf_config["num_attention_heads"]
    for variable in encoder.weights:
        value = _tf_weight(variable.name, weights, heads)
        if value is None:
            continue
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(f"checkpoint tensor for {variable.name} has shape {value.shape}, "
                             f"expected {tuple(variable.shape)}")
        variable.assign(value.astype(np.float32))


def import_checkpoint(source: str, destination: str, seq_length: int = 128) -> dict:
    """Writes destination/{encoder,preprocess}; returns {"encoder": path, "preprocess": path}."""
    from official.nlp.tools import export_tfhub_lib

    hf_config, weights, vocab_path = read_checkpoint(source)
    do_lower_case = _do_lower_case(source)
    staging = destination.rstrip("/") + ".partial"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    try:
        encoder = build_encoder(hf_config)
        load_weights(encoder, hf_config, weights)
        # As export_tfhub_lib.export_model: a dict-input core model with "default" = pooled_output.
        inputs = {x.name: x for x in encoder.inputs}
        outputs = dict(encoder(inputs))
        outputs["default"] = outputs["pooled_output"]
        core = keras.Model(inputs=inputs, outputs=outputs)
        core.vocab_file = tf.saved_model.Asset(vocab_path)
        core.do_lower_case = tf.Variable(do_lower_case, trainable=False)
        core.save(os.path.join(staging, "encoder"), include_optimizer=False, save_format="tf")
        export_tfhub_lib.export_preprocessing(
            os.path.join(staging, "preprocess"), vocab_file=vocab_path, do_lower_case=do_lower_case,
            tokenize_with_offsets=False, default_seq_length=seq_length)
        with open(os.path.join(staging, "hf_config.json"), "w", encoding="utf-8") as handle:
            json.dump({**hf_config, "do_lower_case": do_lower_case, "source": os.path.abspath(source)}, handle,
                      indent=2)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(destination, ignore_errors=True)
    os.replace(staging, destination)
    return {"encoder": os.path.join(destination, "encoder"), "preprocess": os.path.join(destination, "preprocess")}


def _do_lower_case(source: str) -> bool:
    path = os.path.join(source, "tokenizer_config.json")
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as handle:
            return bool(json.load(handle).get("do_lower_case", True))
    return True
