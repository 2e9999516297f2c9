"""What a resumed run reads from its `<out>.partial`, verified before it is used.

A resume reads `trained/` (weights and fit record) once training had finished, else the epoch (or step)
backup in `backup/`, the best checkpoint in `checkpoints/` and `history.json`. `verify_resume(staging)`
raises a ValueError naming the first damaged file and what is wrong with it (missing, cut short, content
changed, not JSON), so that the resume is one line instead of a TensorFlow traceback. TensorFlow
checkpoints carry a CRC32C of every tensor, so reading each tensor back finds flipped bytes as well as
short files (about a second per GB); a Keras 3 `.weights.h5` is opened and read, which finds a short file
(HDF5 keeps no checksum of its data). TensorFlow is imported only when there is a checkpoint to read.
"""
import glob
import json
import os

TRAINED = "trained"


def verify_resume(staging: str) -> None:
    """ValueError naming the damaged file unless everything a resume of `staging` reads is whole."""
    trained = os.path.join(staging, TRAINED)
    if os.path.isdir(trained):  # training had finished: evaluation reads these only
        _json(os.path.join(trained, "fit.json"))
        _weights(os.path.join(trained, "weights"))
        return
    _json(os.path.join(staging, "history.json"), optional=True)
    for name in ("best", ".best-old"):  # callbacks.read_best reads the first one holding best.json
        best = os.path.join(staging, "checkpoints", name)
        if os.path.isfile(os.path.join(best, "best.json")):
            _json(os.path.join(best, "best.json"))
            _weights(os.path.join(best, "weights"))
            break
    _backup(os.path.join(staging, "backup"))


def _backup(directory: str) -> None:
    """tf-keras' BackupAndRestore: a TF checkpoint in backup/chief named by its `checkpoint` file; Keras 3's:
    latest.weights.h5 and training_metadata.json."""
    if os.path.isfile(os.path.join(directory, "latest.weights.h5")):
        _h5(os.path.join(directory, "latest.weights.h5"))
        _json(os.path.join(directory, "training_metadata.json"), optional=True)
    chief = os.path.join(directory, "chief")
    if os.path.isfile(os.path.join(chief, "checkpoint")):
        _tf_checkpoint(os.path.join(chief, _latest(chief)))


def _latest(directory: str) -> str:
    """The checkpoint name the `checkpoint` state file of `directory` points to."""
    path = os.path.join(directory, "checkpoint")
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key.strip() == "model_checkpoint_path" and value.strip().startswith('"') \
                    and value.strip().endswith('"') and len(value.strip()) > 2:
                return os.path.basename(value.strip()[1:-1])
    raise ValueError(f"{path}: damaged (no model_checkpoint_path line: cut short or changed)")


def _json(path: str, optional: bool = False) -> None:
    if optional and not os.path.exists(path):
        return
    if not os.path.isfile(path):
        raise ValueError(f"{path}: missing")
    try:
        with open(path, encoding="utf-8") as handle:
            json.load(handle)
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: damaged (not valid JSON: {str(error).splitlines()[0][:80]})") from None


def _weights(prefix: str) -> None:
    """saving.save_weights' output: a TF checkpoint at `prefix`, or Keras 3's `<prefix>.weights.h5`."""
    if os.path.isfile(prefix + ".weights.h5"):
        _h5(prefix + ".weights.h5")
    else:
        _tf_checkpoint(prefix)


def _tf_checkpoint(prefix: str) -> None:
    """Every tensor of the checkpoint at `prefix` read back (index, shards and their checksums)."""
    index = prefix + ".index"
    if not os.path.isfile(index):
        raise ValueError(f"{index}: missing")
    from tfclf._backend import tf
    try:
        reader = tf.train.load_checkpoint(prefix)
    except Exception as error:  # noqa: BLE001 (an OpError or a TypeError, by TensorFlow version)
        raise ValueError(f"{index}: damaged ({_cause(error)})") from None
    shards = sorted(glob.glob(glob.escape(prefix) + ".data-*-of-*"))
    expected = int(shards[0].rsplit("-of-", 1)[1]) if shards else 1
    if len(shards) < expected:
        named = {int(path.rsplit("-of-", 1)[0].rsplit("-", 1)[1]) for path in shards}
        number = min(set(range(expected)) - named)
        raise ValueError(f"{prefix}.data-{number:05d}-of-{expected:05d}: missing")
    try:
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except Exception as error:  # noqa: BLE001 (IndexError for a short shard, OpError for a checksum)
        where = shards[0] if len(shards) == 1 else f"{prefix}.data-*"
        raise ValueError(f"{where}: damaged ({_cause(error)})") from None


def _cause(error: Exception) -> str:
    text = str(error)
    if "Checksum does not match" in text or "checksum mismatch" in text:
        return "its content changed since it was written: checksum mismatch"
    if "less bytes than requested" in text or "bad magic number" in text or "truncated" in text.lower():
        return "cut short"
    if "No such file" in text:
        return "a file of it is missing"
    return (text.strip().splitlines() or [type(error).__name__])[0][:160]


def _h5(path: str) -> None:
    import h5py

    def read(name, item):  # returns None: visititems goes on to every dataset
        if isinstance(item, h5py.Dataset):
            item[()]
    try:
        with h5py.File(path, "r") as handle:
            handle.visititems(read)
    except (OSError, KeyError, RuntimeError, ValueError) as error:
        what = "cut short" if "truncated" in str(error) else (str(error).strip().splitlines() or ["unreadable"])[0][:160]
        raise ValueError(f"{path}: damaged ({what})") from None
