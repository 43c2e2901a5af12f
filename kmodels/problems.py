"""Problem types: binary, multiclass, multi-label, regression.

A `Problem` says what is predicted and everything that follows from it: the
model's head (`num_classes`), the loss and metrics Keras trains with, how the
target column becomes labels, how predictions are scored and decoded. It is
inferred from the target column (`infer_problem`) and always overridable with
`data.problem` in a spec.

The `num_classes` convention of every registered model (keras-hub style):
`num_classes=2` → one sigmoid unit (binary), `num_classes=N >= 3` → N softmax
units (multiclass), `num_classes=1` → one linear unit (regression). A multi-label
problem builds its model inside `Problem.building()`, under which `output_head`
gives N independent sigmoid units.

Example:
    >>> import pandas as pd
    >>> from kmodels.problems import infer_problem
    >>> p = infer_problem(pd.Series(["adelie", "gentoo", "chinstrap", "adelie"]))
    >>> p.kind, p.class_names, p.num_classes, p.loss
    ('multiclass', ('adelie', 'chinstrap', 'gentoo'), 3, 'sparse_categorical_crossentropy')
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from kmodels.errors import ConfigError, DataError

ProblemKind = Literal["binary", "multiclass", "multilabel", "regression"]
KINDS: tuple[str, ...] = ("binary", "multiclass", "multilabel", "regression")
#: What joins the labels of a row in a multi-label target (`"a|c"`), unless the dataset says otherwise.
LABEL_SEP = "|"
#: A numeric target with more distinct values than this is taken as regression.
MAX_DISCRETE_LEVELS = 20
#: More classes than this is almost surely an identifier or a free-text column.
MAX_CLASSES = 1000


@dataclass(frozen=True)
class Problem:
    """What a task predicts; `Problem(kind, classes)` gives the class of that kind.

    One class per kind (`BinaryProblem`, `MulticlassProblem`, `RegressionProblem`) owns what
    differs: the loss, metrics and primary metric, the comparison table's columns, how labels
    are encoded, how a model's output becomes class probabilities, decisions and scores, and
    whether a decision threshold applies. Code elsewhere asks the problem; it does not switch
    on its kind.

    Args:
        kind: `"binary"`, `"multiclass"` or `"regression"`.
        classes: the class values as they appear in the target column, in label
            order (binary: negative first); empty for regression.
        reason: why this kind was chosen (logged and saved with the run).

    Example:
        >>> p = Problem("binary", ("M", "F"))
        >>> type(p).__name__, p.encode(pd.Series(["F", "M", "F"])).tolist(), p.num_classes
        ('BinaryProblem', [1, 0, 1], 2)
    """

    kind: ProblemKind
    classes: tuple[Any, ...] = ()
    reason: str = "set by the task"
    #: multi-label: what joins a row's labels in the target column and in predictions
    sep: str = LABEL_SEP

    #: (fewest, most) classes; the loss, metrics and primary metric of the kind (set by each class)
    class_range: ClassVar[tuple[int, int]] = (0, 0)
    loss: ClassVar[str] = ""
    metrics: ClassVar[tuple[str, ...]] = ()
    primary: ClassVar[str] = ""
    columns: ClassVar[tuple[str, ...]] = ()
    #: Keras metrics known to work on this problem's labels (named when `[compile] metrics` holds one that does not)
    known_metrics: ClassVar[tuple[str, ...]] = ()
    #: whether one probability threshold turns the output into a decision (`[evaluate] threshold`)
    uses_threshold: ClassVar[bool] = False
    #: whether a threshold per class decides (multi-label; `[evaluate] threshold` or one chosen per label)
    per_label_threshold: ClassVar[bool] = False
    #: whether the split is stratified on the labels and `class_weight = "balanced"` applies
    stratified: ClassVar[bool] = True

    def __new__(cls, kind: Any = None, *args: Any, **kwargs: Any) -> Problem:
        if cls is Problem:
            if kind not in _BY_KIND:
                raise ConfigError(f"Received problem={kind!r}. Expected one of {', '.join(KINDS)}.")
            cls = _BY_KIND[kind]
        return super().__new__(cls)

    def __post_init__(self) -> None:
        low, high = self.class_range
        if not low <= len(self.classes) <= high:
            raise ConfigError(f"A {self.kind} problem needs {low}-{high} classes; "
                              f"received {len(self.classes)}: {list(self.classes)[:10]}.")

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(str(c) for c in self.classes)

    @property
    def num_classes(self) -> int:
        """The models' `num_classes` argument for this problem (1 for regression)."""
        return len(self.classes)

    @property
    def output_width(self) -> int:
        """How many numbers a model of this problem outputs per row (`output_head`'s units)."""
        return self.num_classes

    @property
    def is_classification(self) -> bool:
        return True

    def valid(self, values: pd.Series) -> np.ndarray:
        """One boolean per row: the target holds a usable value (a known class, or a finite number)."""
        return values.isin(self.classes).to_numpy()

    def encode(self, values: pd.Series) -> np.ndarray:
        """Labels for Keras: class indices (int64) or float32 numbers; rows must be `valid`."""
        index = pd.Index(list(self.classes))
        if isinstance(values.dtype, pd.CategoricalDtype):  # look up the categories, not every row
            lookup = np.append(index.get_indexer(values.cat.categories), -1)
            return lookup[values.cat.codes.to_numpy()].astype(np.int64)
        return np.asarray(index.get_indexer(values), dtype=np.int64)

    def probabilities(self, output: np.ndarray) -> np.ndarray:
        """A model's raw output as (n,) positive-class probabilities, (n, N) class probabilities or (n,) values."""
        output = np.asarray(output, dtype=np.float64)
        return output.reshape(len(output), -1)

    def class_probabilities(self, output: np.ndarray) -> np.ndarray:
        """(n, number of classes) probabilities, columns in `classes` order (binary too)."""
        return self.probabilities(output)

    def as_output(self, class_probabilities: np.ndarray) -> np.ndarray:
        """The inverse of `class_probabilities`: what a model of this problem would output for them."""
        return np.asarray(class_probabilities, dtype=np.float64)

    def decode(self, output: np.ndarray, threshold: float = 0.5) -> np.ndarray:
        """Predicted class indices (classification) or values (regression) from `probabilities`."""
        return self.probabilities(output).argmax(axis=1).astype(np.int64)

    def chosen_probability(self, output: np.ndarray, threshold: float = 0.5) -> np.ndarray:
        """The probability of the class each row is predicted as."""
        proba, chosen = self.class_probabilities(output), self.decode(output, threshold)
        return proba[np.arange(len(chosen)), chosen]

    def constant_output(self, index: int, rows: int) -> np.ndarray:
        """The output of a model that always predicts class `index` (or value `index`) with certainty."""
        return self.as_output(np.eye(self.num_classes)[np.full(rows, index)])

    def describe_output(self) -> str:
        """What a model's output means, in words (export metadata)."""
        return "one probability per class, in the order of classes"

    def building(self) -> contextlib.AbstractContextManager:
        """The context a model of this problem is built in (`output_head` reads it). Default: nothing."""
        return contextlib.nullcontext()

    def label_text(self, labels: np.ndarray) -> list[str]:
        """Encoded labels (`encode`) as text: the class name of each row."""
        return [self.class_names[int(i)] for i in np.asarray(labels).ravel()]

    def label_counts(self, values: pd.Series) -> dict[str, int]:
        """Rows per class (name -> count) of a target column; classes without rows are absent."""
        counts = values[self.valid(values)].astype(str).value_counts()
        return {str(k): int(v) for k, v in counts.items() if v}

    def baseline(self, estimator: Any) -> Any:
        """A scikit-learn estimator made fit for this problem's labels (`encode`). Default: as it is."""
        return estimator

    def baseline_output(self, estimator: Any, x: Any) -> np.ndarray:
        """A fitted scikit-learn baseline's output in the Keras model's form (see `probabilities`)."""
        if not self.is_classification:
            return estimator.predict(x)
        proba = np.zeros((len(x), self.num_classes))
        proba[:, estimator.classes_.astype(int)] = estimator.predict_proba(x)  # a class absent from train stays 0
        return self.as_output(proba)

    def majority_output(self, y_train: np.ndarray, rows: int) -> np.ndarray:
        """What the majority baseline outputs: the training split's most frequent class, with certainty."""
        return self.constant_output(int(np.bincount(y_train, minlength=self.num_classes).argmax()), rows)

    def choose_threshold(self, y_val: np.ndarray, output: np.ndarray, metric: str) -> Any:
        """The decision threshold(s) `[evaluate] threshold = "auto"` picks on validation; None where none apply."""
        return None

    def check_threshold(self, threshold: Any) -> float | tuple[float, ...]:
        """A saved threshold, checked (a run directory is data anyone may have edited): raises ValueError."""
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 < threshold < 1:
            raise ValueError(f"threshold={threshold!r}; expected a probability strictly between 0 and 1")
        return float(threshold)

    def prediction_frame(self, output: np.ndarray, threshold: Any = 0.5, index: Any = None) -> pd.DataFrame:
        """Predictions as a DataFrame: `label`, its `probability`, and one `probability_<class>` column per class
        (binary too, so the positive class is named)."""
        out = self.class_probabilities(output)
        names = np.asarray(self.class_names, dtype=object)
        idx = self.decode(output, threshold)
        frame = pd.DataFrame({"label": names[idx], "probability": out[np.arange(len(out)), idx]}, index=index)
        for i, name in enumerate(self.class_names):
            frame[f"probability_{name}"] = out[:, i]
        return frame

    def score(self, y_true: np.ndarray, output: np.ndarray, threshold: float = 0.5) -> dict[str, Any]:
        """Test metrics of a model's output (see `kmodels.evaluation`), with `primary_se`: the primary
        metric's bootstrap standard error over the test rows."""
        from kmodels import evaluation

        out = self.probabilities(output)
        metrics = self._metrics(y_true, out, threshold)
        if metrics.get(self.primary) is not None:
            metrics["primary_se"] = evaluation.bootstrap_se(self.kind, y_true, out)
        return metrics

    def _metrics(self, y_true: np.ndarray, out: np.ndarray, threshold: float) -> dict[str, Any]:
        from kmodels import evaluation

        return evaluation.multiclass_metrics(y_true, out, self.class_names)

    def to_json(self) -> dict[str, Any]:
        out = {"kind": self.kind, "classes": [_plain(c) for c in self.classes], "reason": self.reason}
        if self.per_label_threshold:
            out["sep"] = self.sep
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Problem:
        return Problem(obj["kind"], tuple(obj.get("classes", ())), obj.get("reason", "saved with the run"),
                       str(obj.get("sep", LABEL_SEP)))

    @classmethod
    def from_num_classes(cls, num_classes: int) -> Problem:
        """The problem a model built with `num_classes` solves (class names `0..N-1`).

        Example:
            >>> Problem.from_num_classes(10).kind, Problem.from_num_classes(1).loss
            ('multiclass', 'mean_squared_error')
        """
        if num_classes == 1:
            return Problem("regression", (), "num_classes=1")
        if num_classes == 2:
            return Problem("binary", ("0", "1"), "num_classes=2")
        if num_classes >= 3:
            return Problem("multiclass", tuple(str(i) for i in range(num_classes)), f"num_classes={num_classes}")
        raise ConfigError(f"Received num_classes={num_classes}. Expected 1 (regression), 2 (binary) "
                          "or N >= 3 (multiclass).")


