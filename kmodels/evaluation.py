"""Metrics, confusion matrices and plots for binary, multiclass and regression models.

Plots use matplotlib's Agg backend (no display needed) and seaborn. Example:

    >>> import numpy as np
    >>> from kmodels.evaluation import binary_metrics
    >>> m = binary_metrics(np.array([0, 1, 1, 0]), np.array([0.2, 0.9, 0.4, 0.1]))
    >>> m["accuracy"], m["confusion_matrix"]
    (0.75, [[2, 0], [1, 1]])
"""

from __future__ import annotations

import re
import warnings
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


def multiclass_metrics(y_true: np.ndarray, proba: np.ndarray, class_names: Sequence[str]) -> dict[str, Any]:
    """Accuracy, balanced accuracy, macro F1, one-vs-rest ROC AUC, per-class table, confusion matrix.

    Args:
        y_true: class indices `0..N-1`.
        proba: (n, N) class probabilities.
        class_names: the N class names, used as keys of `per_class`.

    Example:
        >>> m = multiclass_metrics(np.array([0, 1, 2, 2]), np.eye(3)[[0, 1, 2, 1]], ["a", "b", "c"])
        >>> m["accuracy"], m["confusion_matrix"][2]
        (0.75, [0, 1, 1])
    """
    from sklearn import metrics as skm

    y_true = np.asarray(y_true).astype(int).ravel()
    proba = np.asarray(proba, dtype=float)
    labels = list(range(len(class_names)))
    y_pred = proba.argmax(axis=1)
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    auc = None
    present = np.unique(y_true)
    if len(present) == len(labels) and len(y_true):  # every class in the test split: OvR AUC is defined
        rows = proba.sum(axis=1, keepdims=True)
        normed = np.divide(proba, rows, out=np.full_like(proba, 1 / len(labels)), where=rows > 0)
        auc = float(skm.roc_auc_score(y_true, normed, multi_class="ovr", average="macro", labels=labels))
    with warnings.catch_warnings():  # a class predicted but absent from the truth is expected on small splits
        warnings.simplefilter("ignore", UserWarning)
        balanced = float(skm.balanced_accuracy_score(y_true, y_pred)) if len(present) > 1 else None
    return {
        "n": int(len(y_true)),
        "accuracy": float(skm.accuracy_score(y_true, y_pred)) if len(y_true) else None,
        "balanced_accuracy": balanced,
        "f1_macro": float(np.mean(f[present])) if len(present) else None,
        "roc_auc": auc,
        "per_class": {
            str(class_names[i]): {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i in labels
        },
        "confusion_matrix": skm.confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def multilabel_metrics(y_true: np.ndarray, proba: np.ndarray, threshold: Any = 0.5,
                       label_names: Sequence[str] = ()) -> dict[str, Any]:
    """Micro and macro F1, subset accuracy (every label right), Hamming loss, macro ROC AUC, a per-label table.

    Args:
        y_true: (n, N) 0/1.
        proba: (n, N) independent label probabilities.
        threshold: a label is predicted when its probability reaches it (a number, or one per label).
        label_names: the N labels, used as keys of `per_label`.

    Example:
        >>> y = np.array([[1, 0, 1], [0, 1, 0]])
        >>> m = multilabel_metrics(y, np.array([[0.9, 0.2, 0.4], [0.1, 0.8, 0.1]]), 0.5, ["a", "b", "c"])
        >>> round(m["f1_micro"], 3), m["subset_accuracy"], m["per_label"]["c"]["f1"]
        (0.857, 0.5, 0.0)
    """
    from sklearn import metrics as skm

    y_true = np.asarray(y_true).astype(int)
    proba = np.asarray(proba, dtype=float).reshape(y_true.shape)
    thresholds = np.broadcast_to(np.asarray(threshold, dtype=float), (y_true.shape[1],))
    y_pred = (proba >= thresholds).astype(int)
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
    present = [i for i in range(y_true.shape[1]) if 0 < y_true[:, i].sum() < len(y_true)]
    auc = float(np.mean([skm.roc_auc_score(y_true[:, i], proba[:, i]) for i in present])) if present else None
    names = [str(n) for n in label_names] or [str(i) for i in range(y_true.shape[1])]
    return {
        "n": int(len(y_true)),
        "f1_micro": float(skm.f1_score(y_true, y_pred, average="micro", zero_division=0)) if len(y_true) else None,
        "f1_macro": float(np.mean(f)) if len(y_true) else None,
        "subset_accuracy": float(skm.accuracy_score(y_true, y_pred)) if len(y_true) else None,
        "hamming_loss": float(skm.hamming_loss(y_true, y_pred)) if len(y_true) else None,
        "roc_auc": auc,
        "per_label": {names[i]: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                                 "support": int(s[i]), "threshold": float(thresholds[i])}
                      for i in range(y_true.shape[1])},
    }


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """MAE, RMSE and R² of predicted values.

    Example:
        >>> m = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))
        >>> round(m["mae"], 4), round(m["r2"], 4)
        (0.3333, 0.5)
    """
    from sklearn import metrics as skm

    y_true = np.asarray(y_true, dtype=float).ravel()
    y_pred = np.asarray(y_pred, dtype=float).ravel()
    finite = np.isfinite(y_pred)
    if not finite.all():  # a diverged model: say so instead of failing in sklearn
        return {"n": int(len(y_true)), "mae": None, "rmse": None, "r2": None, "non_finite_predictions": int((~finite).sum())}
    return {
        "n": int(len(y_true)),
        "mae": float(skm.mean_absolute_error(y_true, y_pred)),
        "rmse": float(np.sqrt(skm.mean_squared_error(y_true, y_pred))),
        "r2": float(skm.r2_score(y_true, y_pred)) if len(y_true) > 1 else None,
    }


def bootstrap_se(kind: str, y_true: np.ndarray, output: np.ndarray, resamples: int = 200, seed: int = 0) -> float | None:
    """Standard error of the primary metric: its spread over bootstrap resamples of the test rows.

    It measures how much the figure would move on another test split of the same
    size: two models closer than about twice it are not told apart by this test split.
    A resample is a vector of multiplicities, and each metric is computed from them in
    one vectorized pass (ROC AUC by the rank-sum formula, ties counted half, as
    scikit-learn does), so 200 resamples of 4,000 rows take milliseconds.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> y = rng.integers(0, 2, 400)
        >>> se = bootstrap_se("binary", y, np.clip(y * 0.3 + rng.uniform(0, 0.7, 400), 0, 1))
        >>> 0.005 < se < 0.05
        True
    """
    y_true, output = np.asarray(y_true), np.asarray(output)
    n = len(y_true)
    if n < 2:
        return None
    rng = np.random.default_rng(seed)
    score = _weighted_scorer(kind, y_true, output)
    values = [v for v in (score(np.bincount(rng.integers(0, n, n), minlength=n).astype(float))
                          for _ in range(resamples)) if v is not None]
    return float(np.std(values, ddof=1)) if len(values) > 1 else None


def _weighted_scorer(kind: str, y_true: np.ndarray, output: np.ndarray):
    """`score(weights)`: the primary metric with each row counted `weights[i]` times (None when undefined)."""
    if kind == "regression":
        y, p = y_true.astype(float), np.asarray(output, dtype=float).ravel()
        if not np.isfinite(p).all():
            return lambda w: None

        def r2(w: np.ndarray) -> float | None:
            total = w.sum()
            mean = (w * y).sum() / total
            ss_tot = (w * (y - mean) ** 2).sum()
            return float(1 - (w * (y - p) ** 2).sum() / ss_tot) if ss_tot > 0 else None
        return r2
    if kind == "multilabel":  # micro F1 of the decisions at 0.5 (the spread, not the value, is what is wanted)
        truth, pred = y_true.astype(bool), np.asarray(output, dtype=float).reshape(y_true.shape) >= 0.5
        tp, fp, fn = ((truth & pred).sum(axis=1), (~truth & pred).sum(axis=1), (truth & ~pred).sum(axis=1))

        def micro_f1(w: np.ndarray) -> float | None:
            hits = 2 * (w * tp).sum()
            total = hits + (w * fp).sum() + (w * fn).sum()
            return float(hits / total) if total > 0 else None
        return micro_f1
    if kind == "binary":
        scores = np.asarray(output, dtype=float).ravel()
        levels, group = np.unique(scores, return_inverse=True)  # tied scores share a group
        positive = y_true.astype(int) == 1

        def auc(w: np.ndarray) -> float | None:
            pos = np.bincount(group, weights=w * positive, minlength=len(levels))
            neg = np.bincount(group, weights=w * ~positive, minlength=len(levels))
            n_pos, n_neg = pos.sum(), neg.sum()
            if n_pos == 0 or n_neg == 0:
                return None
            below = np.cumsum(neg) - neg  # negatives scored strictly lower than each group
            return float((pos * (below + 0.5 * neg)).sum() / (n_pos * n_neg))
        return auc
    y, pred = y_true.astype(int), np.asarray(output).argmax(axis=1)
    k = int(max(y.max(), pred.max())) + 1
    hit = y == pred

    def balanced(w: np.ndarray) -> float | None:
        support = np.bincount(y, weights=w, minlength=k)
        correct = np.bincount(y, weights=w * hit, minlength=k)
        present = support > 0
        return float(np.mean(correct[present] / support[present])) if present.sum() > 1 else None
    return balanced


def verdict(results: Mapping[str, Mapping[str, Any]], primary: str, model: str = "keras") -> list[str]:
    """Plain sentences on a comparison table: the best model, and whether `model` beats the trivial baseline.

    The trivial baseline is `majority` (classification) or `mean` (regression);
    "beats" means by more than twice `model`'s bootstrap standard error (`primary_se`).

    Example:
        >>> verdict({"majority": {"roc_auc": 0.5}, "keras": {"roc_auc": 0.52, "primary_se": 0.03},
        ...          "logistic_regression": {"roc_auc": 0.61}}, "roc_auc")[1]
        'keras (0.5200) does not beat the majority baseline (0.5000) by more than its noise (2 x bootstrap SE = 0.0600): it has learned little or nothing from these features.'
    """
    scored = {k: float(v[primary]) for k, v in results.items() if v.get(primary) is not None}
    lines = []
    if scored:
        best = max(scored, key=lambda k: scored[k])
        lines.append(f"Best model on the test split by {primary}: {best} ({scored[best]:.4f}).")
    reference = next((k for k in ("majority", "mean") if k in scored), None)
    if model not in results:
        return lines
    if model not in scored:
        lines.append(f"{model} could not be scored by {primary} on this test split.")
    elif reference is not None:
        gain, noise = scored[model] - scored[reference], 2 * float(results[model].get("primary_se") or 0.0)
        if gain <= noise:
            lines.append(f"{model} ({scored[model]:.4f}) does not beat the {reference} baseline ({scored[reference]:.4f}) "
                         f"by more than its noise (2 x bootstrap SE = {noise:.4f}): it has learned little or nothing "
                         "from these features.")
        else:
            lines.append(f"{model} beats the {reference} baseline by {gain:.4f} {primary} "
                         f"(noise: 2 x bootstrap SE = {noise:.4f}).")
    return lines


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_confusion_matrix(cm: Sequence[Sequence[int]], class_names: Sequence[str], path: str | Path | None,
                          title: str = "Confusion matrix") -> Any:
    """Seaborn heatmap of a confusion matrix, coloured by row share (recall), annotated with counts.

    Readable to about 20 classes: the figure grows with the class count, long
    names are shortened, and past 10 classes cells show the percentage only
    (past 20 the colour alone).
    """
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
    names = [str(c) if len(str(c)) <= 14 else str(c)[:13] + "…" for c in class_names]
    side = 4.0 if n <= 2 else min(4.0 + 0.45 * n, 14.0)
    fig, ax = plt.subplots(figsize=(side + 0.5, side))
    sns.heatmap(pct, annot=annot, fmt="", cmap="Blues", vmin=0, vmax=1, cbar=True, square=n > 2,
                annot_kws={"fontsize": 9 if n <= 10 else 7}, xticklabels=names, yticklabels=names, ax=ax)
    if n > 2:
        ax.tick_params(axis="x", labelrotation=90)
        ax.tick_params(axis="y", labelrotation=0)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, path)


