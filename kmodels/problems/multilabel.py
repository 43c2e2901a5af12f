"""Any set of labels per row: N independent sigmoid units and a threshold per label."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kmodels.problems.base import _MULTI_LABEL_HEAD, MAX_CLASSES, Problem


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

    def primary_score(self, y_true: np.ndarray, output: np.ndarray, threshold: Any = 0.5) -> float | None:
        """Micro F1 without the per-label table and ROC AUCs `score` computes: 2·TP / (true + predicted labels)."""
        y_true = np.asarray(y_true).astype(bool)
        if not len(y_true):
            return None
        chosen = self.decode(output, threshold).astype(bool).reshape(y_true.shape)
        total = int(y_true.sum() + chosen.sum())
        return 2.0 * int((y_true & chosen).sum()) / total if total else 0.0

    def _metrics(self, y_true: np.ndarray, out: np.ndarray, threshold: Any) -> dict[str, Any]:
        from kmodels import evaluation

        return evaluation.multilabel_metrics(y_true, out, threshold, self.class_names)
