"""scikit-learn estimators over kmodels tasks: `Classifier` and `Regressor`.

`fit(X, y)` runs a task (default `tabular`) on the table `X` with target `y` into a run
directory, then keeps the trained model and its fitted preprocessing in memory: `predict`,
`predict_proba` and `score` never reload anything. They follow scikit-learn's conventions
(`__init__` stores its arguments, learned state ends in `_`, `get_params`/`set_params`,
`clone`), so they work in a `Pipeline`, `cross_val_score` (any scorer) or `GridSearchCV`.

Example:
    >>> import kmodels
    >>> from sklearn.datasets import load_breast_cancer
    >>> X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    >>> clf = kmodels.Classifier(overrides={"train.epochs": 5}).fit(X, y)  # doctest: +SKIP
    >>> clf.predict_frame(X.head(2)).columns.tolist()  # doctest: +SKIP
    ['label', 'probability', 'probability_0', 'probability_1']
    >>> clf.save("my_run")  # a run directory: `kmodels predict my_run rows.csv`  # doctest: +SKIP
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import NotFittedError

from kmodels.errors import ConfigError, DataError
from kmodels.saving import MODEL, SPEC

#: Rows predicted in one direct call of the model (no `predict` loop, so no retracing per call size).
_DIRECT_ROWS = 1024


class _Estimator(BaseEstimator):
    """What `Classifier` and `Regressor` share (see the module docstring)."""

    _problem: str = "auto"

    def __init__(self, task: str = "tabular", overrides: Mapping[str, Any] | None = None, seed: int | None = None,
                 verbose: int = 0) -> None:
        self.task = task
        self.overrides = overrides
        self.seed = seed
        self.verbose = verbose

    # ---- fitting ---------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> _Estimator:
        """Train on a table `X` (DataFrame or array) and its target `y`, or on a data path `X` (y=None).

        The run directory is a temporary folder owned by this estimator (removed with it);
        `save(path)` copies it where you want it.
        """
        from kmodels.task import run

        overrides = dict(self.overrides or {})
        overrides.setdefault("train.verbose", self.verbose)
        if self.seed is not None:
            overrides["train.seed"] = int(self.seed)
        if isinstance(X, str | Path):
            if y is not None:
                raise ConfigError("fit(path, y): a data path holds its own target; pass y=None (set the target "
                                  "column with overrides={'data.target': ...}).")
            data: Any = Path(X)
        else:
            data, target, labels = _frame(X, y)
            overrides["data.target"] = target
            if labels is not None:  # an indicator matrix: a multi-label problem, its columns in their order
                overrides.update({"data.problem": "multilabel", "data.classes": labels})
            self.feature_names_in_ = np.asarray([c for c in data.columns if c != target], dtype=object)
            self.n_features_in_ = len(self.feature_names_in_)
        if self._problem != "auto":
            overrides.setdefault("data.problem", self._problem)
        workdir = Path(tempfile.mkdtemp(prefix="kmodels-estimator-"))
        self._cleanup = weakref.finalize(self, shutil.rmtree, workdir, True)
        self.result_ = run(self.task, data=data, overrides=overrides, out=workdir / "run")
        self._load(self.result_.run_dir)
        return self

    def _load(self, run_dir: Path) -> None:
        from kmodels import registry
        from kmodels.runs import MAX_MODEL_BYTES, RunDir
        from kmodels.spec import load_spec
        from kmodels.task.inference import _load_state, load_model, saved_problem

        rd = RunDir(run_dir)
        self.run_dir_ = rd.path
        self.model_ = load_model(rd.readable(MODEL, MAX_MODEL_BYTES))
        self.problem_, self.threshold_ = saved_problem(rd, self.model_)
        self._state = _load_state(rd)
        self._task_class = registry.tasks.get(load_spec(rd.readable(SPEC)).task)
        if self.problem_.is_classification:
            self.classes_ = np.asarray(self.problem_.classes)

    def save(self, path: str | Path) -> Path:
        """Copy the fitted run directory to `path` (new or empty); `kmodels.estimator.load(path)` reads it back,
        and every `kmodels` command takes it (`kmodels predict PATH rows.csv`)."""
        from kmodels.runs import LOCK_FILE, RunDir

        if not hasattr(self, "run_dir_"):
            raise NotFittedError(f"This {type(self).__name__} is not fitted yet: nothing to save.")
        target = Path(path).expanduser()
        RunDir.check_out(target)
        if target.exists():
            target.rmdir()  # empty, checked above: replaced by the copy
        shutil.copytree(self.run_dir_, target, ignore=shutil.ignore_patterns(LOCK_FILE))
        return target

    # ---- prediction ------------------------------------------------------------------------
    def _output(self, X: Any) -> tuple[np.ndarray, pd.Index | None]:
        """The model's raw output for `X` (a table, or image paths), computed in memory; and X's index."""
        from kmodels.runs import RunDir
        from kmodels.task.inference import _as_matrix, predict_rows

        if not hasattr(self, "model_"):
            raise NotFittedError(f"This {type(self).__name__} is not fitted yet: call fit(X, y) first, or "
                                 "kmodels.estimator.load(run_dir).")
        if self._state is None:  # a task without table preprocessing (images): its own reader, same model
            frame = self._task_class.predict_files(RunDir(self.run_dir_), self.model_, _paths(X))
            if "error" in frame and frame["error"].astype(bool).any():
                bad = frame.loc[frame["error"].astype(bool), ["path", "error"]].head(3).to_dict("records")
                raise DataError(f"{int(frame['error'].astype(bool).sum())} input(s) could not be read: {bad}.")
            if not self.problem_.is_classification:
                return frame[["prediction"]].to_numpy(dtype=np.float32), None
            columns = [f"probability_{c}" for c in self.problem_.class_names]
            output = self.problem_.as_output(frame[columns].to_numpy(dtype=np.float64))
            return np.asarray(output, dtype=np.float32).reshape(len(frame), -1), None
        from kmodels.task.saved_runs import _readable_rows

        frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(
            np.asarray(X), columns=getattr(self, "feature_names_in_", None))
        if any(not isinstance(c, str) for c in frame.columns):  # fit named them as text (DataFrame(X) has 0, 1, ...)
            frame = frame.rename(columns=str)
        rows = _readable_rows(frame.drop(columns=self._state["exclude"], errors="ignore"), self._state, "X", False)
        x = _as_matrix(self._state["pipeline"].transform(rows))
        out = predict_rows(self.model_, x, batch_size=_DIRECT_ROWS, direct=len(x) <= _DIRECT_ROWS)
        return out.reshape(len(x), -1), frame.index

    def predict_frame(self, X: Any) -> pd.DataFrame:
        """Predictions as `kmodels.predict` gives them, indexed like `X`: `label`, its `probability` and a
        `probability_<class>` column per class (binary at the run's threshold); regression: `prediction`."""
        from kmodels.task.inference import prediction_frame

        output, index = self._output(X)
        return prediction_frame(self.problem_, output, self.threshold_, index=index)

    def predict(self, X: Any) -> np.ndarray:
        """Class labels (at the run's decision threshold for binary problems) or values, one per row."""
        output, _ = self._output(X)
        if not self.problem_.is_classification:
            return self.problem_.probabilities(output)
        if self.problem_.per_label_threshold:  # scikit-learn's multi-label form: an (n, labels) 0/1 matrix
            return self.problem_.decode(output, self.threshold_)
        return self.classes_[self.problem_.decode(output, self.threshold_)]


class Classifier(ClassifierMixin, _Estimator):
    """A scikit-learn classifier that trains a kmodels task (binary or multiclass, inferred from `y`).

    Args:
        task: the registered task to run (`"tabular"` for tables; `"image_classification"` with
            `fit(folder)`).
        overrides: dotted spec keys to values, as `kmodels.run` takes them
            (`{"train.epochs": 20, "model.units": [128, 64]}`).
        seed: `train.seed` (splits, initialisation, shuffling); `None` keeps the spec's.
        verbose: Keras's `verbose` for `fit` (0: silent).

    Example:
        >>> import kmodels
        >>> from sklearn.model_selection import cross_val_score
        >>> from sklearn.datasets import load_wine
        >>> X, y = load_wine(return_X_y=True, as_frame=True)
        >>> cross_val_score(kmodels.Classifier(overrides={"train.epochs": 20}), X, y, cv=3)  # doctest: +SKIP
        array([0.96..., 0.98..., 1.  ])
    """

    _problem = "auto"

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, (n_rows, n_classes), columns in the order of `classes_`.

        An array, as scikit-learn's scorers (`roc_auc`, `neg_log_loss`), `CalibratedClassifierCV`
        and `VotingClassifier` index it; `predict_frame` gives the same numbers as a DataFrame
        with a column per class, indexed like `X`.
        """
        output, _ = self._output(X)
        return self.problem_.class_probabilities(output)


class Regressor(RegressorMixin, _Estimator):
    """A scikit-learn regressor that trains a kmodels task on a numeric target (`data.problem = "regression"`).

    Args: as `Classifier`'s.

    Example:
        >>> import kmodels
        >>> from sklearn.datasets import load_diabetes
        >>> X, y = load_diabetes(return_X_y=True, as_frame=True)
        >>> kmodels.Regressor(overrides={"train.epochs": 30}).fit(X, y).score(X, y) > 0.3  # doctest: +SKIP
        True
    """

    _problem = "regression"


def load(run_dir: str | Path) -> Classifier | Regressor:
    """A fitted `Classifier` or `Regressor` from a finished run directory (any run, not only an estimator's).

    Example:
        >>> import kmodels
        >>> clf = kmodels.estimator.load("runs/tabular/20261203T120000Z")  # doctest: +SKIP
    """
    from kmodels.task.inference import _finished_run

    rd, spec = _finished_run(run_dir)
    estimator: Classifier | Regressor = Classifier(task=spec.task)
    estimator._load(rd.path)
    if not estimator.problem_.is_classification:
        regressor = Regressor(task=spec.task)
        regressor._load(rd.path)
        return regressor
    return estimator


def _frame(X: Any, y: Any) -> tuple[pd.DataFrame, str, list[str] | None]:
    """`X` and `y` as one DataFrame, the target's column name (y's name, else "target") and, for a multi-label
    `y` (an (n, labels) 0/1 matrix, as scikit-learn takes it), the label names (its columns, else "0", "1", ...):
    its rows become label sets joined by "|"."""
    if y is None:
        raise ConfigError("fit(X, y) needs the target y (or a data path as X with y=None).")
    frame = X.copy() if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X)).rename(columns=lambda c: f"x{c}")
    frame.columns = [str(c) for c in frame.columns]
    name = getattr(y, "name", None)
    labels = None
    matrix = np.asarray(y)
    if matrix.ndim == 2 and matrix.shape[1] > 1:
        labels = [str(c) for c in y.columns] if isinstance(y, pd.DataFrame) else [str(i) for i in range(matrix.shape[1])]
        if not np.isin(matrix, (0, 1)).all():
            raise DataError("y is a matrix but not of 0/1 values; a multi-label y has one 0/1 column per label.")
        empty = np.flatnonzero(matrix.sum(axis=1) == 0)
        if len(empty):
            raise DataError(f"y: {len(empty)} row(s) have no label (e.g. row {int(empty[0])}); kmodels needs at least "
                            "one per row. Add a column for the empty set (e.g. 'none').")
        values = np.array(["|".join(n for n, on in zip(labels, row, strict=True) if on) for row in matrix], dtype=object)
    else:
        values = matrix.ravel()
    if len(values) != len(frame):
        raise DataError(f"X has {len(frame)} rows but y has {len(values)}; pass one target value per row.")
    target = str(name) if name is not None else "target"
    while target in frame.columns:
        target = f"{target}_"
    frame[target] = values
    return frame, target, labels


def _paths(X: Any) -> list[Path]:
    if isinstance(X, str | Path):
        return [Path(X)]
    return [Path(p) for p in X]
