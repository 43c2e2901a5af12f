"""Permutation importance of a model's raw input columns, computed in stacked batches.

Example:
    >>> import numpy as np, pandas as pd
    >>> from kmodels.evaluation import permutation_importances
    >>> frame = pd.DataFrame({"a": np.arange(50.0), "b": np.zeros(50)})
    >>> result = permutation_importances(lambda rows: rows["a"].to_numpy(), frame, frame["a"].to_numpy() > 24,
    ...                                  lambda y, out: float(np.mean((out > 24) == y)), repeats=2)
    >>> result["features"]["b"]
    {'mean': 0.0, 'std': 0.0}
"""

from __future__ import annotations

from typing import Any

import numpy as np

BATCH_CELLS = 2**24  # stacked cells per prediction call: 128 MiB of float64, whatever the table's width
#: `importance_rows`' budget: rows x repeats x columns x columns. Each shuffled column is a copy of every row
#: predicted across the table's width, so the work grows with the square of the columns.
CELL_BUDGET = 2**26
MIN_ROWS = 200  # fewer rows than this and the importances are mostly noise
MAX_ROWS = 5000  # the test rows scored at most, on any table


def importance_rows(columns: int, repeats: int, *, max_rows: int = MAX_ROWS) -> int:
    """How many rows a permutation importance of `columns` columns scores on, for a bounded cost.

    `max_rows` on tables of up to about 50 columns (5 repeats); fewer on wider ones, so that rows x repeats x
    columns**2 stays within `CELL_BUDGET` (2**26), but never fewer than `MIN_ROWS` (200). Measured on a
    10,000 x 300 table: 2,000 test rows took about 4 of a run's 5 minutes; 200 take a tenth of that.

    Example:
        >>> importance_rows(15, 5), importance_rows(64, 5), importance_rows(300, 5), importance_rows(300, 1)
        (5000, 3276, 200, 745)
    """
    if columns < 1 or repeats < 1:
        return max_rows
    return int(min(max_rows, max(MIN_ROWS, CELL_BUDGET // (repeats * columns * columns))))


def permutation_importances(predict_output: Any, frame: Any, y: np.ndarray, score: Any, *, repeats: int = 5,
                            seed: int = 0, max_rows: int = MAX_ROWS, batch_rows: int = 100_000) -> dict[str, Any]:
    """Permutation importance of each raw column of `frame` (Breiman 2001; scikit-learn's
    `permutation_importance`, computed in batches).

    Each column is shuffled `repeats` times and the drop of `score` from the unshuffled rows' is its
    importance. The shuffled copies are stacked and predicted together, `batch_rows` rows a call,
    rather than one call a copy: on a 64-column table that is 3 predictions instead of 321, and the
    per-call cost of a Keras `predict` and of the preprocessing dominated the whole run before (on
    scikit-learn's digits as a 64-column table, 55 s of a 70 s run; 1.2 s now).

    Args:
        predict_output: raw rows (a DataFrame) → the model's output, one row per row, through the run's
            preprocessing.
        frame: the rows to score on (the test split), only feature columns.
        y: their labels.
        score: `(y, output) → float`, higher is better (the run's primary metric).
        repeats: shuffles per column; the importance is the mean drop of `score`, with its std.
        max_rows: a larger `frame` is scored on this many rows drawn at random (with `seed`).
        batch_rows: at most this many stacked rows per call of `predict_output`, and at most `BATCH_CELLS`
            (2**24) cells: memory. The shuffles are drawn batch by batch, so a wide table never holds
            all of them.

    Returns:
        `{"rows", "repeats", "baseline", "features": {column: {"mean", "std"}}}`, columns in
        decreasing importance.

    Example:
        >>> import numpy as np, pandas as pd
        >>> rng = np.random.default_rng(0)
        >>> frame = pd.DataFrame({"signal": rng.normal(size=200), "noise": rng.normal(size=200)})
        >>> y = (frame["signal"] > 0).to_numpy()
        >>> accuracy = lambda labels, output: float(np.mean((output > 0) == labels))
        >>> result = permutation_importances(lambda rows: rows["signal"].to_numpy(), frame, y, accuracy)
        >>> list(result["features"]), result["features"]["noise"]["mean"]
        (['signal', 'noise'], 0.0)
    """
    import pandas as pd

    if repeats < 1 or batch_rows < 1:
        raise ValueError(f"Received repeats={repeats}, batch_rows={batch_rows}. Expected both >= 1.")
    if len(frame) > max_rows:
        keep = np.sort(np.random.default_rng(seed).choice(len(frame), max_rows, replace=False))
        frame, y = frame.iloc[keep], np.asarray(y)[keep]
    frame = frame.reset_index(drop=True)
    n, columns = len(frame), frame.shape[1]

    def predicted(rows: Any) -> np.ndarray:
        output = np.asarray(predict_output(rows))
        if len(output) != len(rows):
            raise ValueError(f"predict_output returned {len(output)} rows for {len(rows)}; "
                             "it must keep every row, in order.")
        return output

    baseline = float(score(y, predicted(frame)))
    rng = np.random.default_rng(seed)
    jobs = [j for j in range(columns) for _ in range(repeats)]  # column j, `repeats` times in a row
    drops = np.empty(len(jobs))
    per_call = max(1, min(batch_rows, BATCH_CELLS // max(columns, 1)) // max(n, 1))
    for start in range(0, len(jobs), per_call):
        part = jobs[start:start + per_call]
        copies = []
        for j in part:  # each batch draws its own orders, in job order: the same draws whatever the batch size
            copy = frame.copy(deep=False)
            copy.isetitem(j, frame.iloc[:, j].array.take(rng.permutation(n)))  # keeps the dtype (categories too)
            copies.append(copy)
        output = predicted(pd.concat(copies, ignore_index=True))
        del copies
        for k in range(len(part)):
            drops[start + k] = baseline - float(score(y, output[k * n:(k + 1) * n]))
    drops = drops.reshape(columns, repeats)
    means, stds = drops.mean(axis=1), drops.std(axis=1)
    order = np.argsort(-means, kind="stable")
    return {"rows": int(n), "repeats": repeats, "baseline": baseline,
            "features": {str(frame.columns[i]): {"mean": round(float(means[i]), 6),
                                                 "std": round(float(stds[i]), 6)} for i in order}}