@dataclass(frozen=True)
class BinaryProblem(Problem):
    """Two classes (negative first): one sigmoid unit, binary cross-entropy, ranked by ROC AUC; a
    probability threshold decides (`[evaluate] threshold`)."""

    class_range = (2, 2)
    loss = "binary_crossentropy"
    metrics = ("accuracy",)
    known_metrics = ("auc", "precision", "recall")
    primary = "roc_auc"
    columns = ("model", "accuracy", "balanced_accuracy", "roc_auc", "f1")
    uses_threshold = True

    @property
    def output_width(self) -> int:
        return 1

    @property
    def positive_class(self) -> str:
        return self.class_names[1]

    def probabilities(self, output: np.ndarray) -> np.ndarray:
        output = np.asarray(output, dtype=np.float64)
        return output.reshape(len(output), -1)[:, 0] if output.size else output.reshape(0)

    def class_probabilities(self, output: np.ndarray) -> np.ndarray:
        positive = self.probabilities(output)
        return np.stack([1.0 - positive, positive], axis=1)

    def as_output(self, class_probabilities: np.ndarray) -> np.ndarray:
        return np.asarray(class_probabilities, dtype=np.float64)[:, 1]

    def decode(self, output: np.ndarray, threshold: float = 0.5) -> np.ndarray:
        return (self.probabilities(output) >= threshold).astype(np.int64)

    def describe_output(self) -> str:
        return f"probability of {self.positive_class!r}; predict it when >= threshold"

    def _metrics(self, y_true: np.ndarray, out: np.ndarray, threshold: float) -> dict[str, Any]:
        from kmodels import evaluation

        return evaluation.binary_metrics(y_true, out, threshold, self.class_names)

    def choose_threshold(self, y_val: np.ndarray, output: np.ndarray, metric: str) -> float:
        from kmodels.evaluation import choose_threshold

        return choose_threshold(y_val, self.probabilities(output), metric)


