"""The data half of `Task`'s hooks: load → problem → check size → clean → split → features → baselines.

`DataSteps` is a mixin of `kmodels.task.Task` (which a plugin subclasses; override these hooks there):
every hook returns what it made, reading only the spec (`self.spec`, `self.train_options`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from kmodels import registry
from kmodels.data.split import check_split_sizes, split_indices
from kmodels.data.table import Table
from kmodels.errors import ConfigError, DataError, RunError
from kmodels.problems import Problem
from kmodels.spec import TaskSpec
from kmodels.task.inference import _as_matrix
from kmodels.task.results import Features, Prepared

logger = logging.getLogger("kmodels")


class DataSteps:
    """Read, clean, split and featurize the data; score the trivial baselines (a mixin of `Task`)."""

    spec: TaskSpec
    train_options: Any
    threshold: float

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
        if problem.stratified and problem.is_classification:  # only the problem's classes: others are dropped
            counts = {c: int(n) for c, n in target.value_counts().items() if c in set(problem.classes)}
            target = target[target.isin(problem.classes)]
        s = self.spec.options("split")
        check_split_sizes(len(target), test=s.test, val=s.val, class_counts=counts, source=str(table.source))

    def analyse(self, table: Table) -> Any:
        """Look at the raw table before anything changes (EDA); return what to keep as `kmodels.saving.Artifacts`
        (reports, plots), which the runner writes into the run directory. Default: nothing."""
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
        labels = (table.labels() if problem.is_classification and problem.stratified
                  else np.zeros(len(table.frame), dtype=np.int64))
        idx = split_indices(labels, test=opts.test, val=opts.val, seed=self.train_options.seed,
                            stratify=opts.stratify and problem.is_classification and problem.stratified,
                            groups=groups)
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
        output = problem.majority_output(train.y, len(test.y))
        return {"majority" if problem.is_classification else "mean": problem.score(test.y, output, self.threshold)}
