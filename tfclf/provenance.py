"""What a run ran on: tfclf, TensorFlow, Keras and Python versions, the git commit of a checkout, the CPU model
and the flags that decide its speed. Recorded in metrics.json ("environment"), so in the export's
assets.extra/metrics.json too, and in the export's run.json.

    >>> sorted(record())[:4]
    ['cpu', 'git', 'keras', 'platform']
"""
import functools
import os
import platform
import subprocess
import sys

import tfclf

# CPU flags that change what tfclf can run or how fast: vector widths, bf16 (--mixed-precision) and AMX units.
SPEED_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16",
               "amx_int8")


@functools.lru_cache(maxsize=1)
def cpu() -> dict:
    """{"model": the CPU's model name, "cores": cores this process may use, "flags": its SPEED_FLAGS} from
    /proc/cpuinfo (Linux); the model from `platform` and no flags elsewhere."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    model = value.strip()
                elif key.strip() in ("flags", "Features"):
                    flags = set(value.split())
                    break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"model": model, "cores": cores, "flags": [flag for flag in SPEED_FLAGS if flag in flags]}


def git_commit() -> str:
    """The commit of the checkout tfclf is imported from (with "-dirty" for uncommitted changes), or "" for an
    installed package or when git is missing."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(tfclf.__file__)))
    if not os.path.exists(os.path.join(root, ".git")):
        return ""
    try:
        head = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return ""
    if head.returncode != 0:
        return ""
    return head.stdout.strip() + ("-dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def record() -> dict:
    """The versions and the machine, for metrics.json's "environment" (TensorFlow only if already imported)."""
    tensorflow = sys.modules.get("tensorflow")
    keras = sys.modules.get("tf_keras") or sys.modules.get("keras")
    return {"tfclf": tfclf.__version__, "tensorflow": getattr(tensorflow, "__version__", ""),
            "keras": getattr(keras, "__version__", ""), "python": platform.python_version(),
            "platform": platform.platform(), "git": git_commit(), "cpu": cpu()}
