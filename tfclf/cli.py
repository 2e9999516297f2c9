"""The `tfclf` command and the edge every command shares: user errors become one line and exit 2.

    tfclf train --data sms_spam          # = python -m tfclf.run
    tfclf grid experiments/x.yaml        # = python -m tfclf.grid
    tfclf predict | evaluate | serve | bench | import-hf | list
"""
import importlib
import sys

from tfclf import tables

USER_ERROR_EXIT = 2
COMMANDS = {  # subcommand -> (module with main(argv), what it does)
    "train": ("tfclf.run", "train, evaluate and export one classifier"),
    "grid": ("tfclf.grid", "run a study: a grid of trainings, tabulated"),
    "predict": ("tfclf.predict", "classify texts with an exported model"),
    "evaluate": ("tfclf.evaluate", "score an exported model on a labelled file"),
    "bench": ("tfclf.bench", "time fine-tuning against the TF tutorial's way"),
    "serve": ("tfclf.serve", "serve an exported model's versions over TF Serving's REST API"),
    "bench-serve": ("tfclf.serving.load", "a bounded load test of tfclf serve on 127.0.0.1"),
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
    "encoders": lambda: {**{name: f"[{entry['family']}] {entry['description']}" for name, entry in tables.ENCODERS.items()},
                         **{tables.KERASHUB + name: f"[kerashub] {entry['description']}"
                            for name, entry in tables.KERASHUB_PRESETS.items()},
                         tables.KERASHUB + "<preset or dir>": "[kerashub] any KerasHub preset name (downloaded into "
                         "KerasHub's cache), KerasHub preset directory or Hugging Face checkpoint it converts"},
    "datasets": _datasets,
    "optimizers": lambda: tables.OPTIMIZERS,
    "schedules": lambda: tables.SCHEDULES,
    "losses": lambda: tables.LOSSES,
    "clean": _clean_steps,
    "poolings": lambda: tables.POOLINGS,
    "encoder-builds": lambda: tables.ENCODER_BUILDS,
    "heads": lambda: tables.HEADS,
    "strategies": lambda: tables.STRATEGIES,
    "monitors": lambda: tables.MONITORS,
    "calibrations": lambda: tables.CALIBRATIONS,
    "thresholds": lambda: tables.THRESHOLDS,
    "truncations": lambda: tables.TRUNCATIONS,
    "long-texts": lambda: tables.LONG_TEXTS,
    "chunk-aggregates": lambda: tables.CHUNK_AGGREGATES,
    "chunk-trainings": lambda: tables.CHUNK_TRAININGS,
}


def describe(table: str) -> str:
    """One line per choice: name and description."""
    rows = LISTS[table]()
    width = max(len(name) for name in rows)
    return "\n".join(f"{name:<{width}}  {text}" for name, text in rows.items())


def run_main(job) -> int:
    """Runs `job()`; a ValueError (bad input, bad flag) or a file-system error prints
    `tfclf: error: ...` on stderr and returns 2, without a traceback."""
    try:
        job()
    except ValueError as error:
        print(f"tfclf: error: {error}", file=sys.stderr)
        return USER_ERROR_EXIT
    except OSError as error:
        if error.filename is None:
            raise
        print(f"tfclf: error: {error.filename}: {error.strerror}; check the path and its permissions",
              file=sys.stderr)
        return USER_ERROR_EXIT
    except KeyboardInterrupt:
        print("tfclf: interrupted", file=sys.stderr)
        return 130
    return 0


def _usage() -> str:
    lines = ["usage: tfclf COMMAND [options]   (tfclf COMMAND --help for its options)", "", "commands:"]
    lines += [f"  {name:<11} {text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else USER_ERROR_EXIT
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"tfclf: error: unknown command {command!r}; choose one of: {', '.join(COMMANDS)}", file=sys.stderr)
        return USER_ERROR_EXIT
    if command == "list":
        if len(rest) != 1 or rest[0] not in LISTS:
            print(f"tfclf: error: tfclf list TABLE: choose one of: {', '.join(LISTS)}", file=sys.stderr)
            return USER_ERROR_EXIT
        print(describe(rest[0]))
        return 0
    try:
        module = importlib.import_module(COMMANDS[command][0])
    except KeyboardInterrupt:
        print("tfclf: interrupted", file=sys.stderr)
        return 130
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
