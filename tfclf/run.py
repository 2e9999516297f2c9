"""`python -m tfclf.run`: flags (and an optional config file) -> RunConfig -> train().

    python -m tfclf.run --data sms_spam --encoder bow --epochs 3
    python -m tfclf.run --config experiments/my.yaml --lr 3e-5
"""
import argparse
import dataclasses
import json
import sys

from tfclf import cli, config as config_lib
from tfclf.data import clean, datasets


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tfclf.run", description="Train and evaluate one text classifier.",
        epilog="`tfclf list encoders|datasets|optimizers|schedules|losses|clean` describes every choice.")
    parser.add_argument("--config", help="YAML or JSON file of config keys; flags override it")
    parser.add_argument("--out", help="run directory (default: runs/<data>-<encoder>-<config digest>; the same "
                                      "command finds and resumes its own interrupted run)")
    parser.add_argument("--overwrite", action="store_true",
                        help="discard an interrupted run of a different config in --out (default: refuse)")
    parser.add_argument("--list", choices=sorted(cli.LISTS), help="describe the choices of one table and exit")
    for section, cls in config_lib.SECTIONS.items():
        group = parser.add_argument_group(section)
        for field in dataclasses.fields(cls):
            flag = "--" + field.name.replace("_", "-")
            help_text = field.metadata["help"]
            choices = config_lib.CHOICES.get(field.name)
            if choices and len(choices) > 12:
                help_text += f"; {len(choices)} choices: see --list {field.name}s"
            elif choices:
                help_text += f"; one of: {', '.join(choices)}"
            if field.name == "clean":
                help_text += f"; steps: {', '.join(clean.STEPS)}"
            if field.name == "data":
                help_text += f"; datasets: {', '.join(datasets.DATASETS)}"
            if field.type is bool:
                group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                                   help=f"{help_text} (default: {field.default})")
            else:
                default = ",".join(field.default) if field.type is tuple else field.default
                group.add_argument(flag, default=None, metavar=field.name.upper(),
                                   help=f"{help_text} (default: {default!r})")
    return parser


def config_from_args(argv) -> config_lib.RunConfig:
    args = build_parser().parse_args(argv)
    values = config_lib.read_file(args.config) if args.config else {}
    values.update({key: value for key, value in vars(args).items()
                   if value is not None and key not in ("config", "list", "overwrite")})
    return config_lib.from_flat(values, source="--config " + args.config if args.config else "flags")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    def job():
        args, _ = build_parser().parse_known_args(argv)
        if args.list:
            print(cli.describe(args.list))
            return
        from tfclf import workflows  # TensorFlow is imported here, after the flags were read
        result = workflows.train(config_from_args(argv), overwrite=args.overwrite)
        test = result.metrics["test"]
        print(json.dumps({"test_accuracy": round(test["accuracy"], 4), "test_macro_f1": round(test["macro_f1"], 4),
                          "run_dir": result.run_dir, "export_path": result.export_path}))
        print(f"test accuracy {test['accuracy']:.4f}, macro-F1 {test['macro_f1']:.4f} "
              f"on {result.metrics['num_test']} test texts; artifacts in {result.run_dir}/"
              + (f"; SavedModel in {result.export_path}/" if result.export_path else ""))
    return cli.run_main(job)


if __name__ == "__main__":
    sys.exit(main())
