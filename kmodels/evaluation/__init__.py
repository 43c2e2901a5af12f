"""Metrics, plots and tables for binary, multiclass, multi-label and regression models (one module each).

Plots use matplotlib's Agg backend (no display needed) and seaborn. Example:

    >>> import numpy as np
    >>> from kmodels.evaluation import binary_metrics
    >>> m = binary_metrics(np.array([0, 1, 1, 0]), np.array([0.2, 0.9, 0.4, 0.1]))
    >>> m["accuracy"], m["confusion_matrix"]
    (0.75, [[2, 0], [1, 1]])
"""

from __future__ import annotations

from kmodels.evaluation.importance import BATCH_CELLS, importance_rows, permutation_importances
from kmodels.evaluation.metrics import (
    THRESHOLD_GRID,
    THRESHOLD_METRICS,
    binary_metrics,
    bootstrap_se,
    choose_threshold,
    fingerprint,
    fit_temperature,
    multiclass_metrics,
    multilabel_metrics,
    regression_metrics,
    threshold_curve,
    verdict,
)
from kmodels.evaluation.plots import (
    plot_binary_diagnostics,
    plot_confusion_matrix,
    plot_history,
    plot_importance,
    plot_per_label,
    plot_regression,
    pyplot,
    save_figure,
)
from kmodels.evaluation.tables import (
    format_table,
    markdown_text,
    spreadsheet_safe,
)

__all__ = [
    "BATCH_CELLS",
    "THRESHOLD_GRID",
    "THRESHOLD_METRICS",
    "binary_metrics",
    "bootstrap_se",
    "choose_threshold",
    "fingerprint",
    "fit_temperature",
    "format_table",
    "markdown_text",
    "multiclass_metrics",
    "multilabel_metrics",
    "importance_rows",
    "permutation_importances",
    "plot_binary_diagnostics",
    "plot_confusion_matrix",
    "plot_history",
    "plot_importance",
    "plot_per_label",
    "plot_regression",
    "pyplot",
    "regression_metrics",
    "save_figure",
    "spreadsheet_safe",
    "threshold_curve",
    "verdict",
]