@dataclass(frozen=True)
class MulticlassProblem(Problem):
    """Three or more classes: N softmax units, sparse categorical cross-entropy, ranked by balanced accuracy."""

    class_range = (3, MAX_CLASSES)
    loss = "sparse_categorical_crossentropy"
    metrics = ("accuracy",)
    known_metrics = ("sparse_top_k_categorical_accuracy",)
    primary = "balanced_accuracy"
    columns = ("model", "accuracy", "balanced_accuracy", "f1_macro", "roc_auc")


@dataclass(frozen=True)
class RegressionProblem(Problem):
    """A number: one linear unit, mean squared error, ranked by R²."""

    class_range = (0, 0)
    loss = "mean_squared_error"
    metrics = ("mean_absolute_error",)
    known_metrics = ("mean_absolute_error", "root_mean_squared_error")
    primary = "r2"
    columns = ("model", "r2", "mae", "rmse")

    @property
    def num_classes(self) -> int:
        return 1

    @property
    def is_classification(self) -> bool:
        return False

    def valid(self, values: pd.Series) -> np.ndarray:
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        return np.isfinite(numbers)

    def encode(self, values: pd.Series) -> np.ndarray:
        return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float32)

    def probabilities(self, output: np.ndarray) -> np.ndarray:
        output = np.asarray(output, dtype=np.float64)
        return output.reshape(len(output), -1)[:, 0] if output.size else output.reshape(0)

    def class_probabilities(self, output: np.ndarray) -> np.ndarray:
        raise TypeError("A regression has no class probabilities.")

    def as_output(self, class_probabilities: np.ndarray) -> np.ndarray:
        raise TypeError("A regression has no class probabilities.")

    def decode(self, output: np.ndarray, threshold: float = 0.5) -> np.ndarray:
        return self.probabilities(output)

    def chosen_probability(self, output: np.ndarray, threshold: float = 0.5) -> np.ndarray:
        raise TypeError("A regression has no class probabilities.")

    def constant_output(self, index: int, rows: int) -> np.ndarray:
        return np.full(rows, float(index))

    def describe_output(self) -> str:
        return "the predicted value, in the target's units"

    def majority_output(self, y_train: np.ndarray, rows: int) -> np.ndarray:
        return np.full(rows, float(np.mean(y_train)) if len(y_train) else 0.0)

    def prediction_frame(self, output: np.ndarray, threshold: Any = 0.5, index: Any = None) -> pd.DataFrame:
        return pd.DataFrame({"prediction": self.decode(output)}, index=index)

    def _metrics(self, y_true: np.ndarray, out: np.ndarray, threshold: float) -> dict[str, Any]:
        from kmodels import evaluation

        return evaluation.regression_metrics(y_true, out)


