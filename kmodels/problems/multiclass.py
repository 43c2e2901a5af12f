"""Three or more classes, one per row: N softmax units."""

from __future__ import annotations

from dataclasses import dataclass

from kmodels.problems.base import MAX_CLASSES, Problem


@dataclass(frozen=True)
class MulticlassProblem(Problem):
    """Three or more classes: N softmax units, sparse categorical cross-entropy, ranked by balanced accuracy."""

    class_range = (3, MAX_CLASSES)
    loss = "sparse_categorical_crossentropy"
    metrics = ("accuracy",)
    known_metrics = ("sparse_top_k_categorical_accuracy",)
    primary = "balanced_accuracy"
    columns = ("model", "accuracy", "balanced_accuracy", "f1_macro", "roc_auc")