#: The metrics `[evaluate] threshold = "auto"` can choose a binary decision threshold for.
THRESHOLD_METRICS = ("accuracy", "balanced_accuracy", "f1")
#: The candidate thresholds: a grid fine enough for any split kmodels validates on.
THRESHOLD_GRID = np.round(np.linspace(0.01, 0.99, 99), 2)


def plot_per_label(per_label: Mapping[str, Mapping[str, Any]], path: str | Path | None, title: str = "Per label") -> Any:
    """Precision, recall and F1 of each label of a multi-label model (bars), with its support in the tick label."""
    plt = pyplot()
    names = list(per_label)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(names) + 2), 4))
    for i, metric in enumerate(("precision", "recall", "f1")):
        ax.bar(x + (i - 1) * 0.27, [per_label[n][metric] for n in names], width=0.27, label=metric)
    ax.set_xticks(x, [f"{n}\n(n={per_label[n]['support']})" for n in names])
    ax.set_ylim(0, 1.05)
    ax.set_title(title)
    ax.legend(loc="lower right")
    return save_figure(fig, path)


def threshold_curve(y_true: np.ndarray, proba: np.ndarray, metric: str) -> np.ndarray:
    """`metric` (one of `THRESHOLD_METRICS`) of the decisions `proba >= t` for every `t` in `THRESHOLD_GRID`."""
    from sklearn import metrics as skm

    if metric not in THRESHOLD_METRICS:
        raise ValueError(f"Received metric={metric!r}. Expected one of {', '.join(THRESHOLD_METRICS)}.")
    y_true = np.asarray(y_true).astype(int).ravel()
    proba = np.asarray(proba, dtype=float).ravel()
    score = {"accuracy": skm.accuracy_score, "balanced_accuracy": skm.balanced_accuracy_score,
             "f1": lambda y, p: skm.f1_score(y, p, zero_division=0)}[metric]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # balanced accuracy on a split with one class warns
        return np.array([score(y_true, (proba >= t).astype(int)) for t in THRESHOLD_GRID])


