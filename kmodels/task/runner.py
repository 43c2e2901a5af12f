"""`kmodels.run`: start a task from a spec, or resume an interrupted run in place; `run_task` runs its steps.

`run_task` is the one orchestrator of a task's hooks: data → problem → run directory →
analysis → splits and features → baselines → build → train → evaluate → report, with
the run directory's status, resume after training, the MLflow run and the processes of
a multi-process run (`kmodels.cluster`) taken care of around the task's hooks.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kmodels import cluster, registry
from kmodels.backend import compilation_cache, distribution, frozen_heap, set_seed
from kmodels.building import all_layers, check_metrics, resolved_loss
from kmodels.data.table import Table
from kmodels.errors import ConfigError, RunError
from kmodels.evaluation import fingerprint, format_table, plot_history, plot_importance, verdict
from kmodels.initializers import host_initialized
from kmodels.problems import Problem
from kmodels.runs import MAX_MODEL_BYTES, RunDir
from kmodels.saving import (
    HISTORY,
    IMPORTANCE_PLOT,
    METADATA,
    METRICS,
    MODEL,
    REPORT,
    SPEC,
    TRAINED,
    TRAINING_CURVES,
    Artifacts,
    write_artifacts,
)
from kmodels.spec import TaskSpec, load_spec, read_toml, resolve
from kmodels.task.base import Task
from kmodels.task.context import RunContext
from kmodels.task.inference import load_model, save_model, save_state
from kmodels.task.results import RunResult
from kmodels.task.training import train_folds
from kmodels.tracking import open_tracker

logger = logging.getLogger("kmodels")

#: Written once training has finished and `model.keras` is saved: `--resume` then only evaluates.


def _resumable(path: str | Path, locked: bool = False) -> RunDir:
    """The run directory at `path` if it can be resumed: not completed, and not held by a live run.

    A live run holds the directory's lock (`RunDir.exclusive`), so a `running` status whose lock
    is free was left by a process that died, whatever process has its pid now. `locked`: the
    caller holds the lock already.
    """
    rd = RunDir(path)
    meta = rd.read_json(METADATA)
    status = meta.get("status")
    if status == "completed":
        raise RunError(f"Run {str(rd.path)!r} already completed; start a new run instead of resuming it.")
    if status == "running" and not locked:
        with rd.exclusive():  # refused while a live run holds it
            pass
    return rd


def _resume_spec(run_dir: RunDir, overrides: Mapping[str, Any] | Sequence[str] | None) -> TaskSpec:
    """The spec of a run being resumed, re-validated as a fresh run's, without its `[tracking]` section.

    A run directory is data, possibly a stranger's: its spec must not send requests to a tracking
    server or write a store wherever it names. Tracking a resumed run takes `--mlflow [URI]` (or
    `tracking.*` overrides) from the person resuming it.
    """
    path = run_dir.readable(SPEC)
    raw = read_toml(path)
    tracking = raw.pop("tracking", None)
    if isinstance(tracking, Mapping) and tracking.get("mlflow"):
        logger.warning("The run's spec.toml logs to MLflow at %r; a resumed run never follows a tracking URI from "
                       "its run directory. Pass --mlflow [URI] to log the resumed run.", tracking.get("uri", "mlruns"))
    return resolve(raw, str(path), overrides=overrides)


def run(task_or_path: str | Path | None = None, data: Any = None,
        overrides: Mapping[str, Any] | Sequence[str] | None = None, out: str | Path | None = None,
        resume: str | Path | None = None) -> RunResult:
    """Run a task end to end and return its metrics and run directory.

    Args:
        task_or_path: a registered task (`"bank_gender"`) or a spec TOML file.
        data: the user's data (a file or folder, or a pandas DataFrame for a table); `None` uses
            the task's embedded default.
        overrides: dotted spec keys to values, e.g. `{"train.epochs": 3}`.
        out: the run directory (must be new or empty); default `runs/<task>/<UTC time>/`.
        resume: an interrupted, failed or killed run directory to continue in place, from
            the last epoch its `backup_and_restore` callback saved (its own spec is used).

    Example:
        >>> import kmodels
        >>> result = kmodels.run("bank_gender", overrides={"train.epochs": 2})  # doctest: +SKIP
        >>> result.metrics["models"]["keras"]["accuracy"]  # doctest: +SKIP
        0.7...
    """
    if resume is not None:
        if task_or_path is not None or data is not None or out is not None:
            raise ConfigError("resume= continues a run with its own spec, data and directory; "
                              "do not also pass a task, data or out.")
        run_dir = _resumable(resume)
        spec = _resume_spec(run_dir, overrides)
        if not any(b["name"] == "backup_and_restore" for b in spec["callbacks"]):
            logger.warning("The spec has no backup_and_restore callback: training restarts from the first epoch.")
        logger.info("Resuming %s", run_dir.path)
        return run_task(registry.tasks.get(spec.task)(spec), run_dir=run_dir)
    if task_or_path is None:
        raise ConfigError("Name a task or a spec file to run (or resume= a run directory).")
    spec = load_spec(task_or_path, overrides, data=data)
    return run_task(registry.tasks.get(spec.task)(spec), out=out)


def run_task(task: Task, run_dir: RunDir | None = None, out: str | Path | None = None) -> RunResult:
    """Run `task`'s whole pipeline; every artifact lands in the run directory.

    The data is loaded and its problem inferred before a new run directory is
    created, so a data error leaves nothing behind. The task's hooks get the run through
    `Task.set_context` (first without a run directory, then with it), never as attributes set here.

    Args:
        task: the task, with its spec.
        run_dir: an interrupted run to resume in place; `None` starts a new one.
        out: the new run's directory (new or empty); default `runs/<task>/<UTC time>/`.
    """
    seed = task.train_options.seed
    t = task.train_options
    resumed = run_dir is not None
    compilation_cache()  # JAX: a second run of the same shapes loads its compiled steps
    if not resumed:
        RunDir.check_out(out)
    # One scope for the whole run: it fixes the device count before any data is loaded (a batch
    # size that does not split over the devices fails first), and the batches are built for it.
    with distribution(t.distribution, t.batch_size) as devices, _process_run_dir(run_dir, out) as (run_dir, out):
        task.set_context(RunContext(devices=devices, seed=seed))
        task.fetch_model_files()
        set_seed(seed)
        with cluster.writer_first("kmodels:load-data"):  # a generated data set is written once
            table = task.load_data()
        problem = task.problem(table)
        task.check_size(table, problem)
        task.resolve_auto(table, problem)  # "auto" settings fixed from the data, so spec.toml holds them
        resolved_loss(task.spec.options("compile"), problem)  # a loss that cannot work stops before the run exists
        check_metrics(task.spec.options("compile"), problem)  # and so does a metric
        if task.train_options.folds > 1 and (conflict := task.bagging_conflict()):
            raise ConfigError(f"[train] folds={task.train_options.folds}{conflict}")
        if task.spec.options("evaluate").calibrate and (not problem.is_classification or problem.per_label_threshold):
            raise ConfigError(f"[evaluate] calibrate = true is for binary and multiclass problems; this run is "
                              f"{problem.kind}. Remove it.")
        rd = run_dir if run_dir is not None else RunDir.create(task.spec.task, out=out)
        tracker = None
        with rd.exclusive() if cluster.is_writer() else nullcontext():
            if resumed and cluster.is_writer():
                _resumable(rd.path, locked=True)  # another process may have finished it while this one loaded the data
            rd.start(task=task.spec.task, seed=seed, spec_toml=task.spec.to_toml())
            logger.info("Run directory: %s", rd.path)
            with rd.recording():
                tracker = open_tracker(task.spec.options("tracking"), task.spec.task, rd, task.spec) \
                    if cluster.is_writer() else None
                task.set_context(RunContext(run_dir=rd, devices=devices, tracker=tracker, seed=seed))
                with tracker.closing() if tracker else nullcontext(), frozen_heap():
                    result = _run_in(task, rd, table, problem, devices)
        if tracker is not None:  # after the run directory says completed: its files are final
            tracker.finish("FINISHED")
        return result


@contextlib.contextmanager
def _process_run_dir(run_dir: RunDir | None, out: str | Path | None) -> Iterator[tuple[RunDir | None, Any]]:
    """Where this process writes: the run directory (and `out`), or (processes other than 0 of a
    multi-process run) a private scratch copy of it, removed when the run ends (see `kmodels.cluster`)."""
    if cluster.is_writer():
        cluster.barrier("kmodels:run-dir")  # process 0 changes a resumed run only once the others copied it
        yield run_dir, out
        return
    with RunDir.scratch(run_dir) as scratch:
        cluster.barrier("kmodels:run-dir")
        yield scratch, None


def _run_in(task: Task, rd: RunDir, table: Table, problem: Problem, devices: int) -> RunResult:
    seed = task.train_options.seed
    write_artifacts(rd, _made(task.analyse(table)))
    prepared = task.prepare(table=table)
    cluster.check_same("splits", repr(sorted((k, len(f.y)) for k, f in prepared.data.items())))
    if prepared.preprocessor is not None:
        exclude = task.excluded_columns(prepared.table)
        train_rows = prepared.data["train"].frame.drop(columns=exclude, errors="ignore")
        save_state(rd, prepared.preprocessor, {
            "target": prepared.table.target, "problem": problem.to_json(), "exclude": exclude,
            "feature_columns": [str(c) for c in train_rows.columns],  # what predict checks its rows against
            "numeric_columns": [str(c) for c in train_rows.columns
                                if pd.api.types.is_numeric_dtype(train_rows[c]) and not
                                pd.api.types.is_bool_dtype(train_rows[c])]})
    results = task.baselines(prepared)
    set_seed(seed)
    if rd.exists(TRAINED) and rd.exists(MODEL):  # resumed after training had finished
        trained = rd.read_json(TRAINED)
        model = load_model(rd.readable(MODEL, MAX_MODEL_BYTES))
        history, phase_start, fit_seconds = trained["history"], trained["phase_start"], trained["fit_seconds"]
        logger.info("Training had finished before the interruption (%d epochs); evaluating the saved model.",
                    len(history.get("loss", [])))
    else:
        start = time.perf_counter()
        # host_initialized (JAX): what Keras makes beyond the network's weights (optimizer slots, metric totals,
        # the saved model's clone) starts as NumPy values, not one compiled program per shape
        with host_initialized():
            if task.train_options.folds > 1:  # bagging: N models on N folds, averaged (each already finished)
                (model, history), phase_start = train_folds(task, prepared), None
            else:
                model = task.build_model(prepared)
                history, phase_start = task.train(model, prepared)
                history = task.full_history(history)
            fit_seconds = time.perf_counter() - start
            if task.train_options.folds == 1:
                model = task.finish_model(model)
        temperature = calibrate(task, model, prepared) if task.spec.options("evaluate").calibrate else None
        save_model(model, rd.file(MODEL))
        # From here on a resume reuses this model and never trains again; until here it restores
        # the backup of the last epoch (kept past the end of `fit`, see `make_callbacks`).
        rd.write_json(TRAINED, {"history": history, "phase_start": phase_start, "fit_seconds": fit_seconds,
                                "temperature": temperature})
        task.drop_backups()
    rd.write_text(HISTORY, pd.DataFrame(history).rename_axis("epoch").to_csv())
    plot_history(history, rd.file(TRAINING_CURVES), phase_start=phase_start)
    with task.final_model(model, prepared):  # the test (and validation) split is predicted once from here
        threshold, chosen = decision_threshold(task, model, prepared)
        results["keras"] = _evaluate(task, model, prepared, threshold)
        decides = problem.uses_threshold or problem.per_label_threshold
        if decides:
            results["keras"]["threshold"] = threshold
        made = task.plot_results(prepared, results["keras"], model)
        plots = write_artifacts(rd, made) if isinstance(made, Artifacts) else list(made or [])  # a list: by it
        importance = task.explain(model, prepared, threshold)
    if importance is not None:
        plot_importance(importance, importance["metric"], rd.file(IMPORTANCE_PLOT),
                        title=f"{task.spec.task}: permutation importance (test split)")
        plots = [*plots, IMPORTANCE_PLOT]
    metrics = {"task": task.spec.task, "primary": "keras", "problem": problem.to_json(),
               "data_fingerprint": fingerprint(prepared.table.frame),
               "classes": list(problem.class_names), "primary_metric": problem.primary,
               "splits": prepared.sizes, "cleaning": prepared.cleaning, "fit_seconds": round(fit_seconds, 3),
               "epochs_run": len(history.get("loss", [])), "replicas": devices, "models": results}
    if decides:
        metrics["threshold"], metrics["threshold_chosen_on"] = threshold, chosen
    if task.spec.options("evaluate").calibrate and problem.is_classification:
        metrics["temperature"] = rd.read_json(TRAINED).get("temperature")
    if phase_start is not None:
        metrics["fine_tune_from_epoch"] = phase_start + 1
    if importance is not None:
        metrics["importance"] = importance
    metrics["verdict"] = verdict(results, problem.primary)
    for line in metrics["verdict"]:
        (logger.warning if "does not beat" in line else logger.info)("%s", line)
    rd.write_json(METRICS, metrics)
    table_text = format_table([{"model": k, **v} for k, v in results.items()], problem.columns)
    rd.write_text(REPORT, task.report(metrics, table_text, plots))
    frame = pd.DataFrame([{c: v.get(c) for c in problem.columns[1:]} for v in results.values()],
                         index=pd.Index(list(results), name="model"))
    return RunResult(task.spec.task, rd.path, metrics, frame, table_text)


def _made(value: Any) -> Artifacts | None:
    """What a hook returned for the runner to write: `Artifacts`; anything else (an older plugin's report) is not."""
    return value if isinstance(value, Artifacts) else None


def decision_threshold(task: Task, model: Any, prepared: Any) -> tuple[Any, str]:
    """The decision threshold of this run (binary: one; multi-label: one per label) and where it comes from.

    `[evaluate] threshold = "auto"`: what the problem chooses on the validation split's predictions
    (`Problem.choose_threshold`: binary, the best `threshold_metric`; multi-label, each label's best
    F1), 0.5 when there is no validation split to choose on; a number: that number. Other problems:
    0.5, unused.
    """
    options, problem = task.spec.options("evaluate"), prepared.problem
    if not (problem.uses_threshold or problem.per_label_threshold) or options.threshold != "auto":
        return task.threshold, "spec"
    val = prepared.data["val"]
    if len(val.y) == 0 or len(np.unique(np.asarray(val.y))) < 2:
        logger.warning('[evaluate] threshold = "auto" needs a validation split holding both classes; using 0.5.')
        return 0.5, "default (no usable validation split)"
    threshold = problem.choose_threshold(val.y, task.predict_output(model, val.x), options.threshold_metric)
    metric = "F1 per label" if problem.per_label_threshold else options.threshold_metric
    shown = ", ".join(f"{t:.2f}" for t in threshold) if isinstance(threshold, tuple) else f"{threshold:.2f}"
    logger.info("Decision threshold %s: the best %s on the validation split (%d rows).", shown, metric, len(val.y))
    return (list(threshold) if isinstance(threshold, tuple) else threshold), f"validation {metric}"


def calibrate(task: Task, model: Any, prepared: Any) -> float:
    """Temperature scaling (`[evaluate] calibrate = true`): fit T on the validation split and divide the
    output layer's weights by it, so the saved model (still plain Keras) gives calibrated probabilities."""
    import keras

    from kmodels.evaluation import fit_temperature

    problem, val = prepared.problem, prepared.data["val"]  # a regression was refused before the run began
    if len(val.y) == 0:
        raise ConfigError("[evaluate] calibrate = true fits its temperature on the validation split; "
                          "this run has none ([split] val = 0). Give it one, or remove calibrate.")
    heads = [layer for layer in all_layers(model) if isinstance(layer, keras.layers.Dense)
             and getattr(layer.activation, "__name__", "") in ("sigmoid", "softmax")]
    if len(heads) != 1:
        raise ConfigError(f"[evaluate] calibrate = true needs one Dense output layer with a sigmoid or softmax "
                          f"activation (kmodels' output_head); model {task.spec['model']['name']!r} has "
                          f"{len(heads)}. Remove calibrate for this model.")
    proba = problem.probabilities(task.predict_output(model, val.x))
    temperature = fit_temperature(val.y, proba)
    kernel, bias = heads[0].get_weights()[:2] if heads[0].use_bias else (heads[0].get_weights()[0], None)
    heads[0].set_weights([kernel / temperature] + ([] if bias is None else [bias / temperature]))
    logger.info("Calibrated: temperature %.3f fitted on the validation split (%d rows)%s.", temperature,
                len(val.y), "; probabilities softened" if temperature > 1 else "; probabilities sharpened")
    return round(temperature, 4)


def _evaluate(task: Task, model: Any, prepared: Any, threshold: float) -> dict[str, Any]:
    """`task.evaluate` at the run's threshold; a plugin's override written before the hook took `threshold`
    (`evaluate(self, model, prepared)`) is still called, without it (it then reads `Task.threshold`)."""
    import inspect

    parameters = inspect.signature(task.evaluate).parameters
    takes = "threshold" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    return task.evaluate(model, prepared, threshold=threshold) if takes else task.evaluate(model, prepared)
