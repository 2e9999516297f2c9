"""One training run's whole trajectory, for choosing adaptive training's stopping rule by measurement: the run
trains as `python -m tfclf.run` with the same flags (give `--patience 1000` to train to the step cap), and after
every validation round the weights of that round are scored on the validation and test splits with the decision
the run would fit (temperature, thresholds). Every stopping rule then picks a round, and its test figures are
read off the trajectory (experiments/stopping_rules.py), instead of one run per rule and seed.

    python experiments/stopping_trajectory.py --rounds runs/sms-42.jsonl -- --seed 42 --patience 1000 --skip-export

Writes one JSON line per round to --rounds (step, the validation metrics, the test metrics of that round's
weights), appended as rounds end. Each round costs one scoring pass over validation and test beside training.
"""
import argparse
import json
import os
import sys

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", required=True, help="JSON lines file of the rounds (appended)")
    parser.add_argument("run_flags", nargs=argparse.REMAINDER, help="-- then the flags of python -m tfclf.run")
    args = parser.parse_args(argv)
    flags = args.run_flags[1:] if args.run_flags[:1] == ["--"] else args.run_flags
    from tfclf import run
    from tfclf.jobs import training_run
    from tfclf.stages import fitting, held_out
    from tfclf._backend import keras

    class RoundScorer(keras.callbacks.Callback):
        def __init__(self, prepared):
            super().__init__()
            self.prepared = prepared

        def on_epoch_end(self, epoch, logs=None):
            prepared, task = self.prepared, self.prepared.task
            # Single-label figures are the argmax's (the temperature does not move it): the validation pass that
            # fit already made is enough; multi-label thresholds are fitted on this round's validation logits.
            names = ("val", "test") if task.name == "multi_label" else ("test",)
            scored = {name: held_out.score_split(self.model, prepared, name) for name in names}
            val = scored.get("val") or (np.zeros((1, prepared.num_classes), np.float32), np.zeros(1, np.int64))
            decision = task.fit_decision(prepared.config.decision, val[0], val[1], prepared.splits,
                                         prepared.train_targets())
            row = {"round": epoch + 1, "step": int(np.asarray(self.model.optimizer.iterations)),
                   "logs": {key: float(value) for key, value in (logs or {}).items()}}
            for name, (logits, targets) in scored.items():
                probabilities = decision.probabilities(logits)
                figures = task.metrics(targets, probabilities, decision.predict(probabilities), prepared.class_names,
                                       task.loss(prepared.config.train, targets, logits))
                row[name] = {key: value for key, value in figures.items() if isinstance(value, (int, float))}
            with open(args.rounds, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")

    original = fitting.fit

    def fit_with_scorer(model, schedule, prepared, run_dir, verbose=True):
        scorer, model_fit = RoundScorer(prepared), model.fit

        def patched(*fit_args, callbacks=None, **fit_kwargs):
            return model_fit(*fit_args, callbacks=list(callbacks or []) + [scorer], **fit_kwargs)
        model.fit = patched
        return original(model, schedule, prepared, run_dir, verbose)

    fitting.fit = fit_with_scorer
    os.makedirs(os.path.dirname(os.path.abspath(args.rounds)), exist_ok=True)
    result = training_run.train(run.config_from_args(flags))
    print(run.summary(result.metrics, result.run_dir, result.export_path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
