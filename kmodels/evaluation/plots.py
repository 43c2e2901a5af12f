"""The plots of a run: confusion matrix, binary diagnostics, per-label bars, regression, importance, history.

matplotlib's Agg backend (no display needed) and seaborn. With `path=None` a plot function returns its
figure unwritten, for a hook to hand to the runner (`kmodels.saving.Artifacts`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kmodels.evaluation.metrics import THRESHOLD_GRID, threshold_curve


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _short(name: str, width: int = 14) -> str:
    """`name`, cut to `width` characters with an ellipsis: a tick label that stays readable."""
    return name if len(name) <= width else name[:width - 1] + "…"


def plot_confusion_matrix(cm: Sequence[Sequence[int]], class_names: Sequence[str], path: str | Path | None,
                          title: str = "Confusion matrix") -> Any:
    """Seaborn heatmap of a confusion matrix, coloured by row share (recall), annotated with counts.

    Readable to about 20 classes: the figure grows with the class count (to 14 inches), long
    names are shortened, and past 10 classes cells show the percentage only
    (past 20 the colour alone; past 40 only a subset of the class names is written).

    Example:
        >>> fig = plot_confusion_matrix(np.eye(100, dtype=int), [f"c{i}" for i in range(100)], None)
        >>> ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
        >>> 10 <= len(ticks) < 100, ticks[:2]
        (True, ['c0', 'c2'])
        >>> pyplot().close(fig)
    """
    import pandas as pd
    import seaborn as sns

    plt = pyplot()
    cm = np.asarray(cm)
    n = len(cm)
    rows = cm.sum(axis=1, keepdims=True)
    pct = np.divide(cm, rows, out=np.zeros_like(cm, dtype=float), where=rows > 0)
    if n <= 10:
        annot: Any = np.array([[f"{c}\n{p:.0%}" if n > 2 else f"{c}\n{p:.1%}" for c, p in zip(rc, rp, strict=True)]
                               for rc, rp in zip(cm, pct, strict=True)])
    elif n <= 20:
        annot = np.array([[f"{p:.0%}" if c else "" for c, p in zip(rc, rp, strict=True)]
                          for rc, rp in zip(cm, pct, strict=True)])
    else:
        annot = False
    names = [_short(str(c)) for c in class_names]
    side = 4.0 if n <= 2 else min(4.0 + 0.45 * n, 14.0)
    fig, ax = plt.subplots(figsize=(side + 0.5, side))
    ticks: Any = True if n <= 40 else "auto"  # past 40 classes a readable subset of the names (seaborn thins them)
    sns.heatmap(pd.DataFrame(pct, index=names, columns=names), annot=annot, fmt="", cmap="Blues", vmin=0, vmax=1,
                cbar=True, square=n > 2, annot_kws={"fontsize": 9 if n <= 10 else 7}, xticklabels=ticks,
                yticklabels=ticks, ax=ax)
    if n > 2:
        ax.tick_params(axis="x", labelrotation=90)
        ax.tick_params(axis="y", labelrotation=0)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_per_label(per_label: Mapping[str, Mapping[str, Any]], path: str | Path | None, title: str = "Per label",
                   max_labels: int = 40) -> Any:
    """Precision, recall and F1 of each label of a multi-label model (bars), with its support in the tick label.

    Past `max_labels` labels only the `max_labels` with the most support are drawn (the title says how many of
    how many; `metrics.json` holds every label's figures), so the figure stays readable: 1,000 labels drew a
    99,220-pixel-wide PNG.

    Example:
        >>> fig = plot_per_label({f"l{i}": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": i}
        ...                       for i in range(100)}, None)
        >>> fig.axes[0].get_title(), bool(fig.get_size_inches()[0] <= 40)
        ('Per label: the 40 of 100 labels with the most support', True)
        >>> pyplot().close(fig)
    """
    plt = pyplot()
    names = list(per_label)
    if len(names) > max_labels:
        names = sorted(names, key=lambda n: -per_label[n]["support"])[:max_labels]  # stable: ties keep their order
        title = f"{title}: the {max_labels} of {len(per_label)} labels with the most support"
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(names) + 2), 4))
    for i, metric in enumerate(("precision", "recall", "f1")):
        ax.bar(x + (i - 1) * 0.27, [per_label[n][metric] for n in names], width=0.27, label=metric)
    ax.set_xticks(x, [f"{_short(n)}\n(n={per_label[n]['support']})" for n in names])
    ax.set_ylim(0, 1.2)  # room for the legend above the bars
    ax.set_title(title)
    ax.legend(loc="upper center", ncols=3, frameon=False)
    return save_figure(fig, path)


def plot_binary_diagnostics(y_test: np.ndarray, p_test: np.ndarray, path: str | Path | None, *,
                            class_names: Sequence[str] = ("0", "1"), threshold: float = 0.5,
                            y_val: np.ndarray | None = None, p_val: np.ndarray | None = None,
                            metric: str = "balanced_accuracy", title: str = "Binary diagnostics") -> Any:
    """ROC and precision-recall curves, a reliability diagram (test split), and the metric against the
    decision threshold (validation split when given, else test), with the run's threshold marked."""
    from sklearn import metrics as skm
    from sklearn.calibration import calibration_curve

    plt = pyplot()
    y_test = np.asarray(y_test).astype(int).ravel()
    p_test = np.asarray(p_test, dtype=float).ravel()
    fig, axes = plt.subplots(2, 2, figsize=(10, 9))
    (roc, pr), (rel, thr) = axes
    both = len(np.unique(y_test)) == 2
    if both:
        fpr, tpr, _ = skm.roc_curve(y_test, p_test)
        roc.plot(fpr, tpr, label=f"AUC {skm.roc_auc_score(y_test, p_test):.3f}")
        precision, recall, _ = skm.precision_recall_curve(y_test, p_test)
        pr.plot(recall, precision, label=f"AP {skm.average_precision_score(y_test, p_test):.3f}")
    roc.plot([0, 1], [0, 1], ls="--", c="grey", lw=1)
    roc.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC (positive: {class_names[1]})")
    pr.axhline(y_test.mean() if len(y_test) else 0.0, ls="--", c="grey", lw=1, label="prevalence")
    pr.set(xlabel="recall", ylabel="precision", title="Precision-recall", ylim=(0, 1.02))
    frac, mean_pred = calibration_curve(y_test, p_test, n_bins=10, strategy="quantile") if both else ([], [])
    rel.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="perfectly calibrated")
    rel.plot(mean_pred, frac, marker="o", label="model")
    rel.set(xlabel=f"mean predicted p({class_names[1]})", ylabel="observed share", title="Reliability (test)")
    on_val = y_val is not None and p_val is not None and len(np.unique(np.asarray(y_val))) == 2
    y_c, p_c = (y_val, p_val) if on_val else (y_test, p_test)
    thr.plot(THRESHOLD_GRID, threshold_curve(y_c, p_c, metric), label=metric)
    thr.axvline(threshold, c="C3", ls=":", label=f"threshold {threshold:.2f}")
    thr.set(xlabel="decision threshold", ylabel=metric, title=f"{metric} vs threshold ({'validation' if on_val else 'test'})")
    for ax in axes.ravel():
        ax.legend(loc="best", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_importance(importance: Mapping[str, Any], metric: str, path: str | Path | None, title: str = "",
                    top: int = 20) -> Any:
    """Horizontal bars of the `top` most important columns: the mean drop of `metric`, with its std."""
    plt = pyplot()
    items = list(importance["features"].items())[:top]
    names = [n if len(n) <= 28 else n[:27] + "…" for n, _ in items][::-1]
    means = [v["mean"] for _, v in items][::-1]
    stds = [v["std"] for _, v in items][::-1]
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.32 * max(len(items), 1)))
    ax.barh(names, means, xerr=stds, color=["C0" if m > 0 else "C7" for m in means], capsize=2)
    ax.axvline(0, c="grey", lw=1)
    ax.set_xlabel(f"drop in {metric} when the column is shuffled ({importance['repeats']} repeats, "
                  f"{importance['rows']} rows)")
    ax.set_title(title or "Permutation importance (test split)")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_regression(y_true: np.ndarray, y_pred: np.ndarray, path: str | Path | None, title: str = "Regression") -> Any:
    """Predicted vs true values (with the identity line) and residuals vs predicted, side by side."""
    plt = pyplot()
    y_true = np.asarray(y_true, dtype=float).ravel()
    y_pred = np.asarray(y_pred, dtype=float).ravel()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4))
    left.scatter(y_true, y_pred, s=12, alpha=0.6)
    finite = np.isfinite(y_pred)
    if len(y_true) and finite.any():
        lo = float(min(y_true.min(), y_pred[finite].min()))
        hi = float(max(y_true.max(), y_pred[finite].max()))
        left.plot([lo, hi], [lo, hi], color="grey", linestyle="--", label="perfect")
        left.legend()
    left.set_xlabel("true")
    left.set_ylabel("predicted")
    left.set_title(f"{title}: predicted vs true")
    right.scatter(y_pred, y_true - y_pred, s=12, alpha=0.6)
    right.axhline(0, color="grey", linestyle="--")
    right.set_xlabel("predicted")
    right.set_ylabel("true - predicted")
    right.set_title("residuals")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_history(history: Mapping[str, Sequence[float]], path: str | Path | None, phase_start: int | None = None) -> Any:
    """Training curves: each metric train vs val, and the learning rate if recorded.

    `phase_start` (an epoch count) draws a dashed line where fine-tuning began.
    """
    plt = pyplot()
    bases = [k for k in history if not k.startswith("val_") and k not in ("learning_rate", "lr", "epoch", "seconds")]
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


def save_figure(fig: Any, path: str | Path | None) -> Any:
    """Write `fig` as a PNG at `path` (atomically) and close it; with `path=None`, return the figure unwritten
    (a hook hands it to the runner, which writes it: `kmodels.saving.write_artifacts`)."""
    import io

    if path is None:
        return fig

    from kmodels.runs import atomic_write

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    pyplot().close(fig)
    return atomic_write(Path(path), buf.getvalue())
