"""The generic CSV dataset: any table plus the name of its target column."""

from __future__ import annotations

import logging
from typing import Literal

import pandas as pd

from kmodels.api import Table, read_csv, registry

logger = logging.getLogger("kmodels")


def identifier_columns(frame: pd.DataFrame, keep: set[str]) -> list[str]:
    """Text columns whose every non-missing value is distinct (row IDs): useless as features."""
    out = []
    for c in frame.columns:
        if c in keep or pd.api.types.is_numeric_dtype(frame[c]) or len(frame) < 20:
            continue
        values = frame[c].dropna()
        if len(values) == len(frame) and values.is_unique:
            out.append(c)
    return out


@registry.datasets.register("csv")
def csv(path: str, target: str, classes: list[str] | None = None, group: str | None = None,
        sep: str = ",", problem: Literal["auto", "binary", "multiclass", "regression"] = "auto",
        encoding: str = "utf-8") -> Table:
    """Any CSV file and the name of the column to predict (binary, multiclass or regression).

    Identifier-like columns (text, unique per row) are dropped with a note;
    column types are inferred later by the `auto_features` step. The problem
    type is inferred from the target (see `kmodels.problems.infer_problem`).

    Args:
        path: the CSV file.
        target: the column to predict (`--set data.target=COLUMN`).
        classes: the classes to keep, in label order (binary: negative first);
            default: every value, sorted. Rows of other classes are dropped.
        group: a column whose values must not cross splits.
        sep: the field delimiter.
        problem: `"auto"` (inferred), `"binary"`, `"multiclass"` or `"regression"`.
        encoding: the file's text encoding (`"latin-1"`, `"cp1252"`, ...).

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
        >>> _ = p.write_text("x,y\\n1,a\\n2,b\\n3,c\\n")
        >>> t = csv(str(p), target="y")
        >>> t.problem_type().kind, t.resolved_classes()
        ('multiclass', ('a', 'b', 'c'))
    """
    frame = read_csv(path, sep=sep, encoding=encoding)
    table = Table(frame, target=target, classes=tuple(classes) if classes else None, group=group, source=str(path),
                  problem=problem)
    keep = {target} | ({group} if group else set())
    ids = identifier_columns(frame, keep)
    if ids:
        note = f"dropped identifier-like column(s) {ids} (text, unique per row)"
        logger.info("%s: %s", path, note)
        table.notes.append(note)
        table.frame = frame.drop(columns=ids)
    table.problem_type()  # a target nothing can be learned from fails here, naming the column
    return table
