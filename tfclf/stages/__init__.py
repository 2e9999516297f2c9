"""The stages of a run, shared by every entry point (`run`, `bench`, `evaluate`, grid trials), one module each:

    preparing.py   config = resolve(config); prepared = prepare(config)   data, splits, task, lengths
    fitting.py     model, fitted = fit_or_resume(run_dir, prepared, strategy)   (build, fit, resume)
    held_out.py    metrics, page = evaluate(run_dir, prepared, model)    the task's decision, metrics, artifacts
    exporting.py   export_model(model, prepared, metrics, run_id, decision)   the task's serving signature

jobs/training_run.train composes them inside a run directory; bench calls `prepare` once and hands the result
to both of its arms.
"""
