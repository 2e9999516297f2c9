"""The `tfclf` command and the edge every command shares: user errors become one line and exit 2.

    tfclf train --data sms_spam          # = python -m tfclf.run
    tfclf grid experiments/x.yaml        # = python -m tfclf.grid
    tfclf predict | evaluate | serve | bench | import-hf | list
    tfclf --version
"""
import errno
import importlib
import re
import sys

import tfclf
from tfclf import choices

USER_ERROR_EXIT = 2
COMMANDS = {  # subcommand -> (module with main(argv), what it does)
    "train": ("tfclf.run", "train, evaluate and export one classifier"),
    "grid": ("tfclf.grid", "run a study: a grid of trainings, tabulated"),
    "predict": ("tfclf.predict", "classify texts with an exported model"),
    "evaluate": ("tfclf.evaluate", "score an exported model on a labelled file"),
    "bench": ("tfclf.bench", "time fine-tuning against the TF tutorial's way"),
    "serve": ("tfclf.serve", "serve an exported model's versions over TF Serving's REST API"),
    "bench-serve": ("tfclf.bench_serve", "a bounded load test of tfclf serve on 127.0.0.1"),
    "import-hf": ("tfclf.import_hf", "import a Hugging Face BERT/ELECTRA checkpoint into TF Hub format"),
    "list": (None, "describe the choices: " + ", ".join(["encoders", "datasets", "optimizers", "schedules",
                                                         "losses", "clean"])),
}


def _datasets() -> dict:
    from tfclf.data import datasets
    return {name: entry["source"] for name, entry in datasets.DATASETS.items()}


def _clean_steps() -> dict:
    from tfclf.data import clean
    return {name: (step.__doc__ or "").strip().splitlines()[0] for name, step in clean.STEPS.items()}


LISTS = {
    "encoders": lambda: {**{name: f"[{entry['family']}] {entry['description']}" for name, entry in choices.ENCODERS.items()},
                         **{choices.KERASHUB + name: f"[kerashub] {entry['description']}"
                            for name, entry in choices.KERASHUB_PRESETS.items()},
                         choices.KERASHUB + "<preset or dir>": "[kerashub] any KerasHub preset name (downloaded into "
                         "KerasHub's cache), KerasHub preset directory or Hugging Face checkpoint it converts"},
    "datasets": _datasets,
    "optimizers": lambda: choices.OPTIMIZERS,
    "schedules": lambda: choices.SCHEDULES,
    "losses": lambda: choices.LOSSES,
    "clean": _clean_steps,
    "poolings": lambda: choices.POOLINGS,
    "encoder-builds": lambda: choices.ENCODER_BUILDS,
    "heads": lambda: choices.HEADS,
    "strategies": lambda: choices.STRATEGIES,
    "monitors": lambda: choices.MONITORS,
    "calibrations": lambda: choices.CALIBRATIONS,
    "thresholds": lambda: choices.THRESHOLDS,
    "truncations": lambda: choices.TRUNCATIONS,
    "long-texts": lambda: choices.LONG_TEXTS,
    "packings": lambda: choices.PACKINGS,
    "chunk-aggregates": lambda: choices.CHUNK_AGGREGATES,
    "chunk-trainings": lambda: choices.CHUNK_TRAININGS,
    "streams": lambda: choices.STREAMS,
}


_invoked_as = ""  # "tfclf train" while `tfclf train ...` runs the module's main(): its usage line says so


def prog(module_prog: str) -> str:
    """The program name for a command's usage line: what the user typed (`tfclf train`, `python -m tfclf
    train`), else the module's own (`python -m tfclf.run`)."""
    return _invoked_as or module_prog


def version() -> str:
    """`tfclf --version`: tfclf's version (TensorFlow's and the rest are in every run's metrics.json)."""
    return f"tfclf {tfclf.__version__}"


def describe_tables() -> str:
    """`tfclf list` without a table: the tables, one line each."""
    return "\n".join(["tables (tfclf list TABLE describes one):"] + [f"  {name}" for name in LISTS])


def describe(table: str) -> str:
    """One line per choice: name and description."""
    rows = LISTS[table]()
    width = max(len(name) for name in rows)
    return "\n".join(f"{name:<{width}}  {text}" for name, text in rows.items())


def run_main(job) -> int:
    """Runs `job()`; a ValueError (bad input, bad flag) or a file-system error prints
    `tfclf: error: ...` on stderr and returns 2, without a traceback."""
    try:
        tfclf.stop_if_interrupted()
        job()
    except ValueError as error:
        print(f"tfclf: error: {error}", file=sys.stderr)
        return USER_ERROR_EXIT
    except Exception as error:  # noqa: BLE001 (a full disk reaches us as OSError or as TensorFlow's errors)
        full = disk_full(error)
        if full:
            print(f"tfclf: error: {full}: no space left on the device; free space (or choose another location) and "
                  "run the same command again: a run resumes from its last complete epoch", file=sys.stderr)
            return USER_ERROR_EXIT
        if not isinstance(error, OSError) or error.filename is None:
            raise
        print(f"tfclf: error: {error.filename}: {error.strerror}; check the path and its permissions",
              file=sys.stderr)
        return USER_ERROR_EXIT
    except KeyboardInterrupt:
        print("tfclf: interrupted", file=sys.stderr)
        return 130
    return 0


def disk_full(error: BaseException) -> str:
    """The path a write failed on for lack of space (else the output being written, which rundir.locked puts on
    the errors leaving it as `tfclf_output`, else "the disk"), or "" for any other error: an OSError
    ENOSPC/EDQUOT, or a TensorFlow error whose message says so (TensorFlow's file writers raise their own)."""
    unnamed = getattr(error, "tfclf_output", "") or "the disk"
    for cause in (error, error.__cause__, error.__context__):
        if isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT):
            return cause.filename or unnamed
        text = str(cause or "")
        if "No space left on device" in text or "Disk quota exceeded" in text:
            # the first path, not a device name (/job:localhost/replica:0/...) of the op that wrote
            path = re.search(r"(?<![\w:])(/(?!job:)[^\s;:,'\"]+)", text)
            return path.group(1) if path else unnamed
    return ""


def _usage() -> str:
    lines = ["usage: tfclf COMMAND [options]   (tfclf COMMAND --help for its options; tfclf --version)", "",
             "commands:"]
    lines += [f"  {name:<11} {text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv=None, command_name: str = "tfclf") -> int:
    """The `tfclf` command (`command_name`: how it was started, for usage lines: `python -m tfclf`)."""
    global _invoked_as
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else USER_ERROR_EXIT
    if argv[0] in ("--version", "-V"):
        print(version())
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"tfclf: error: unknown command {command!r}; choose one of: {', '.join(COMMANDS)}", file=sys.stderr)
        return USER_ERROR_EXIT
    if command == "list":
        if not rest:
            print(describe_tables())
            return 0
        if len(rest) != 1 or rest[0] not in LISTS:
            print(f"tfclf: error: tfclf list {' '.join(rest)}: not a table; choose one of: {', '.join(LISTS)}",
                  file=sys.stderr)
            return USER_ERROR_EXIT
        print(describe(rest[0]))
        return 0
    try:
        module = importlib.import_module(COMMANDS[command][0])
    except KeyboardInterrupt:
        print("tfclf: interrupted", file=sys.stderr)
        return 130
    _invoked_as = f"{command_name} {command}"
    try:
        return module.main(rest)
    finally:
        _invoked_as = ""


if __name__ == "__main__":
    sys.exit(main())
