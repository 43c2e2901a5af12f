"""`auto_features`: the tabular task's first step, which infers each column's type and makes numeric features.

Until 2026-12 it lived in `kmodels_tabular.preprocessors`; a run's `preprocessor.skops` saved then names
that path, which still resolves and is trusted (`AutoFeatures.former_paths`).
"""

from __future__ import annotations

import logging
from typing import ClassVar

import pandas as pd

from kmodels.api import graph, registry
from kmodels_tabular._steps import Step, as_frame, require_columns
from kmodels_tabular.dates import date_order, parse_day_first
from kmodels_tabular.preprocessors import FrequencyEncode, OneHot

logger = logging.getLogger("kmodels")

#: `auto_features` takes a text column whose distinct values are more than this share of its rows for an identifier.
ID_RATIO = 0.5


@registry.preprocessors.register("auto_features")
class AutoFeatures(Step):
    """Infer column types of any table and make numeric features of them.

    Numeric columns pass through; date-like text columns become year, month
    and weekday (day-first `d/m/y` unless every value reads only month-first,
    decided from all training values: `date_orders_`); categoricals with at most `max_one_hot` values are one-hot
    encoded and the others frequency encoded, except identifiers: text columns whose distinct values
    outnumber `ID_RATIO` of their rows (a transaction or customer id), which give no feature (a
    frequency map of them would be as large as the column, and say little). The inferred types are
    kept in `kinds_` (and logged).

    Args:
        max_one_hot: the most distinct values a categorical may have to be one-hot encoded.

    Example:
        >>> import pandas as pd
        >>> f = pd.DataFrame({"n": [1, 2], "c": ["a", "b"], "d": ["1/2/2020", "3/4/2021"]})
        >>> AutoFeatures().fit(f).kinds_
        {'n': 'numeric', 'c': 'one_hot', 'd': 'date'}
    """

    #: where the class was importable before: preprocessing files saved then name it so (kept trusted)
    former_paths: ClassVar[tuple[str, ...]] = ("kmodels_tabular.preprocessors.AutoFeatures",)

    def __init__(self, max_one_hot: int = 20) -> None:
        self.max_one_hot = max_one_hot

    def fit(self, x: pd.DataFrame, y: object = None) -> AutoFeatures:
        x = as_frame(x, "auto_features")
        kinds = {}
        self.date_orders_: dict[str, str] = {}
        for c in x.columns:
            col = x[c]
            if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
                kinds[c] = "numeric"
                continue
            present = col.dropna()
            order = date_order(present) if len(present) else "day_first"
            if len(present) and parse_day_first(present.head(200), month_first=order == "month_first").notna().mean() >= 0.9:
                kinds[c] = "date"
                self.date_orders_[c] = order
            elif len(present) and pd.to_numeric(present, errors="coerce").notna().mean() >= 0.95:
                kinds[c] = "numeric"
            else:
                distinct = col.nunique(dropna=False)
                if distinct > self.max_one_hot and distinct > ID_RATIO * len(present):
                    kinds[c] = "id"  # most values once: an identifier, no feature (its encoding: a map of every row)
                else:
                    kinds[c] = "one_hot" if distinct <= self.max_one_hot else "frequency"
        self.kinds_ = kinds
        logger.info("auto_features: %s", _summary(kinds, self.date_orders_))
        one_hot = [c for c, k in kinds.items() if k == "one_hot"]
        freq = [c for c, k in kinds.items() if k == "frequency"]
        self.one_hot_ = OneHot(one_hot, max_categories=self.max_one_hot).fit(x[one_hot]) if one_hot else None
        self.frequency_ = FrequencyEncode(freq).fit(x[freq]) if freq else None
        return self

    def transform(self, x: pd.DataFrame) -> pd.DataFrame:
        x = self._check(x)
        require_columns(x, list(self.kinds_), "auto_features")
        parts = []
        for c, kind in self.kinds_.items():
            if kind == "numeric":
                parts.append(pd.to_numeric(x[c], errors="coerce").astype(float).rename(c))
            elif kind == "date":
                d = parse_day_first(x[c], month_first=getattr(self, "date_orders_", {}).get(c) == "month_first")
                d.index = x.index
                parts += [d.dt.year.astype(float).rename(f"{c}_year"), d.dt.month.astype(float).rename(f"{c}_month"),
                          d.dt.day_of_week.astype(float).rename(f"{c}_weekday")]
        out = pd.concat(parts, axis=1) if parts else pd.DataFrame(index=x.index)
        for enc in (self.one_hot_, self.frequency_):
            if enc is not None:
                cols = list(getattr(enc, "categories_", None) or enc.frequencies_)
                out = pd.concat([out, enc.transform(x[cols])], axis=1)
        return out

    def to_graph(self, columns: dict[str, graph.Column]) -> dict[str, graph.Column]:
        out: dict[str, graph.Column] = {}
        for c, kind in self.kinds_.items():
            if kind == "numeric":
                out[c] = graph.as_number(columns[c])
            elif kind == "date":
                year, month, weekday, _ = graph.date_parts(graph.as_string(columns[c]),
                                                           month_first=self.date_orders_.get(c) == "month_first")
                out.update({f"{c}_year": year, f"{c}_month": month, f"{c}_weekday": weekday})
        for enc in (self.one_hot_, self.frequency_):
            if enc is not None:
                cols = list(getattr(enc, "categories_", None) or enc.frequencies_)
                out.update(enc.to_graph({c: columns[c] for c in cols}))
        return out


def _summary(kinds: dict[str, str], date_orders: dict[str, str], shown: int = 8) -> str:
    """The inferred kinds for the log, grouped by kind, at most `shown` column names each (a 300-column
    table made a 5,000-character line); the fitted step keeps every column's in `kinds_`.

    Example:
        >>> _summary({"a": "numeric", "b": "numeric", "d": "date", "c": "one_hot"}, {"d": "month_first"})
        '2 numeric (a, b); 1 date (d (month-first)); 1 one_hot (c)'
        >>> _summary({f"x{i}": "numeric" for i in range(10)}, {}, shown=3)
        '10 numeric (x0, x1, x2 and 7 more)'
    """
    groups: dict[str, list[str]] = {}
    for column, kind in kinds.items():
        groups.setdefault(kind, []).append(
            f"{column} ({date_orders[column].replace('_', '-')})" if kind == "date" else str(column))
    parts = []
    for kind, names in groups.items():
        more = f" and {len(names) - shown} more" if len(names) > shown else ""
        parts.append(f"{len(names)} {kind} ({', '.join(names[:shown])}{more})")
    return "; ".join(parts)