def choose_threshold(y_true: np.ndarray, proba: np.ndarray, metric: str = "balanced_accuracy") -> float:
    """The decision threshold that maximises `metric` on (validation) labels and probabilities.

    Of equally good thresholds the one nearest 0.5 is taken, so a flat curve keeps the usual
    decision. With a single class in `y_true` nothing can be learned and 0.5 is returned.

    Example:
        >>> y = np.array([0, 0, 0, 0, 1, 1])
        >>> p = np.array([0.1, 0.2, 0.3, 0.35, 0.4, 0.45])
        >>> choose_threshold(y, p, "accuracy")  # 0.36-0.40 all separate the classes: the one nearest 0.5
        0.4
    """
    y_true = np.asarray(y_true).astype(int).ravel()
    if len(np.unique(y_true)) < 2:
        return 0.5
    curve = threshold_curve(y_true, proba, metric)
    best = np.flatnonzero(np.isclose(curve, curve.max()))
    return float(THRESHOLD_GRID[best[np.argmin(np.abs(THRESHOLD_GRID[best] - 0.5))]])


def fit_temperature(y_true: np.ndarray, proba: np.ndarray) -> float:
    """The temperature T that minimises the log loss of `proba` rescaled as softmax(log p / T) (binary: sigmoid).

    Guo et al. (2017), "On Calibration of Modern Neural Networks": one scalar fitted on the
    validation split; it changes no decision, only how sure the probabilities are.
    `proba` is (n,) for binary (of class 1) or (n, N). Searched in [0.05, 20] on a log scale.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> y = rng.integers(0, 2, 2000)
        >>> overconfident = np.where(y == 1, 0.99, 0.01); overconfident[:400] = 1 - overconfident[:400]
        >>> fit_temperature(y, overconfident) > 1  # too sure: softened
        True
    """
    from scipy.optimize import minimize_scalar

    y_true = np.asarray(y_true).astype(int).ravel()
    proba = np.clip(np.asarray(proba, dtype=float), 1e-7, 1 - 1e-7)
    logits = np.log(proba) - np.log1p(-proba) if proba.ndim == 1 else np.log(proba)

    def nll(log_t: float) -> float:
        z = logits / np.exp(log_t)
        if z.ndim == 1:
            return float(np.mean(np.logaddexp(0.0, z) - y_true * z))
        z = z - z.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(z)), y_true]))

    result = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(result.x))


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