_MULTI_LABEL_HEAD: contextvars.ContextVar[bool] = contextvars.ContextVar("kmodels_multi_label_head", default=False)


@dataclass(frozen=True)
class MultilabelProblem(Problem):
    """Any set of N labels per row (target `"a|c"`): N independent sigmoid units, binary cross-entropy per
    label, ranked by micro F1; a label is predicted when its probability reaches its threshold (one per
    label, chosen on validation with `[evaluate] threshold = "auto"`).

    Example:
        >>> p = Problem("multilabel", ("a", "b", "c"))
        >>> p.encode(pd.Series(["a|c", "b"])).tolist()
        [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
        >>> p.prediction_frame(np.array([[0.9, 0.2, 0.7]]))["label"].tolist()
        ['a|c']
    """

    class_range = (2, MAX_CLASSES)
    loss = "binary_crossentropy"
    metrics = ("binary_accuracy",)
    known_metrics = ("auc", "precision", "recall")
    primary = "f1_micro"
    columns = ("model", "f1_micro", "f1_macro", "subset_accuracy", "hamming_loss")
    per_label_threshold = True
    stratified = False

    def split(self, values: pd.Series) -> list[list[str]]:
        """Each row's labels (`"a|c"` → `["a", "c"]`; blanks around a label are ignored); [] for a missing value."""
        return [[] if pd.isna(v) else [part.strip() for part in str(v).split(self.sep) if part.strip()]
                for v in values]

    def valid(self, values: pd.Series) -> np.ndarray:
        known = set(self.class_names)
        return np.array([bool(labels) and set(labels) <= known for labels in self.split(values)], dtype=bool)

    def encode(self, values: pd.Series) -> np.ndarray:
        index = {name: i for i, name in enumerate(self.class_names)}
        out = np.zeros((len(values), len(self.classes)), dtype=np.float32)
        for row, labels in enumerate(self.split(values)):
            out[row, [index[label] for label in labels if label in index]] = 1.0
        return out

    def class_probabilities(self, output: np.ndarray) -> np.ndarray:
        return self.probabilities(output)

    def decode(self, output: np.ndarray, threshold: Any = 0.5) -> np.ndarray:
        """(n, N) 0/1: each label whose probability reaches its threshold (a number, or one per label)."""
        return (self.probabilities(output) >= np.asarray(threshold, dtype=np.float64)).astype(np.int64)

    def chosen_probability(self, output: np.ndarray, threshold: Any = 0.5) -> np.ndarray:
        raise TypeError("A multi-label prediction has a probability per label, not one.")

    def constant_output(self, index: int, rows: int) -> np.ndarray:
        return np.zeros((rows, len(self.classes))) + np.eye(len(self.classes))[index]

    def majority_output(self, y_train: np.ndarray, rows: int) -> np.ndarray:
        """Each label as most training rows have it (present or absent), with certainty."""
        majority = (np.asarray(y_train).mean(axis=0) > 0.5).astype(np.float64) if len(y_train) else 0.0
        return np.zeros((rows, len(self.classes))) + majority

    def describe_output(self) -> str:
        return ("one independent probability per label, in the order of classes; a label is predicted when its "
                "probability >= its threshold")

    def baseline(self, estimator: Any) -> Any:
        """One-vs-rest around an estimator that takes one label column (`MLPClassifier` takes them all)."""
        from sklearn.multiclass import OneVsRestClassifier
        from sklearn.neural_network import MLPClassifier

        return estimator if isinstance(estimator, MLPClassifier) else OneVsRestClassifier(estimator)

    def baseline_output(self, estimator: Any, x: Any) -> np.ndarray:
        return np.asarray(estimator.predict_proba(x), dtype=np.float64)

    def label_text(self, labels: np.ndarray) -> list[str]:
        """Rows of 0/1 per label as their labels joined by `sep`."""
        return [self.sep.join(n for n, on in zip(self.class_names, row, strict=True) if on)
                for row in np.asarray(labels)]

    def label_counts(self, values: pd.Series) -> dict[str, int]:
        """Rows carrying each label."""
        totals = self.encode(values[self.valid(values)]).sum(axis=0)
        return {name: int(n) for name, n in zip(self.class_names, totals, strict=True) if n}

    def building(self) -> contextlib.AbstractContextManager:
        @contextlib.contextmanager
        def sigmoid_heads() -> Iterator[None]:
            token = _MULTI_LABEL_HEAD.set(True)
            try:
                yield
            finally:
                _MULTI_LABEL_HEAD.reset(token)
        return sigmoid_heads()

    def choose_threshold(self, y_val: np.ndarray, output: np.ndarray, metric: str) -> tuple[float, ...]:
        """Per label, the threshold that maximises that label's F1 on validation (0.5 for a label it lacks)."""
        from kmodels.evaluation import choose_threshold

        proba, y_val = self.probabilities(output), np.asarray(y_val)
        return tuple(choose_threshold(y_val[:, i], proba[:, i], "f1") for i in range(len(self.classes)))

    def check_threshold(self, threshold: Any) -> float | tuple[float, ...]:
        if isinstance(threshold, list | tuple):
            if len(threshold) != len(self.classes):
                raise ValueError(f"{len(threshold)} thresholds for {len(self.classes)} labels")
            return tuple(float(super(MultilabelProblem, self).check_threshold(t)) for t in threshold)
        return super().check_threshold(threshold)

    def prediction_frame(self, output: np.ndarray, threshold: Any = 0.5, index: Any = None) -> pd.DataFrame:
        """`label`: the predicted labels joined by `sep` (`""` for none), and one `probability_<label>` per label."""
        proba, chosen = self.class_probabilities(output), self.decode(output, threshold).astype(bool)
        names = self.class_names
        frame = pd.DataFrame({"label": [self.sep.join(n for n, on in zip(names, row, strict=True) if on)
                                        for row in chosen]}, index=index)
        for i, name in enumerate(names):
            frame[f"probability_{name}"] = proba[:, i]
        return frame

    def _metrics(self, y_true: np.ndarray, out: np.ndarray, threshold: Any) -> dict[str, Any]:
        from kmodels import evaluation

        return evaluation.multilabel_metrics(y_true, out, threshold, self.class_names)


