"""Metrics, confusion matrices and plots for binary classifiers.

Plots use matplotlib's Agg backend (no display needed) and seaborn. Example:

    >>> import numpy as np
    >>> from kmodels.evaluation import binary_metrics
    >>> m = binary_metrics(np.array([0, 1, 1, 0]), np.array([0.2, 0.9, 0.4, 0.1]))
    >>> m["accuracy"], m["confusion_matrix"]
    (0.75, [[2, 0], [1, 1]])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def binary_metrics(y_true: np.ndarray, proba: np.ndarray, threshold: float = 0.5,
                   class_names: Sequence[str] = ("0", "1")) -> dict[str, Any]:
    """Accuracy, balanced accuracy, ROC AUC, precision/recall/F1 per class, confusion matrix.

    Args:
        y_true: 0/1 labels.
        proba: predicted probability of class 1.
        threshold: probability above which class 1 is predicted.
        class_names: names of class 0 and class 1, used as keys.
    """
    from sklearn import metrics as skm

    y_true = np.asarray(y_true).astype(int).ravel()
    proba = np.asarray(proba, dtype=float).ravel()
    y_pred = (proba >= threshold).astype(int)
    labels = [0, 1]
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    try:
        auc = float(skm.roc_auc_score(y_true, proba)) if len(np.unique(y_true)) == 2 else None
    except ValueError:
        auc = None
    return {
        "n": int(len(y_true)),
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(y_true, y_pred)) if len(np.unique(y_true)) > 1 else None,
        "roc_auc": auc,
        "precision": float(p[1]),
        "recall": float(r[1]),
        "f1": float(f[1]),
        "per_class": {
            str(class_names[i]): {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i in labels
        },
        "confusion_matrix": skm.confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "threshold": float(threshold),
    }


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_confusion_matrix(cm: Sequence[Sequence[int]], class_names: Sequence[str], path: str | Path,
                          title: str = "Confusion matrix") -> Path:
    """Seaborn heatmap of a confusion matrix with counts and row percentages."""
    import seaborn as sns

    plt = pyplot()
    cm = np.asarray(cm)
    rows = cm.sum(axis=1, keepdims=True)
    pct = np.divide(cm, rows, out=np.zeros_like(cm, dtype=float), where=rows > 0)
    annot = np.array([[f"{c}\n{p:.1%}" for c, p in zip(rc, rp, strict=True)] for rc, rp in zip(cm, pct, strict=True)])
    fig, ax = plt.subplots(figsize=(4.5, 4))
    sns.heatmap(pct, annot=annot, fmt="", cmap="Blues", vmin=0, vmax=1, cbar=True,
                xticklabels=class_names, yticklabels=class_names, ax=ax)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_history(history: Mapping[str, Sequence[float]], path: str | Path, phase_start: int | None = None) -> Path:
    """Training curves: each metric train vs val, and the learning rate if recorded.

    `phase_start` (an epoch count) draws a dashed line where fine-tuning began.
    """
    plt = pyplot()
    bases = [k for k in history if not k.startswith("val_") and k not in ("learning_rate", "lr", "epoch")]
    lr_key = next((k for k in ("learning_rate", "lr") if k in history), None)
    n = len(bases) + (1 if lr_key else 0)
    fig, axes = plt.subplots(1, max(n, 1), figsize=(4 * max(n, 1), 3.2), squeeze=False)
    for ax, key in zip(axes[0], bases, strict=False):
        epochs = np.arange(1, len(history[key]) + 1)
        ax.plot(epochs, history[key], marker="o", label="train")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], marker="o", label="val")
        if phase_start:
            ax.axvline(phase_start + 0.5, color="grey", linestyle="--", label="fine-tuning")
        ax.set_title(key)
        ax.set_xlabel("epoch")
        ax.legend()
    if lr_key:
        ax = axes[0][len(bases)]
        ax.plot(np.arange(1, len(history[lr_key]) + 1), history[lr_key], marker="o")
        ax.set_yscale("log")
        ax.set_title("learning rate")
        ax.set_xlabel("epoch")
    fig.tight_layout()
    return save_figure(fig, path)


def save_figure(fig: Any, path: str | Path) -> Path:
    import io

    from kmodels.runs import atomic_write

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    pyplot().close(fig)
    return atomic_write(Path(path), buf.getvalue())


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A plain-text table (markdown pipe style) of `rows`."""
    def cell(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.4f}"
        return str(v)

    body = [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(b[i]) for b in body)) if body else len(c) for i, c in enumerate(columns)]
    line = lambda vals: "| " + " | ".join(v.ljust(w) for v, w in zip(vals, widths, strict=True)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(columns), sep, *(line(b) for b in body)])