class _Scored:
    """The adapter scikit-learn's `permutation_importance` needs: something it may call `fit` on (a no-op)
    whose predictions on a raw frame the scoring callable reads."""

    def __init__(self, predict_output: Any) -> None:
        self.predict_output = predict_output

    def fit(self, *args: Any, **kwargs: Any) -> _Scored:
        return self


def permutation_importances(predict_output: Any, frame: Any, y: np.ndarray, score: Any, *, repeats: int = 5,
                            seed: int = 0, max_rows: int = 5000) -> dict[str, Any]:
    """Permutation importance of each raw column of `frame` (scikit-learn's `permutation_importance`).

    Args:
        predict_output: raw rows (a DataFrame) → the model's output, through the run's preprocessing.
        frame: the rows to score on (the test split), only feature columns.
        y: their labels.
        score: `(y, output) → float`, higher is better (the run's primary metric).
        repeats: shuffles per column; the importance is the mean drop of `score`, with its std.
        max_rows: a larger `frame` is scored on this many rows drawn at random (with `seed`).

    Returns:
        `{"rows", "repeats", "baseline", "features": {column: {"mean", "std"}}}`, columns in
        decreasing importance.
    """
    from sklearn.inspection import permutation_importance

    if len(frame) > max_rows:
        keep = np.sort(np.random.default_rng(seed).choice(len(frame), max_rows, replace=False))
        frame, y = frame.iloc[keep], np.asarray(y)[keep]
    result = permutation_importance(_Scored(predict_output), frame, y, n_repeats=repeats, random_state=seed,
                                    scoring=lambda est, x, yy: score(yy, est.predict_output(x)))
    order = np.argsort(-result.importances_mean, kind="stable")
    return {"rows": int(len(frame)), "repeats": repeats, "baseline": float(score(y, predict_output(frame))),
            "features": {str(frame.columns[i]): {"mean": round(float(result.importances_mean[i]), 6),
                                                 "std": round(float(result.importances_std[i]), 6)} for i in order}}


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


