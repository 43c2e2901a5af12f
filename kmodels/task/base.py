"""Run a task spec: data → problem → clean → split → features → build → compile → fit → evaluate → report.

`Task` is the standard pipeline for predicting a table column (binary,
multiclass or regression: see `kmodels.problems`). Every hook returns what it
made; `run` hands it to the next one, so a plugin that overrides a hook needs
to know no attribute of the base class. A task plugin subclasses it, points
`spec_file` at its TOML spec, overrides the hooks it needs (`analyse`,
`baselines`, `evaluate`, ...) and registers it:

    >>> from kmodels import registry
    >>> from kmodels.task import Task
    >>> @registry.tasks.register("my_task")
    ... class MyTask(Task):
    ...     '''My task: predicts y from my table.'''
    ...     spec_text = 'task = "my_task"\\n[data]\\nname = "csv"\\n[model]\\nname = "mlp"\\n'
    >>> registry.tasks.unregister("my_task")
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from kmodels import _config, cluster, registry
from kmodels.backend import precision
from kmodels.building import compile_model
from kmodels.data.split import check_split_sizes, split_indices
from kmodels.data.table import Table
from kmodels.errors import ConfigError, DataError, RunError
from kmodels.evaluation import (
    markdown_text,
    plot_confusion_matrix,
    plot_regression,
)
from kmodels.problems import Problem
from kmodels.runs import RunDir
from kmodels.spec import CALLBACK_PATH_KEYS, INFERRED_MODEL_KEYS, TaskSpec, check_run_path
from kmodels.task.inference import (
    _as_matrix,
    _load_state,
    load_model,
    prediction_frame,
    saved_problem,
)
from kmodels.task.results import Features, Prepared, RunResult
from kmodels.task.training import train_in_phases

logger = logging.getLogger("kmodels")


class Task:
    """The standard pipeline: predict one column of a table (binary, multiclass or regression).

    Subclasses set `spec_text` or `spec_file` (the default TOML spec), may
    declare extra spec sections in `sections` (name → options dataclass) and
    list the standard sections they do not use in `unused_sections` (a spec
    that fills one is a `ConfigError`, never silently ignored).

    Args:
        spec: the resolved spec.
        run_dir: where artifacts go; `None` creates one when the run starts.
        out: the exact run directory to create (must be new or empty); default
            `runs/<task>/<UTC time>/`.
    """

    spec_text: ClassVar[str | None] = None
    spec_file: ClassVar[Any] = None
    sections: ClassVar[dict[str, type]] = {}
    unused_sections: ClassVar[tuple[str, ...]] = ()
    #: Overrides `make run` (`python -m kmodels.demo`) applies on the embedded data: a spec tuned for real
    #: data may take far longer than the demo's couple of minutes on its small synthetic sample.
    demo_overrides: ClassVar[dict[str, Any]] = {}

    # ---- spec -------------------------------------------------------------------------------
    @classmethod
    def default_spec(cls) -> dict[str, Any]:
        """The task's shipped spec, parsed (unresolved)."""
        if cls.spec_text is not None:
            return tomllib.loads(cls.spec_text)
        if cls.spec_file is not None:
            source = Path(cls.spec_file) if isinstance(cls.spec_file, str) else cls.spec_file
            return tomllib.loads(source.read_text(encoding="utf-8"))
        raise ConfigError(f"Task {cls.__name__} ships no spec (set spec_text or spec_file).")

    @classmethod
    def with_data(cls, raw: dict[str, Any], path: Path) -> dict[str, Any]:
        """Point the spec at the user's data `path`.

        The spec's dataset gets the path if it takes one; otherwise the task
        must say how to read the data (the core knows no concrete dataset).
        """
        raw = dict(raw)
        data = dict(raw.get("data", {}))
        name = data.get("name")
        if isinstance(name, str) and "path" in _config.schema(registry.datasets.get(name)):
            data["path"] = str(path)
            raw["data"] = data
            return raw
        raise ConfigError(f"Task {raw.get('task')!r}: its dataset {name!r} takes no path, so --data cannot be "
                          "used with it; set [data] in a spec file instead.")

    def __init__(self, spec: TaskSpec, run_dir: RunDir | None = None, out: str | Path | None = None) -> None:
        self.spec = spec
        self.run_dir = run_dir
        self.out = out
        self.train_options = spec.options("train")
        #: every batch holds a multiple of this many samples (the data-parallel device count)
        self.batch_multiple = 1
        #: the run's MLflow run while tracking is on (`[tracking] mlflow = true`), else None
        self.tracker: Any = None
        if spec.options("compile").schedule != "constant" and any(
                b["name"] == "reduce_lr_on_plateau" for b in spec["callbacks"]):
            raise ConfigError(f'[compile] schedule = "{spec.options("compile").schedule}" sets the learning rate at '
                              "every step; remove the reduce_lr_on_plateau callback, or use schedule = \"constant\".")

    @classmethod
    def handles(cls, model: Any) -> bool:
        """Whether `kmodels predict MODEL.keras` (a bare model, no run directory) should use this task.

        Default: a model with one flat feature vector as input (a table row).
        """
        return len(model.inputs[0].shape) == 2

    # ---- pipeline hooks ---------------------------------------------------------------------
    def load_data(self) -> Table:
        """Call the spec's dataset builder."""
        block = self.spec["data"]
        table = registry.datasets.create(block, where=f"[data] {block['name']!r}")
        if not isinstance(table, Table):
            raise RunError(f"Dataset {block['name']!r} returned {type(table).__name__}, not a Table.")
        return table

    def problem(self, table: Table) -> Problem:
        """The problem the table poses: inferred from its target unless the dataset was told (`data.problem`)."""
        problem = table.problem_type()
        logger.info("Problem: %s (%s)%s", problem.kind, problem.reason,
                    f"; classes: {', '.join(problem.class_names[:20])}" + (" ..." if len(problem.classes) > 20 else "")
                    if problem.is_classification else "")
        return problem

    def check_size(self, table: Table, problem: Problem) -> None:
        """Refuse (`DataError`, before any run directory exists) data too small to split into train/val/test.

        See `kmodels.data.split.check_split_sizes`; rows without a target, or of a class the
        problem does not keep, are not counted.
        """
        target = table.frame[table.target].dropna()
        counts = None
        if problem.is_classification:  # only the problem's classes: rows of others are dropped when cleaning
            counts = {c: int(n) for c, n in target.value_counts().items() if c in set(problem.classes)}
            target = target[target.isin(problem.classes)]
        s = self.spec.options("split")
        check_split_sizes(len(target), test=s.test, val=s.val, class_counts=counts, source=str(table.source))

    def analyse(self, table: Table) -> dict[str, Any] | None:
        """Look at the raw table before anything changes (EDA); return the report. Default: nothing."""
        return None

    def preprocess_steps(self) -> tuple[list[Any], list[Any]]:
        """The `[[preprocess]]` steps: (row filters run on the whole table, feature steps fitted on train)."""
        steps = [registry.preprocessors.create(b, where=f"[[preprocess]] {b['name']!r}")
                 for b in self.spec["preprocess"]]
        cleaning: list[Any] = []
        features: list[Any] = []
        for block, step in zip(self.spec["preprocess"], steps, strict=True):
            if getattr(step, "drops_rows", False):
                if features:
                    raise ConfigError(
                        f"[[preprocess]] {block['name']!r} drops rows, so it must come before the "
                        f"feature steps ({', '.join(type(f).__name__ for f in features)}); move it up."
                    )
                cleaning.append(step)
            else:
                features.append(step)
        return cleaning, features

    def clean(self, table: Table, steps: Sequence[Any]) -> tuple[Table, dict[str, Any]]:
        """Apply the row-dropping steps (stateless) to the whole table, then keep valid targets only.

        Returns the cleaned table and a report of what each step removed. Rows
        whose target is missing, not one of the classes, or (regression) not a
        finite number are dropped and counted. A row filter with a
        `keep_mask(frame)` method (a boolean per row) is applied through it, so
        the positions of the kept rows stay known and the group codes carry over.
        """
        frame = table.frame
        rows: np.ndarray | None = np.arange(len(frame))
        keep = np.ones(len(frame), dtype=bool)  # rows of `frame` still in; applied when a step needs it
        report: dict[str, Any] = {"rows_in": len(frame)}
        for step in steps:
            if not keep.all():
                frame, rows = frame[keep], None if rows is None else rows[keep]
                keep = np.ones(len(frame), dtype=bool)
            step.fit(frame)
            if hasattr(step, "keep_mask"):
                keep = np.asarray(step.keep_mask(frame), dtype=bool)
                if keep.shape != (len(frame),):
                    raise RunError(f"{type(step).__name__}.keep_mask returned shape {keep.shape} "
                                   f"for {len(frame)} rows; expected one boolean per row.")
                removed = int((~keep).sum())
            else:
                before = len(frame)
                frame = step.transform(frame)
                keep = np.ones(len(frame), dtype=bool)
                rows = None  # which rows it kept is not known
                removed = before - len(frame)
            report[f"removed_by_{type(step).__name__}"] = removed
        problem = table.problem_type()
        target = frame[table.target]
        invalid = keep & ~problem.valid(target)
        if invalid.any():
            other = target[invalid].astype(object)
            counts = other.where(other.notna(), "<missing>").astype(str).value_counts()
            wanted = "a finite number" if not problem.is_classification else " or ".join(map(repr, problem.classes[:10]))
            logger.info("Removed %d row(s) whose %s is not %s: %s", int(invalid.sum()), table.target, wanted,
                        counts.head(10).to_dict())
            report["removed_invalid_target"] = {str(k): int(v) for k, v in counts.head(100).items()}
            keep &= ~invalid
        if not keep.all():  # one selection for the filters and the target check together
            frame, rows = frame[keep], None if rows is None else rows[keep]
        report["rows_out"] = len(frame)
        if frame.empty:
            raise DataError(f"{table.source}: no rows left after cleaning; check the data and [[preprocess]].")
        return table.subset(frame, rows), report

    def split(self, table: Table) -> dict[str, pd.DataFrame]:
        """Seeded, group-aware train/val/test split, stratified by class (classification)."""
        opts = self.spec.options("split")
        group = opts.group or table.group
        if group is not None and group not in table.frame.columns:
            raise ConfigError(f"[split] group column {group!r} is not in the table.")
        groups = None if group is None else table.frame[group]
        if group is not None and group == table.group:
            codes = table.group_codes()  # computed once, shared with the EDA
            groups = np.where(codes < 0, np.nan, codes)  # a missing id is its own group
        problem = table.problem_type()
        labels = table.labels() if problem.is_classification else np.zeros(len(table.frame), dtype=np.int64)
        idx = split_indices(labels, test=opts.test, val=opts.val, seed=self.train_options.seed,
                            stratify=opts.stratify and problem.is_classification, groups=groups)
        return {name: table.frame.iloc[i].reset_index(drop=True)
                for name, i in zip(("train", "val", "test"), idx, strict=True)}

    def features(self, table: Table, frames: Mapping[str, pd.DataFrame], steps: Sequence[Any],
                 fitted: Any = None) -> tuple[dict[str, Features], Any]:
        """Fit the feature steps on the training split (unless `fitted` is given); transform every split.

        Returns the splits' features and the fitted preprocessing (`None` without steps).
        """
        from sklearn.pipeline import Pipeline

        pipe = fitted
        if pipe is None and steps:
            pipe = Pipeline([(f"{i}_{type(s).__name__}", s) for i, s in enumerate(steps)])
        out = {}
        for name in ("train", "val", "test"):
            frame = frames[name]
            x = frame.drop(columns=self.excluded_columns(table))
            y = table.labels(frame)
            if pipe is not None:
                x = pipe.fit_transform(x, y) if name == "train" and fitted is None else pipe.transform(x)
            out[name] = Features(_as_matrix(x), y, frame)
        return out, pipe

    @staticmethod
    def excluded_columns(table: Table) -> list[str]:
        """Columns that are never features: the target and the group (an identifier)."""
        return [c for c in (table.target, table.group) if c is not None]

    def prepare(self, fitted: Any = None, table: Table | None = None) -> Prepared:
        """Clean, split and featurize the data (loading it first unless `table` is given)."""
        if table is None:
            table = self.load_data()
        problem = table.problem_type()
        cleaning_steps, feature_steps = self.preprocess_steps()
        table, cleaning = self.clean(table, cleaning_steps)
        frames = self.split(table)
        logger.info("Split (seed %d): %s", self.train_options.seed,
                    ", ".join(f"{k} {len(v)}" for k, v in frames.items()))
        data, preprocessor = self.features(table, frames, feature_steps, fitted=fitted)
        return Prepared(data, problem, table, cleaning, preprocessor)

    def baselines(self, prepared: Prepared) -> dict[str, dict[str, Any]]:
        """Reference models scored on the test split. Default: the majority class, or the mean for regression."""
        train, test = prepared.data["train"], prepared.data["test"]
        problem = prepared.problem
        if not problem.is_classification:
            mean = float(np.mean(train.y)) if len(train.y) else 0.0
            return {"mean": problem.score(test.y, np.full(len(test.y), mean))}
        majority = int(np.bincount(train.y, minlength=problem.num_classes).argmax())
        output = np.eye(problem.num_classes)[np.full(len(test.y), majority)]
        if problem.kind == "binary":
            output = output[:, 1]
        return {"majority": problem.score(test.y, output, self.threshold)}

    @property
    def threshold(self) -> float:
        return self.spec.options("evaluate").threshold

    def input_shape(self, prepared: Prepared) -> tuple[int, ...]:
        """The model input shape, from the training features."""
        return tuple(prepared.data["train"].x.shape[1:])

    def full_history(self, history: dict[str, list[float]]) -> dict[str, list[float]]:
        """The whole training history: a `csv_logger` file (appended across resumes) if the spec has one."""
        log = next((b["filename"] for b in self.spec["callbacks"] if b["name"] == "csv_logger"), None)
        if log and self.run_dir is not None:
            path = self.callback_path("csv_logger", "filename", log)
            if path.is_file():
                frame = pd.read_csv(path)
                return {k: frame[k].astype(float).tolist() for k in frame.columns if k != "epoch"}
        return history

    def fetch_model_files(self) -> None:
        """Get what the model needs from outside the data, before the data is read.

        Today: pretrained `weights = "imagenet"`, which Keras downloads once into
        `~/.keras/models/`. The model is built once at its default input size, so an
        offline machine gets the builder's clear error before a long data scan, not after.
        """
        block = self.spec["model"]
        if block.get("weights") != "imagenet":
            return
        block = {k: v for k, v in block.items() if k not in INFERRED_MODEL_KEYS}
        registry.models.create(block, where=f"[model] {block['name']!r}")

    def build_model(self, prepared: Prepared) -> Any:
        """Build the spec's model for the data's input shape and problem (`num_classes`), and compile it.

        For regression the model's linear output is followed by a fixed
        `Rescaling` to the training target's mean and standard deviation: the
        net learns a standardized target (what Adam's defaults suit), and the
        saved model still predicts in the target's own units.
        """
        input_shape, problem = self.input_shape(prepared), prepared.problem
        block = self.spec["model"]
        name = block["name"]
        params = _config.schema(registry.models.get(name))
        extra: dict[str, Any] = {}
        if "input_shape" in params:
            given = block.pop("input_shape", None)
            if given is not None and tuple(given) != tuple(input_shape):
                raise ConfigError(
                    f"[model] input_shape={tuple(given)} does not match the data's {tuple(input_shape)}; "
                    "remove model.input_shape to infer it."
                )
            extra["input_shape"] = tuple(input_shape)
        if "num_classes" in params:
            given = block.pop("num_classes", None)
            if given is not None and given != problem.num_classes:
                raise ConfigError(f"[model] num_classes={given} does not match the {problem.kind} problem's "
                                  f"{problem.num_classes}; remove model.num_classes to infer it.")
            extra["num_classes"] = problem.num_classes
        elif problem.kind != "binary":
            raise ConfigError(f"[model] {name!r} has no num_classes argument, so it can only solve binary problems; "
                              f"this one is {problem.kind}. Add `num_classes: int = 2` to its builder.")
        with precision(self.train_options.precision):
            model = registry.models.create(block, where=f"[model] {name!r}", **extra)
        if self.train_options.precision != "float32" and model.outputs[0].dtype != "float32":
            logger.warning("Model %r outputs %s under %s; give its last layer dtype='float32' for a stable loss.",
                           name, model.outputs[0].dtype, self.train_options.precision)
        if not problem.is_classification:
            model = _rescaled(model, prepared.data["train"].y)
        model = self.training_model(model)
        return compile_model(model, self.spec.options("compile"), problem,
                             steps_per_epoch=self.steps_per_epoch(prepared), epochs=self.train_options.epochs)

    def training_model(self, model: Any) -> Any:
        """The model `fit` trains: `model`, or `model` behind training-only layers (device-side augmentation).

        Whatever this adds, `finish_model` removes before `model.keras` is saved. Default: `model`.
        """
        return model

    def finish_model(self, model: Any) -> Any:
        """The trained model as it is saved, evaluated and used for prediction. Default: as trained.

        A task may wrap it here, e.g. with test-time augmentation (see the vision plugin).
        """
        return model

    def steps_per_epoch(self, prepared: Prepared) -> int:
        """Gradient steps in one epoch of `fit` (sizes a learning-rate schedule)."""
        import math

        from kmodels.data.batches import Batches

        train = prepared.data["train"]
        if isinstance(train.x, Batches):
            return len(train.x)
        return max(1, math.ceil(len(train.y) / self.batch_size(len(train.y))))

    def make_callbacks(self) -> list[Any]:
        """The spec's callbacks; every path they name is resolved inside the run directory.

        A first callback adds the epoch's `learning_rate` to the logs (the history, `csv_logger`),
        whether a schedule or `reduce_lr_on_plateau` sets it or it stays constant.
        """
        from kmodels.callbacks import LearningRateLog

        out: list[Any] = [LearningRateLog()]
        if self.tracker is not None:
            out.append(self.tracker.callback())  # after LearningRateLog: the rate is logged too
        for block in self.spec["callbacks"]:
            block = dict(block)
            for key in CALLBACK_PATH_KEYS:
                if block.get(key) is None:
                    continue
                path = self.callback_path(block["name"], key, block[key])
                path.parent.mkdir(parents=True, exist_ok=True)  # inside the run: ours to create
                block[key] = str(path)
            if block["name"] == "backup_and_restore":
                # Kept until the phase's result is saved (`drop_backups`): Keras would delete it when
                # `fit` ends, and a kill before the trained model is on disk would then retrain from scratch.
                block["delete_checkpoint"] = False
            out.append(registry.callbacks.create(block, where=f"[[callbacks]] {block['name']!r}"))
        return out

    def callback_path(self, callback: str, key: str, value: Any) -> Path:
        """Where the `key` argument (`filename`, `backup_dir`, ...) of a spec callback points: checked to
        name a path strictly inside this run's directory (see `kmodels.spec.check_run_path`)."""
        where = f"[[callbacks]] {callback!r} {key}"
        relative = check_run_path(value, where)
        if self.run_dir is None:
            raise RunError(f"{where} names a file, but this step runs without a run directory.")
        return self.run_dir.inside(relative, where=where)

    def drop_backups(self) -> None:
        """Remove the `backup_and_restore` folders once what they protected is saved in the run.

        They are spec-named folders checked to lie inside this run (see
        `make_callbacks`), created by Keras during `fit`; nothing else is removed.
        """
        import shutil

        if self.run_dir is None:
            return
        for block in self.spec["callbacks"]:
            if block["name"] == "backup_and_restore" and block.get("backup_dir"):
                path = self.callback_path("backup_and_restore", "backup_dir", block["backup_dir"])
                if path.is_dir():
                    shutil.rmtree(path)

    @property
    def verbose(self) -> int:
        """Keras's `verbose` for `fit`: `[train] verbose`, and 0 on processes other than 0 of a cluster."""
        return self.train_options.verbose if cluster.is_writer() else 0

    def batch_size(self, rows: int) -> int:
        """The batch size for `rows` training rows. Default: `[train] batch_size`."""
        return self.train_options.batch_size

    def class_weight(self, y: np.ndarray, problem: Problem) -> dict[int, float] | None:
        """`"balanced"` class weights (n / (classes x count)); `None` unless the spec asks, or for regression."""
        if self.train_options.class_weight != "balanced" or not problem.is_classification:
            return None
        k = problem.num_classes
        counts = np.bincount(y, minlength=k).astype(float)
        return {i: float(len(y) / (k * c)) if c else 1.0 for i, c in enumerate(counts)}

    def fit(self, model: Any, prepared: Prepared, *, epochs: int | None = None,
            initial_epoch: int = 0) -> dict[str, list[float]]:
        """`model.fit` on the training split, validated on the validation split; returns the history."""
        t = self.train_options
        train, val = prepared.data["train"], prepared.data["val"]
        if self.batch_multiple > 1:  # batches that split evenly over the devices
            from kmodels.data.batches import ArrayBatches

            x, y = ArrayBatches(train.x, train.y, t.batch_size, shuffle=True, seed=t.seed,
                                multiple=self.batch_multiple), None
            validation = ArrayBatches(val.x, val.y, t.batch_size, multiple=self.batch_multiple) if len(val.y) else None
        else:
            x, y = train.x, train.y
            validation = (val.x, val.y) if len(val.y) else None
        history = model.fit(
            x, y, validation_data=validation,
            epochs=t.epochs if epochs is None else epochs, initial_epoch=initial_epoch,
            batch_size=None if y is None else self.batch_size(len(train.y)), callbacks=self.make_callbacks(),
            class_weight=self.class_weight(train.y, prepared.problem), verbose=self.verbose, shuffle=y is not None,
        )
        return {k: [float(v) for v in vals] for k, vals in history.history.items()}

    def train(self, model: Any, prepared: Prepared) -> tuple[dict[str, list[float]], int | None]:
        """Phase one (`fit`), then the fine-tuning phase when `[fine_tune] epochs > 0` and the backbone is frozen.

        Returns the history and the number of phase-one epochs when fine-tuning followed
        (else `None`); see `kmodels.task.training.train_in_phases`.
        """
        return train_in_phases(self, model, prepared)

    def predict_output(self, model: Any, x: Any) -> np.ndarray:
        """The model's raw output for an array or a `Batches` set (its padding dropped): (n, 1) or (n, N)."""
        from kmodels.data.batches import ArrayBatches, Batches

        size = self.train_options.batch_size * max(1, 256 // self.train_options.batch_size)
        n = x.n if isinstance(x, Batches) else len(x)
        if self.batch_multiple > 1 and not isinstance(x, Batches):
            x = ArrayBatches(x, None, size, multiple=self.batch_multiple)
        if cluster.current() is not None:  # each process predicts its shard, then all gather
            with cluster.without_distribution():
                out = np.asarray(cluster.local_copy(model).predict(x, verbose=0))
            out = cluster.gather_rows(out.reshape(len(out), -1), x.positions(), n)
            return out
        kwargs = {} if isinstance(x, Batches) else {"batch_size": size}
        out = np.asarray(model.predict(x, verbose=0, **kwargs))
        return out.reshape(len(out), -1)[:n]

    def evaluate(self, model: Any, prepared: Prepared) -> dict[str, Any]:
        """Test metrics of the trained model (see `Problem.score`)."""
        test = prepared.data["test"]
        return prepared.problem.score(test.y, self.predict_output(model, test.x), self.threshold)

    def plot_results(self, prepared: Prepared, metrics: Mapping[str, Any], model: Any) -> list[str]:
        """The test-split plot of the Keras model: confusion matrix or predicted-vs-true; returns file names."""
        if self.run_dir is None:
            return []
        problem = prepared.problem
        title = f"{self.spec.task}: keras, test split"
        if problem.is_classification:
            plot_confusion_matrix(metrics["confusion_matrix"], problem.class_names,
                                  self.run_dir.file("confusion_matrix.png"), title=title)
            return ["confusion_matrix.png"]
        test = prepared.data["test"]
        plot_regression(test.y, problem.probabilities(self.predict_output(model, test.x)),
                        self.run_dir.file("regression.png"), title=title)
        return ["regression.png"]

    # ---- orchestration ----------------------------------------------------------------------
    def run(self) -> RunResult:
        """Run the whole pipeline; every artifact lands in the run directory (see `kmodels.task.runner.run_task`)."""
        from kmodels.task.runner import run_task

        return run_task(self)

    def report(self, metrics: Mapping[str, Any], table_text: str, plots: Sequence[str] = ()) -> str:
        """`report.md`: the problem, the comparison table and links to the plots."""
        problem = metrics["problem"]
        lines = [f"# {self.spec.task}: test-split results", "",
                 f"Problem: {problem['kind']} ({problem['reason']}); models ranked by {metrics['primary_metric']}.", "",
                 table_text, "", *[f"**{markdown_text(line)}**" if "does not beat" in line else markdown_text(line)
                                   for line in metrics.get("verdict", [])], "",
                 f"Splits: {metrics['splits']}; epochs run: {metrics['epochs_run']}.", ""]
        lines += [f"![{Path(p).stem.replace('_', ' ')}]({p})\n" for p in plots]
        lines += ["![training curves](training_curves.png)", ""]
        return "\n".join(lines)

    # ---- use of a finished run ----------------------------------------------------------------
    def evaluate_saved(self) -> dict[str, Any]:
        """Evaluate the run's saved model on the same test split it was trained for.

        Read-only: the hooks run without a run directory, so nothing in the finished run is rewritten.
        """
        rd = self.run_dir
        state = _load_state(rd)
        model = load_model(rd.file("model.keras"))
        self.run_dir = None
        try:
            prepared = self.prepare(fitted=None if state is None else state["pipeline"])
            return {**self.evaluate(model, prepared), "problem": prepared.problem.to_json()}
        finally:
            self.run_dir = rd

    @classmethod
    def predict_files(cls, run_dir: RunDir | None, model: Any, inputs: Sequence[Path]) -> pd.DataFrame:
        """Predictions for the rows of CSV files, through the run's fitted preprocessing.

        Binary: `probability` of the positive class and `label` at the run's
        threshold; multiclass: `label`, its `probability` and one
        `probability_<class>` column per class; regression: `prediction`.
        """
        state = None if run_dir is None else _load_state(run_dir)
        problem, threshold = saved_problem(run_dir, model)
        frames = []
        from kmodels.data.csv import read_csv

        for i, path in enumerate(inputs):
            frame = path if isinstance(path, pd.DataFrame) else read_csv(path)
            path = f"<DataFrame {i}>" if isinstance(path, pd.DataFrame) else path
            x = frame
            if state is not None:
                x = state["pipeline"].transform(frame.drop(columns=state["exclude"], errors="ignore"))
            output = np.asarray(model.predict(_as_matrix(x), verbose=0))
            out = pd.DataFrame({"source": str(path), "row": np.arange(len(frame))})
            frames.append(pd.concat([out, prediction_frame(problem, output, threshold)], axis=1))
        return pd.concat(frames, ignore_index=True)


def _rescaled(model: Any, y: np.ndarray) -> Any:
    """`model` followed by a fixed affine map onto the scale of `y` (plain Keras `Rescaling`)."""
    import keras

    mean = float(np.mean(y)) if len(y) else 0.0
    std = float(np.std(y)) if len(y) else 1.0
    std = std if std > 0 and np.isfinite(std) else 1.0
    outputs = keras.layers.Rescaling(scale=std, offset=mean, dtype="float32", name="target_scale")(model.outputs[0])
    return keras.Model(model.inputs, outputs, name=model.name)
