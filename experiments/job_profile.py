"""Where a whole run's time goes, phase by phase: `python -m tfclf.run` with the same flags, in this process,
with the stages' functions wrapped to print their wall and CPU seconds (this process's CPU time, which a busy
machine inflates less than the wall clock), the first training step and every validation pass timed by a
Keras callback, and the import of TensorFlow and tfclf's stages timed first.

    python experiments/job_profile.py [flags of python -m tfclf.run]

Prints one `profile` line per call as it ends and a table at the end (phase, calls, wall s, CPU s).
"""
import collections
import functools
import os
import sys
import time

STARTED_WALL, STARTED_CPU = time.perf_counter(), time.process_time()
TOTALS = collections.OrderedDict()


def _note(name: str, wall: float, cpu: float) -> None:
    calls, walls, cpus = TOTALS.get(name, (0, 0.0, 0.0))
    TOTALS[name] = (calls + 1, walls + wall, cpus + cpu)
    print(f"profile {name}: {wall:.2f} s wall, {cpu:.2f} s CPU", file=sys.stderr, flush=True)


def _wrap(owner, attribute: str, name: str) -> None:
    original = getattr(owner, attribute)

    @functools.wraps(original)
    def timed(*args, **kwargs):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            _note(name, time.perf_counter() - wall, time.process_time() - cpu)
    setattr(owner, attribute, timed)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    wall, cpu = time.perf_counter(), time.process_time()
    from tfclf._backend import keras  # noqa: F401  TensorFlow and Keras
    _note("import tensorflow", time.perf_counter() - wall, time.process_time() - cpu)
    wall, cpu = time.perf_counter(), time.process_time()
    from tfclf import run
    from tfclf.evaluation import explain, report_page
    from tfclf.jobs import training_run
    from tfclf.serving import export
    from tfclf.stages import exporting, fitting, held_out, preparing
    from tfclf.tasks import multi_label, single_label
    from tfclf.training import fit as fit_lib
    _note("import tfclf stages", time.perf_counter() - wall, time.process_time() - cpu)
    for owner, attribute, name in [
            (preparing, "resolve", "resolve (family, encoder handles)"), (preparing, "prepare", "prepare (read, split, tokenize)"),
            (preparing, "record", "record (config, EDA figures)"), (fitting, "build", "build model"),
            (fitting, "save_trained", "save trained weights"), (fitting.plots, "curves_plot", "curves.png"),
            (held_out, "score_split", "score a split"), (held_out, "evaluate", "evaluate (all of it)"),
            (explain, "occlusion", "explanations (occlusion)"), (exporting, "export_model", "export (all of it)"),
            (export.tf.saved_model, "save", "tf.saved_model.save"), (report_page, "write_run", "report.html"),
            (single_label.SingleLabel, "fit_decision", "fit decision (calibration)"),
            (multi_label.MultiLabel, "fit_decision", "fit decision (calibration)"),
            (single_label.SingleLabel, "write_artifacts", "test artifacts + figures"),
            (multi_label.MultiLabel, "write_artifacts", "test artifacts + figures")]:
        _wrap(owner, attribute, name)

    class Phases(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if not hasattr(self, "first"):
                self.first = (time.perf_counter(), time.process_time())

        def on_train_batch_end(self, batch, logs=None):
            if getattr(self, "first", None) and not getattr(self, "first_done", False):
                self.first_done = True
                _note("first training step (trace)", time.perf_counter() - self.first[0],
                      time.process_time() - self.first[1])

        def on_epoch_begin(self, epoch, logs=None):
            self.round = (time.perf_counter(), time.process_time())

        def on_test_begin(self, logs=None):
            self.test = (time.perf_counter(), time.process_time())
            if hasattr(self, "round"):
                _note("training steps of a round", self.test[0] - self.round[0], self.test[1] - self.round[1])

        def on_test_end(self, logs=None):
            _note("validation pass", time.perf_counter() - self.test[0], time.process_time() - self.test[1])

    original_fit, phases = fit_lib.fit, Phases()

    def fit_with_phases(model, *args, **kwargs):
        model_fit = model.fit

        def patched(*fit_args, callbacks=None, **fit_kwargs):
            return model_fit(*fit_args, callbacks=[phases] + list(callbacks or []), **fit_kwargs)
        model.fit = patched
        return original_fit(model, *args, **kwargs)
    fitting.fit_lib.fit = fit_with_phases
    try:
        result = training_run.train(run.config_from_args(argv))
        print(run.summary(result.metrics, result.run_dir, result.export_path))
    finally:
        _note("whole process so far", time.perf_counter() - STARTED_WALL, time.process_time() - STARTED_CPU)
        print(f"{'phase':40s} {'calls':>5s} {'wall s':>8s} {'CPU s':>8s}")
        for name, (calls, walls, cpus) in TOTALS.items():
            print(f"{name:40s} {calls:5d} {walls:8.1f} {cpus:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