def fingerprint(frame: Any) -> str:
    """A short content hash of a table's rows (values and column names, not the index).

    Saved with a run (`metrics.json` `data_fingerprint`), so `evaluate` can tell when the data it
    re-reads is not the data the run was scored on (edited labels, a replaced file).

    Example:
        >>> import pandas as pd
        >>> a = pd.DataFrame({"x": [1, 2], "y": ["a", "b"]})
        >>> fingerprint(a) == fingerprint(a.copy()), fingerprint(a) == fingerprint(a.assign(y=["a", "c"]))
        (True, False)
    """
    import hashlib

    import pandas as pd

    digest = hashlib.sha256("\x1f".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


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


def markdown_text(value: Any) -> str:
    """`value` as inert text inside markdown: one line, no table breaks, no HTML.

    Data (column names, cell values, file names) goes through this before it
    lands in `eda.md` or `report.md`, so a header such as `a|b<script>` cannot
    break a table or inject markup.

    Example:
        >>> markdown_text("a|b\\n<i>c</i>")
        'a\\\\|b &lt;i&gt;c&lt;/i&gt;'
    """
    text = " ".join(str(value).splitlines()) if value is not None else ""
    for raw, safe in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("|", "\\|"), ("`", "\\`")):
        text = text.replace(raw, safe)
    return text


def spreadsheet_safe(frame: Any) -> Any:
    """A copy of a DataFrame whose text cells cannot run as spreadsheet formulas (the OWASP rule).

    A text cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return gets
    a leading `'`, unless the whole cell is a number (a class label `-1` stays
    `-1`: a spreadsheet reads it as the number it is, and runs nothing). Applied
    to every CSV kmodels writes from data it did not make (prediction files).

    Example:
        >>> import pandas as pd
        >>> frame = pd.DataFrame({"label": ["=cmd|' -C calc'!A0", "-1", "+2.5e3", "a"], "p": [-0.5, 1.0, 0.1, 0.2]})
        >>> spreadsheet_safe(frame)["label"].tolist()
        ["'=cmd|' -C calc'!A0", '-1', '+2.5e3', 'a']
    """
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or str(out[column].dtype).startswith("str"):
            out[column] = [f"'{v}" if isinstance(v, str) and v[:1] in _FORMULA_STARTS and not _is_number(v) else v
                           for v in out[column]]
    return out


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _is_number(text: str) -> bool:
    """Whether `text` is exactly a decimal number (no spaces, no formula characters after the sign)."""
    return _NUMBER.fullmatch(text) is not None


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A plain-text table (markdown pipe style) of `rows`; text cells are escaped (`markdown_text`)."""
    def cell(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.4f}"
        return markdown_text(v)

    body = [[cell(r.get(c)) for c in columns] for r in rows]
    header = [markdown_text(c) for c in columns]
    widths = [max(len(c), *(len(b[i]) for b in body)) if body else len(c) for i, c in enumerate(header)]
    line = lambda vals: "| " + " | ".join(v.ljust(w) for v, w in zip(vals, widths, strict=True)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), sep, *(line(b) for b in body)])