_BY_KIND: dict[str, type[Problem]] = {"binary": BinaryProblem, "multiclass": MulticlassProblem,
                                      "multilabel": MultilabelProblem, "regression": RegressionProblem}


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _sorted_values(values: Sequence[Any]) -> list[Any]:
    if all(isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool) for v in values):
        return sorted(values)
    return sorted(values, key=str)


def infer_problem(values: pd.Series, problem: str = "auto", classes: Sequence[Any] | None = None, *,
                  column: str | None = None, source: str = "<data>", sep: str = LABEL_SEP) -> Problem:
    """Decide the problem type from the target column, or check the one asked for.

    Text holding label sets joined by `sep` (`"a|c"`, on at least 1% of the rows) →
    multi-label; two distinct values → binary; text, booleans or at most `MAX_DISCRETE_LEVELS`
    whole numbers → multiclass; other numbers → regression. `classes` names the
    classes (labels) to keep, in label order (binary: negative first); rows with other
    values are dropped later by cleaning.

    Args:
        values: the target column (missing values are ignored).
        problem: `"auto"`, `"binary"`, `"multiclass"`, `"multilabel"` or `"regression"`.
        classes: the class values to keep, in order; `None` takes every distinct value, sorted.
        column: the target's name, for messages.
        source: where the data came from, for messages.
        sep: what joins the labels of a multi-label row.

    Raises:
        DataError: a target that cannot be learned (one value, all missing, text for
            regression, more than `MAX_CLASSES` classes), naming the column and the fix.

    Example:
        >>> infer_problem(pd.Series([0.5, 1.25, 3.0, 7.5] * 10)).kind
        'regression'
        >>> infer_problem(pd.Series([1, 2, 3, 1]), problem="regression").reason
        'data.problem = "regression" in the spec'
    """
    name = repr(column) if column else "the target"
    if problem not in ("auto", *KINDS):
        raise ConfigError(f"Received data.problem={problem!r}. Expected 'auto', {', '.join(map(repr, KINDS))}.")
    present = values.dropna()
    if isinstance(present.dtype, pd.CategoricalDtype):
        present = present.astype(present.cat.categories.dtype)
    if present.empty:
        raise DataError(f"{source}: target {name} has no values (every row is missing). "
                        "Pick another column with --set data.target=COLUMN.")
    numeric = pd.api.types.is_numeric_dtype(present) and not pd.api.types.is_bool_dtype(present)
    if problem == "multilabel" or (problem == "auto" and not numeric and sep
                                   and present.astype(str).str.contains(sep, regex=False).mean() >= 0.01):
        return _multilabel(present, classes, name, source, sep, problem)
    distinct = present.unique()
    fractional = numeric and not np.all(np.mod(distinct.astype(float), 1) == 0)
    if problem == "regression" or (problem == "auto" and classes is None and numeric
                                   and (len(distinct) > MAX_DISCRETE_LEVELS or fractional)):
        if not numeric:
            numbers = pd.to_numeric(present, errors="coerce")
            bad = present[numbers.isna()].astype(str).unique()[:5].tolist()
            raise DataError(f"{source}: target {name} holds text ({bad}) but data.problem is 'regression'. "
                            "Use a numeric column, or set data.problem = \"multiclass\" to predict categories.")
        if len(distinct) < 2:
            raise DataError(f"{source}: target {name} has one value ({_plain(distinct[0])!r}); nothing to learn.")
        why = ('data.problem = "regression" in the spec' if problem == "regression"
               else f"numeric target with {len(distinct)} distinct values (> {MAX_DISCRETE_LEVELS})"
               if len(distinct) > MAX_DISCRETE_LEVELS else "numeric target with fractional values")
        return Problem("regression", (), why)
    if classes is not None:
        kept = list(classes)
        missing = [c for c in kept if c not in set(distinct.tolist())]
        if missing:
            shown = ", ".join(map(repr, _sorted_values(distinct.tolist())[:10]))
            raise DataError(f"{source}: data.classes names {missing}, not found in target {name}; "
                            f"its values include {shown}.")
    else:
        kept = _sorted_values(distinct.tolist())
    if len(kept) < 2:
        raise DataError(f"{source}: target {name} has only one class ({kept[0]!r} on {len(present)} rows); "
                        "a classifier needs at least two. Check the column (--set data.target=COLUMN) or the data.")
    if len(kept) > MAX_CLASSES:
        raise DataError(f"{source}: target {name} has {len(kept)} distinct values, more than {MAX_CLASSES} classes: "
                        "it looks like an identifier or free text. Pick another column (--set data.target=COLUMN), "
                        'or set data.problem = "regression" if it is a number.')
    kind = problem if problem != "auto" else ("binary" if len(kept) == 2 else "multiclass")
    if kind == "binary" and len(kept) != 2:
        shown = ", ".join(map(repr, kept[:10])) + (" ..." if len(kept) > 10 else "")
        raise DataError(f"{source}: data.problem is 'binary' but target {name} has {len(kept)} classes: {shown}. "
                        "Name the two to keep with --set data.classes='[\"NEG\", \"POS\"]', or drop data.problem.")
    if kind == "multiclass" and len(kept) == 2:
        kind = "binary"  # two classes are a binary problem whatever was asked
    if problem != "auto":
        why = f'data.problem = "{problem}" in the spec'
    elif classes is not None:
        why = f"data.classes names {len(kept)} classes"
    elif numeric:
        why = f"numeric target with {len(kept)} distinct whole values (<= {MAX_DISCRETE_LEVELS})"
    else:
        why = f"{len(kept)} distinct {'values' if len(kept) == 2 else 'labels'}"
    return Problem(kind, tuple(_plain(c) for c in kept), why)


