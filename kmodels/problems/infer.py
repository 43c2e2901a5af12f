"""`infer_problem`: the problem a target column poses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from kmodels.errors import ConfigError, DataError
from kmodels.problems.base import KINDS, LABEL_SEP, MAX_CLASSES, MAX_DISCRETE_LEVELS, Problem, _plain
from kmodels.problems.multilabel import MultilabelProblem


def _sorted_values(values: Sequence[Any]) -> list[Any]:
    if all(isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool) for v in values):
        return sorted(values)
    return sorted(values, key=str)


def infer_problem(values: pd.Series, problem: str = "auto", classes: Sequence[Any] | None = None, *,
                  column: str | None = None, source: str = "<data>", sep: str = LABEL_SEP) -> Problem:
    """Decide the problem type from the target column, or check the one asked for.

    Text holding label sets joined by `sep` (`"a|c"`, on at least 1% of the rows) →
    multi-label; two distinct values → binary; text, booleans or at most `MAX_DISCRETE_LEVELS`
    whole numbers → multiclass; other numbers → regression. `classes` names the
    classes (labels) to keep, in label order (binary: negative first); rows with other
    values are dropped later by cleaning.

    Args:
        values: the target column (missing values are ignored).
        problem: `"auto"`, `"binary"`, `"multiclass"`, `"multilabel"` or `"regression"`.
        classes: the class values to keep, in order; `None` takes every distinct value, sorted.
        column: the target's name, for messages.
        source: where the data came from, for messages.
        sep: what joins the labels of a multi-label row.

    Raises:
        DataError: a target that cannot be learned (one value, all missing, text for
            regression, more than `MAX_CLASSES` classes), naming the column and the fix.

    Example:
        >>> infer_problem(pd.Series([0.5, 1.25, 3.0, 7.5] * 10)).kind
        'regression'
        >>> infer_problem(pd.Series([1, 2, 3, 1]), problem="regression").reason
        'data.problem = "regression" in the spec'
    """
    name = repr(column) if column else "the target"
    if problem not in ("auto", *KINDS):
        raise ConfigError(f"Received data.problem={problem!r}. Expected 'auto', {', '.join(map(repr, KINDS))}.")
    present = values.dropna()
    if isinstance(present.dtype, pd.CategoricalDtype):
        present = present.astype(present.cat.categories.dtype)
    if present.empty:
        raise DataError(f"{source}: target {name} has no values (every row is missing). "
                        "Pick another column with --set data.target=COLUMN.")
    numeric = pd.api.types.is_numeric_dtype(present) and not pd.api.types.is_bool_dtype(present)
    if problem == "multilabel" or (problem == "auto" and not numeric and sep
                                   and present.astype(str).str.contains(sep, regex=False).mean() >= 0.01):
        return _multilabel(present, classes, name, source, sep, problem)
    distinct = present.unique()
    fractional = numeric and not np.all(np.mod(distinct.astype(float), 1) == 0)
    if problem == "regression" or (problem == "auto" and classes is None and numeric
                                   and (len(distinct) > MAX_DISCRETE_LEVELS or fractional)):
        if not numeric:
            numbers = pd.to_numeric(present, errors="coerce")
            bad = present[numbers.isna()].astype(str).unique()[:5].tolist()
            raise DataError(f"{source}: target {name} holds text ({bad}) but data.problem is 'regression'. "
                            "Use a numeric column, or set data.problem = \"multiclass\" to predict categories.")
        if len(distinct) < 2:
            raise DataError(f"{source}: target {name} has one value ({_plain(distinct[0])!r}); nothing to learn.")
        why = ('data.problem = "regression" in the spec' if problem == "regression"
               else f"numeric target with {len(distinct)} distinct values (> {MAX_DISCRETE_LEVELS})"
               if len(distinct) > MAX_DISCRETE_LEVELS else "numeric target with fractional values")
        return Problem("regression", (), why)
    if classes is not None:
        kept = list(classes)
        missing = [c for c in kept if c not in set(distinct.tolist())]
        if missing:
            shown = ", ".join(map(repr, _sorted_values(distinct.tolist())[:10]))
            raise DataError(f"{source}: data.classes names {missing}, not found in target {name}; "
                            f"its values include {shown}.")
    else:
        kept = _sorted_values(distinct.tolist())
    if len(kept) < 2:
        raise DataError(f"{source}: target {name} has only one class ({kept[0]!r} on {len(present)} rows); "
                        "a classifier needs at least two. Check the column (--set data.target=COLUMN) or the data.")
    if len(kept) > MAX_CLASSES:
        raise DataError(f"{source}: target {name} has {len(kept)} distinct values, more than {MAX_CLASSES} classes: "
                        "it looks like an identifier or free text. Pick another column (--set data.target=COLUMN), "
                        'or set data.problem = "regression" if it is a number.')
    kind = problem if problem != "auto" else ("binary" if len(kept) == 2 else "multiclass")
    if kind == "binary" and len(kept) != 2:
        shown = ", ".join(map(repr, kept[:10])) + (" ..." if len(kept) > 10 else "")
        raise DataError(f"{source}: data.problem is 'binary' but target {name} has {len(kept)} classes: {shown}. "
                        "Name the two to keep with --set data.classes='[\"NEG\", \"POS\"]', or drop data.problem.")
    if kind == "multiclass" and len(kept) == 2:
        kind = "binary"  # two classes are a binary problem whatever was asked
    if problem != "auto":
        why = f'data.problem = "{problem}" in the spec'
    elif classes is not None:
        why = f"data.classes names {len(kept)} classes"
    elif numeric:
        why = f"numeric target with {len(kept)} distinct whole values (<= {MAX_DISCRETE_LEVELS})"
    else:
        why = f"{len(kept)} distinct {'values' if len(kept) == 2 else 'labels'}"
    return Problem(kind, tuple(_plain(c) for c in kept), why)


def _multilabel(present: pd.Series, classes: Sequence[Any] | None, name: str, source: str, sep: str,
                asked: str) -> Problem:
    probe = MultilabelProblem("multilabel", ("_", "__"), sep=sep)
    seen = sorted({label for labels in probe.split(present) for label in labels})
    if classes is not None:
        kept = [str(c) for c in classes]
        missing = [c for c in kept if c not in seen]
        if missing:
            raise DataError(f"{source}: data.classes names {missing}, not among the labels of target {name} "
                            f"({seen[:10]}).")
    else:
        kept = seen
    if len(kept) < 2:
        raise DataError(f"{source}: target {name} holds {len(kept)} label(s) ({kept}); a multi-label problem needs "
                        "at least two. Check the column and data.label_sep.")
    if len(kept) > MAX_CLASSES:
        raise DataError(f"{source}: target {name} holds {len(kept)} distinct labels, more than {MAX_CLASSES}.")
    why = ('data.problem = "multilabel" in the spec' if asked == "multilabel"
           else f"label sets joined by {sep!r} ({len(kept)} labels)")
    return Problem("multilabel", tuple(kept), why, sep)
