"""The generic CSV dataset: any table plus the name of its target column."""

from __future__ import annotations

import logging
import re
from typing import Literal

import pandas as pd

from kmodels.api import Table, read_csv, registry

logger = logging.getLogger("kmodels")


#: Column names that say "identifier": `id`, `CustomerId`, `customer_id`, `RowNumber`, `row_no`, `index`, `key`.
ID_NAME = re.compile(r"(^|[_\s.-])(id|ids|number|no|num|nr|index|idx|key)$", re.IGNORECASE)
ID_CAMEL = re.compile(r"[a-z0-9](Id|ID|Ids|IDs|Number|No|Num|Nr|Index|Idx|Key)$")  # CustomerId, not "paid"


def identifier_columns(frame: pd.DataFrame, keep: set[str]) -> list[str]:
    """Columns that identify rows instead of describing them: useless as features, harmful to generalization.

    - text whose every value is distinct (`C1010011`);
    - whole numbers, every value distinct, named like an identifier (`CustomerId`,
      `RowNumber`, `order_id`) or running through a consecutive range (1, 2, ..., n
      in any order: a row number under any name).

    A column of distinct measurements (prices, balances) is kept: it is neither named
    nor shaped like a counter.

    Example:
        >>> f = pd.DataFrame({"RowNumber": range(1, 31), "CustomerId": [15634602 + 7 * i for i in range(30)],
        ...                   "Balance": [1000 + i * 13 for i in range(30)], "y": [0, 1] * 15})
        >>> identifier_columns(f, {"y"})
        ['RowNumber', 'CustomerId']
    """
    out = []
    if len(frame) < 20:
        return out
    for c in frame.columns:
        values = frame[c].dropna()
        if c in keep or len(values) != len(frame) or not values.is_unique:
            continue
        if not pd.api.types.is_numeric_dtype(values):
            out.append(c)
        elif pd.api.types.is_integer_dtype(values) and not pd.api.types.is_bool_dtype(values):
            consecutive = int(values.max()) - int(values.min()) + 1 == len(values)
            if consecutive or ID_NAME.search(str(c)) or ID_CAMEL.search(str(c)):
                out.append(c)
    return out


@registry.datasets.register("csv")
def csv(path: str, target: str, classes: list[str] | None = None, group: str | None = None,
        sep: str = ",", problem: Literal["auto", "binary", "multiclass", "multilabel", "regression"] = "auto",
        encoding: str = "utf-8", label_sep: str = "|") -> Table:
    """Any CSV file and the name of the column to predict (binary, multiclass, multi-label or regression).

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
        problem: `"auto"` (inferred), `"binary"`, `"multiclass"`, `"multilabel"` or `"regression"`.
        encoding: the file's text encoding (`"latin-1"`, `"cp1252"`, ...).
        label_sep: what joins the labels of a multi-label target (`"a|c"`: a row with labels a and c).

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
                  problem=problem, label_sep=label_sep)
    keep = {target} | ({group} if group else set())
    ids = identifier_columns(frame, keep)
    if ids:
        note = f"dropped identifier-like column(s) {ids} (unique per row: text, or whole numbers named or shaped like an ID)"
        logger.info("%s: %s", path, note)
        table.notes.append(note)
        table.frame = frame.drop(columns=ids)
    table.problem_type()  # a target nothing can be learned from fails here, naming the column
    return table
