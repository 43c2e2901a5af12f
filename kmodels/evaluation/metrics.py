"""Test metrics per problem kind, their bootstrap noise, the verdict, decision thresholds, calibration and
permutation importance."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
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
        (0.8, 0.5, 0.0)
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


#: The metrics `[evaluate] threshold = "auto"` can choose a binary decision threshold for.
THRESHOLD_METRICS = ("accuracy", "balanced_accuracy", "f1")


#: The candidate thresholds: a grid fine enough for any split kmodels validates on.
THRESHOLD_GRID = np.round(np.linspace(0.01, 0.99, 99), 2)


def threshold_curve(y_true: np.ndarray, proba: np.ndarray, metric: str) -> np.ndarray:
    """`metric` (one of `THRESHOLD_METRICS`) of the decisions `proba >= t` for every `t` in `THRESHOLD_GRID`.

    The same figures as scikit-learn's `accuracy_score`, `balanced_accuracy_score` (the mean recall of the
    classes `y_true` holds) and `f1_score(zero_division=0)` at each threshold, from one sort of each class's
    probabilities rather than 99 calls: on a multi-label run that is per label.

    Example:
        >>> threshold_curve(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.4, 0.9]), "accuracy")[[9, 49, 69]].tolist()
        [0.5, 0.5, 0.75]
    """
    if metric not in THRESHOLD_METRICS:
        raise ValueError(f"Received metric={metric!r}. Expected one of {', '.join(THRESHOLD_METRICS)}.")
    y_true = np.asarray(y_true).astype(int).ravel()
    proba = np.asarray(proba, dtype=float).ravel()
    positives, negatives = np.sort(proba[y_true == 1]), np.sort(proba[y_true != 1])
    p, n = len(positives), len(negatives)
    tp = p - np.searchsorted(positives, THRESHOLD_GRID, side="left")  # positives with proba >= t
    fp = n - np.searchsorted(negatives, THRESHOLD_GRID, side="left")
    if metric == "accuracy":
        return (tp + n - fp) / max(p + n, 1)
    if metric == "f1":
        denominator = 2 * tp + fp + (p - tp)
        return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)
    recalls = [r for r, present in ((tp / max(p, 1), p), ((n - fp) / max(n, 1), n)) if present]
    return np.mean(recalls, axis=0) if recalls else np.zeros(len(THRESHOLD_GRID))


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
