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

from kmodels import _config, registry
from kmodels._spec_base import with_base
from kmodels.errors import ConfigError
from kmodels.evaluation import (
    importance_rows,
    markdown_text,
    permutation_importances,
    plot_binary_diagnostics,
    plot_confusion_matrix,
    plot_per_label,
    plot_regression,
)
from kmodels.options import AUTO_BAG_ROWS, AUTO_FOLDS
from kmodels.saving import Artifacts
from kmodels.spec import TaskSpec
from kmodels.task.context import RunContext
from kmodels.task.data_steps import DataSteps
from kmodels.task.inference import (
    _as_matrix,
)
from kmodels.task.model_steps import ModelSteps
from kmodels.task.results import Prepared
from kmodels.task.saved_runs import SavedRuns

logger = logging.getLogger("kmodels")


class Task(SavedRuns, DataSteps, ModelSteps):
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
    #: Whether the task feeds the network streamed batches (images) rather than feature arrays: bagging
    #: (`[train] folds`) needs arrays to cut into folds, so the runner refuses it before the run exists.
    feeds_batches: ClassVar[bool] = False

    # ---- spec -------------------------------------------------------------------------------
    @classmethod
    def default_spec(cls) -> dict[str, Any]:
        """The task's shipped spec, parsed (unresolved), on top of its `base` task's (`kmodels._spec_base.with_base`)."""
        raw = cls.shipped_spec()
        return with_base(raw, str(raw.get("task", cls.__name__)))

    @classmethod
    def shipped_spec(cls) -> dict[str, Any]:
        """The task's spec file or text as written, parsed: a `base` key is not expanded."""
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

    def __init__(self, spec: TaskSpec) -> None:
        self.spec = spec
        self.train_options = spec.options("train")
        #: the run the hooks work in (see `kmodels.task.context`): given by the runner with `set_context`
        self.context = RunContext(seed=self.train_options.seed)
        if spec.options("compile").schedule != "constant" and any(
                b["name"] == "reduce_lr_on_plateau" for b in spec["callbacks"]):
            raise ConfigError(f'[compile] schedule = "{spec.options("compile").schedule}" sets the learning rate at '
                              "every step; remove the reduce_lr_on_plateau callback, or use schedule = \"constant\".")

    def set_context(self, context: RunContext) -> None:
        """Hand the task the run it works in (the runner calls it, as Keras calls `Callback.set_model`)."""
        self.context = context

    def bagging_conflict(self) -> str | None:
        """What stands against bagging (`[train] folds` > 1) in this run, said after "[train] folds=N"; `None` if
        nothing does. The runner refuses a number with it, and `folds = "auto"` trains one model."""
        if self.feeds_batches:
            return (f": bagging is for table tasks (feature arrays); {self.spec.task} streams batches. "
                    "Set train.folds = 1.")
        evaluate = self.spec.options("evaluate")
        if evaluate.calibrate or evaluate.threshold == "auto":
            return (" trains on the validation split, which [evaluate] calibrate and threshold = \"auto\" fit on; "
                    "use one or the other.")
        return None

    def resolve_auto(self, table: Any, problem: Any) -> None:
        """Fix the settings the spec leaves to the data (`"auto"`), before the run directory exists, so the run's
        `spec.toml` holds the values it used. Here: `[train] folds = "auto"` (see `TrainOptions`)."""
        if self.train_options.folds != "auto":
            return
        rows, conflict = len(table.frame), self.bagging_conflict()
        if conflict:
            folds, why = 1, f"[train] folds={AUTO_FOLDS}{conflict}"
        elif rows <= AUTO_BAG_ROWS:
            folds, why = AUTO_FOLDS, f"{rows} rows <= {AUTO_BAG_ROWS}: bagging {AUTO_FOLDS} models"
        else:
            folds, why = 1, f"{rows} rows > {AUTO_BAG_ROWS}: one model"
        logger.info("[train] folds = \"auto\": %d (%s)", folds, why)
        self.spec = self.spec.replaced("train.folds", folds)
        self.train_options = self.spec.options("train")

    @classmethod
    def handles(cls, model: Any) -> bool:
        """Whether `kmodels predict MODEL.keras` (a bare model, no run directory) should use this task.

        Default: a model with one flat feature vector as input (a table row).
        """
        return len(model.inputs[0].shape) == 2

    @property
    def threshold(self) -> float:
        """The spec's binary decision threshold; with `"auto"` 0.5 until the run chooses one on the validation
        split (the baselines are scored at 0.5)."""
        threshold = self.spec.options("evaluate").threshold
        return 0.5 if threshold == "auto" else threshold

    def evaluate(self, model: Any, prepared: Prepared, threshold: float | None = None) -> dict[str, Any]:
        """Test metrics of the trained model (see `Problem.score`) at `threshold` (default: the spec's)."""
        test = prepared.data["test"]
        threshold = self.threshold if threshold is None else threshold
        return prepared.problem.score(test.y, self.predict_output(model, test.x), threshold)

    def explain(self, model: Any, prepared: Prepared, threshold: float | None = None) -> dict[str, Any] | None:
        """How much each raw column matters: permutation importance on the test split (see
        `kmodels.evaluation.permutation_importances`), scored with the problem's primary metric; `None`
        when `[evaluate] importance_repeats = 0` or the test split is empty."""
        repeats = self.spec.options("evaluate").importance_repeats
        test = prepared.data["test"]
        if not repeats or not len(test.y):
            return None
        frame = test.frame.drop(columns=self.excluded_columns(prepared.table), errors="ignore")
        return self._importance(model, prepared.preprocessor, prepared.problem, frame, test.y,
                                self.threshold if threshold is None else threshold, repeats)

    def _importance(self, model: Any, pipe: Any, problem: Any, frame: pd.DataFrame, y: np.ndarray,
                    threshold: float, repeats: int) -> dict[str, Any]:
        """Permutation importance of `frame`'s raw columns through `pipe` and `model`, by the primary metric."""
        def predict_output(rows: pd.DataFrame) -> np.ndarray:
            return self.predict_output(model, _as_matrix(pipe.transform(rows) if pipe is not None else rows))

        def score(labels: np.ndarray, output: np.ndarray) -> float:
            value = problem.primary_score(labels, output, threshold)
            return float("nan") if value is None else value

        setting = self.spec.options("evaluate").importance_rows
        rows = importance_rows(frame.shape[1], repeats) if setting == "auto" else setting
        if rows < len(frame):
            logger.info("permutation importance: %d of %d rows, %d columns x %d repeats (%s; [evaluate] "
                        "importance_rows sets it)", rows, len(frame), frame.shape[1], repeats,
                        "its cost grows with the square of the columns" if setting == "auto" else "the spec's")
        result = permutation_importances(predict_output, frame, y, score, repeats=repeats,
                                         seed=self.train_options.seed, max_rows=rows)
        return {"metric": problem.primary, **result}

    def plot_results(self, prepared: Prepared, metrics: Mapping[str, Any], model: Any) -> Artifacts:
        """The test-split plots of the Keras model (confusion matrix, binary diagnostics, per-label bars or
        predicted-vs-true) as `Artifacts` (file name -> figure); the runner writes them."""
        problem = prepared.problem
        title = f"{self.spec.task}: keras, test split"
        if problem.per_label_threshold:
            return Artifacts({"per_label.png": plot_per_label(metrics["per_label"], None, title=title)})
        if problem.is_classification:
            made = Artifacts({"confusion_matrix.png": plot_confusion_matrix(
                metrics["confusion_matrix"], problem.class_names, None, title=title)})
            if problem.uses_threshold:
                test, val = prepared.data["test"], prepared.data["val"]
                options = self.spec.options("evaluate")
                p_val = problem.probabilities(self.predict_output(model, val.x)) if len(val.y) else None
                made["binary_diagnostics.png"] = plot_binary_diagnostics(
                    test.y, problem.probabilities(self.predict_output(model, test.x)), None,
                    class_names=problem.class_names, threshold=metrics.get("threshold", self.threshold), y_val=val.y,
                    p_val=p_val, metric=options.threshold_metric,
                    title=f"{self.spec.task}: keras (ROC, PR, reliability: test split)")
            return made
        test = prepared.data["test"]
        return Artifacts({"regression.png": plot_regression(
            test.y, problem.probabilities(self.predict_output(model, test.x)), None, title=title)})

    # ---- the report -------------------------------------------------------------------------
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
