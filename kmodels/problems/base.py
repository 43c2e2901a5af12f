"""The `Problem` base class: what every problem kind shares and answers (see `kmodels.problems`)."""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from kmodels.errors import ConfigError

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

    def primary_score(self, y_true: np.ndarray, output: np.ndarray, threshold: Any = 0.5) -> float | None:
        """The primary metric alone, as `score` gives it (no standard error): what permutation importance
        computes for each shuffled copy, so a kind may override it with something cheaper."""
        value = self._metrics(y_true, self.probabilities(output), threshold).get(self.primary)
        return None if value is None else float(value)

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


#: kind -> class, filled by `kmodels.problems` as it imports each kind's module.
_BY_KIND: dict[str, type[Problem]] = {}
_MULTI_LABEL_HEAD: contextvars.ContextVar[bool] = contextvars.ContextVar("kmodels_multi_label_head", default=False)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def output_head(x: Any, num_classes: int, name: str = "output") -> Any:
    """The output layer for `num_classes` (see the module docstring), in float32.

    Example:
        >>> import keras
        >>> inputs = keras.Input((4,))
        >>> keras.Model(inputs, output_head(inputs, 5)).output_shape
        (None, 5)
    """
    import keras

    from kmodels.initializers import host_built

    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"Received num_classes={num_classes!r}. Expected 1 (regression), 2 (binary) "
                         "or N >= 3 (multiclass).")
    if _MULTI_LABEL_HEAD.get():  # a multi-label problem is building it: one independent sigmoid per label
        return host_built(keras.layers.Dense(num_classes, activation="sigmoid", dtype="float32", name=name), x)
    if num_classes == 1:
        return host_built(keras.layers.Dense(1, dtype="float32", name=name), x)
    if num_classes == 2:
        return host_built(keras.layers.Dense(1, activation="sigmoid", dtype="float32", name=name), x)
    return host_built(keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name=name), x)
