"""`python -m tfclf.run`: flags (and an optional config file) -> RunConfig -> train().

    python -m tfclf.run --data sms_spam --encoder bow --epochs 3
    python -m tfclf.run --config experiments/my.yaml --lr 3e-5
"""
import argparse
import dataclasses
import json
import os
import sys

from tfclf import cli, config as config_lib
from tfclf.data import clean, datasets


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=cli.prog("python -m tfclf.run"), description="Train and evaluate one text classifier.",
        epilog="`tfclf list encoders|datasets|optimizers|schedules|losses|clean` describes every choice.")
    parser.add_argument("--config", help="YAML or JSON file of config keys; flags override it")
    parser.add_argument("--out", help="run directory (default: runs/<data>-<encoder>-<config digest>; the same "
                                      "command finds and resumes its own interrupted run)")
    parser.add_argument("--overwrite", action="store_true",
                        help="discard an interrupted run of a different config in --out (default: refuse)")
    parser.add_argument("--list", choices=sorted(cli.LISTS), help="describe the choices of one table and exit")
    parser.add_argument("--version", action="version", version=cli.version())
    for section, cls in config_lib.SECTIONS.items():
        group = parser.add_argument_group(section)
        for field in dataclasses.fields(cls):
            flag = "--" + field.name.replace("_", "-")
            if field.type is bool:
                group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=_help(field))
            else:
                group.add_argument(flag, default=None, metavar=field.name.upper(), help=_help(field))
    for old in config_lib.OLD_NAMES:  # renamed flags: refused with a pointer to the new name (config_from_args)
        parser.add_argument("--" + old.replace("_", "-"), default=None, help=argparse.SUPPRESS)
    return parser


def _help(field) -> str:
    """A flag's help: its text, its choices (or where to list them) and its default, each once."""
    text = field.metadata["help"]
    choices = config_lib.CHOICES.get(field.name)
    if choices and len(choices) > 12:
        text += f"; {len(choices)} choices: `--list {field.name}s` describes them"
    elif choices:
        text += f"; one of: {', '.join(choices)}"
    if field.name == "clean":
        text += f"; steps: {', '.join(clean.STEPS)}"
    if field.name == "data":
        text += f"; datasets: {', '.join(datasets.DATASETS)}"
    if "default" not in text:
        default = ",".join(field.default) if field.type is tuple else field.default
        text += f" (default: {default})" if default not in ("", ()) else ""
    return text


def config_from_args(argv) -> config_lib.RunConfig:
    args = build_parser().parse_args(argv)
    for old, new in config_lib.OLD_NAMES.items():
        if getattr(args, old) is not None:
            raise ValueError(f"--{old.replace('_', '-')} was renamed to --{new.replace('_', '-')} (the "
                             "distillation's softmax temperature; --calibration temperature is fitted after "
                             f"training); use --{new.replace('_', '-')} {getattr(args, old)}")
    values = config_lib.read_file(args.config) if args.config else {}
    values.update({key: value for key, value in vars(args).items()
                   if value is not None and key not in ("config", "list", "overwrite", *config_lib.OLD_NAMES)})
    config = config_lib.from_flat(values, source="--config " + args.config if args.config else "flags")
    train = config.train  # the default weight decay, given explicitly, would be ignored too (config.validate)
    if args.weight_decay is not None and train.weight_decay > 0 and train.opt != "adamw":
        raise ValueError(config_lib.weight_decay_refusal(args.weight_decay, train.opt))
    return config


def summary(metrics: dict, run_dir: str, export_path: str) -> str:
    """The end of a run in the terminal: data, the selected epoch and why, test metrics per class, files."""
    removed = metrics["duplicates_removed"]
    test = metrics["test"]
    from tfclf.evaluation import text_report  # after training
    seconds = metrics["wall_seconds"]
    lines = ["\n== done in " + (f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"),
             f"data     {metrics['num_train']} train / {metrics['num_val']} validation / {metrics['num_test']} test "
             + (f"texts by the hash split (exact duplicates share a split)" if metrics.get("split_rule") == "hash" else
                f"texts by the {metrics.get('split_rule', 'stratified')} split ({removed['val'] + removed['test']} "
                "duplicates of earlier splits removed)"),
             f"weights  {text_report.chosen_weights(metrics)}"]
    if metrics.get("emptied_by_cleaning"):
        from tfclf.data import splits  # after training
        lines.insert(2, f"         {splits.emptied_line(metrics)}")
    length = text_report.training_length(metrics)
    if length:
        lines.append(f"training {length}")
    from tfclf.tasks import kinds
    lines += kinds.of_metrics(metrics).summary_lines(test)
    decision = metrics.get("decision") or {}
    if decision.get("test"):
        lines.append(f"calibr.  temperature {decision['temperature']:.3f} ({text_report.calibration_choice(decision)}): test ECE "
                     f"{decision['test']['ece_before']:.4f} -> {decision['test']['ece_after']:.4f}, Brier "
                     f"{decision['test']['brier_before']:.4f} -> {decision['test']['brier_after']:.4f}")
    if decision.get("threshold") is not None:
        at, argmax = decision["threshold_test"]["at_threshold"], decision["threshold_test"]["argmax"]
        lines.append(f"decision {decision['positive_class']} when p >= {decision['threshold']:.4f} "
                     f"({decision['threshold_mode']} on validation): test F1 {at['f1']:.4f}, argmax {argmax['f1']:.4f}")
    lines.append(f"run      {run_dir}/  ({_megabytes(run_dir)}: report.html, report.txt, metrics.json, predictions.csv, "
                 "*.png, tensorboard/, trained/)")
    if export_path:
        lines.append(f"model    {export_path}/  (python -m tfclf.predict --model {export_path} \"some text\")")
    return "\n".join(lines)


def _megabytes(directory: str) -> str:
    """The bytes under `directory`, as the summary says them."""
    size = sum(os.path.getsize(os.path.join(folder, name)) for folder, _, names in os.walk(directory)
               for name in names if not os.path.islink(os.path.join(folder, name)))
    return f"{size / 1e6:.1f} MB"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    def job():
        args, _ = build_parser().parse_known_args(argv)
        if args.list:
            print(cli.describe(args.list))
            return
        from tfclf.jobs import training_run  # TensorFlow is imported here, after the flags were read
        result = training_run.train(config_from_args(argv), overwrite=args.overwrite)
        print(summary(result.metrics, result.run_dir, result.export_path))
        test = result.metrics["test"]
        print(json.dumps({"test_accuracy": round(test["accuracy"], 4), "test_macro_f1": round(test["macro_f1"], 4),
                          "run_dir": result.run_dir, "export_path": result.export_path}))
    return cli.run_main(job)


if __name__ == "__main__":
    sys.exit(main())
