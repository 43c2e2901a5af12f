"""The generic CSV dataset: any table plus the name of its target column."""

from __future__ import annotations

import logging

import pandas as pd

from kmodels import registry
from kmodels.data import Table
from kmodels.data.csv import read_csv

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
def csv(path: str, target: str, classes: tuple[str, str] | None = None, group: str | None = None,
        sep: str = ",") -> Table:
    """Any CSV file with a two-class target column.

    Identifier-like columns (text, unique per row) are dropped with a note;
    column types are inferred later by the `auto_features` step.

    Args:
        path: the CSV file.
        target: the column to predict (`--set data.target=COLUMN`).
        classes: negative and positive class; default: the two values, sorted.
        group: a column whose values must not cross splits.
        sep: the field delimiter.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
        >>> _ = p.write_text("x,y\\n1,a\\n2,b\\n")
        >>> csv(str(p), target="y").resolved_classes()
        ('a', 'b')
    """
    frame = read_csv(path, sep=sep)
    table = Table(frame, target=target, classes=tuple(classes) if classes else None, group=group, source=str(path))
    keep = {target} | ({group} if group else set())
    ids = identifier_columns(frame, keep)
    if ids:
        note = f"dropped identifier-like column(s) {ids} (text, unique per row)"
        logger.info("%s: %s", path, note)
        table.notes.append(note)
        table.frame = frame.drop(columns=ids)
    values = table.frame[target].dropna().unique()
    if len(values) < 2:
        from kmodels.errors import DataError

        raise DataError(f"{path}: target {target!r} has only {len(values)} class(es) {list(values)}; "
                        "binary classification needs two.")
    return table
