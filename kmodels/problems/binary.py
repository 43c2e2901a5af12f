"""Two classes: one sigmoid unit and a decision threshold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from kmodels.problems.base import Problem


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

    def primary_score(self, y_true: np.ndarray, output: np.ndarray, threshold: Any = 0.5) -> float | None:
        """ROC AUC alone, as the Mann-Whitney statistic of the ranks (ties count half, as in scikit-learn's
        trapezoids), without the whole table `score` computes; None with one class or non-finite outputs."""
        from scipy.stats import rankdata

        y_true = np.asarray(y_true).astype(int).ravel()
        proba = np.asarray(self.probabilities(output), dtype=float).ravel()
        positives = int(y_true.sum())
        negatives = len(y_true) - positives
        if not positives or not negatives or not np.isfinite(proba).all():
            return None
        ranks = rankdata(proba)
        return float((ranks[y_true == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))

    def _metrics(self, y_true: np.ndarray, out: np.ndarray, threshold: float) -> dict[str, Any]:
        from kmodels import evaluation

        return evaluation.binary_metrics(y_true, out, threshold, self.class_names)

    def choose_threshold(self, y_val: np.ndarray, output: np.ndarray, metric: str) -> float:
        from kmodels.evaluation import choose_threshold

        return choose_threshold(y_val, self.probabilities(output), metric)