def _multilabel(present: pd.Series, classes: Sequence[Any] | None, name: str, source: str, sep: str,
                asked: str) -> Problem:
    probe = MultilabelProblem("multilabel", ("_", "__"), sep=sep)
    seen = sorted({label for labels in probe.split(present) for label in labels})
    if classes is not None:
        kept = [str(c) for c in classes]
        missing = [c for c in kept if c not in seen]
        if missing:
            raise DataError(f"{source}: data.classes names {missing}, not among the labels of target {name} "
                            f"({seen[:10]}).")
    else:
        kept = seen
    if len(kept) < 2:
        raise DataError(f"{source}: target {name} holds {len(kept)} label(s) ({kept}); a multi-label problem needs "
                        "at least two. Check the column and data.label_sep.")
    if len(kept) > MAX_CLASSES:
        raise DataError(f"{source}: target {name} holds {len(kept)} distinct labels, more than {MAX_CLASSES}.")
    why = ('data.problem = "multilabel" in the spec' if asked == "multilabel"
           else f"label sets joined by {sep!r} ({len(kept)} labels)")
    return Problem("multilabel", tuple(kept), why, sep)


def output_head(x: Any, num_classes: int, name: str = "output") -> Any:
    """The output layer for `num_classes` (see the module docstring), in float32.

    Example:
        >>> import keras
        >>> inputs = keras.Input((4,))
        >>> keras.Model(inputs, output_head(inputs, 5)).output_shape
        (None, 5)
    """
    import keras

    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"Received num_classes={num_classes!r}. Expected 1 (regression), 2 (binary) "
                         "or N >= 3 (multiclass).")
    if _MULTI_LABEL_HEAD.get():  # a multi-label problem is building it: one independent sigmoid per label
        return keras.layers.Dense(num_classes, activation="sigmoid", dtype="float32", name=name)(x)
    if num_classes == 1:
        return keras.layers.Dense(1, dtype="float32", name=name)(x)
    if num_classes == 2:
        return keras.layers.Dense(1, activation="sigmoid", dtype="float32", name=name)(x)
    return keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name=name)(x)
