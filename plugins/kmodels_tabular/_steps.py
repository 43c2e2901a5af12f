"""What every tabular preprocessor shares: the DataFrame check and the scikit-learn estimator base."""

from __future__ import annotations

from typing import ClassVar

import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from kmodels.api import DataError


def as_frame(x: object, who: str) -> pd.DataFrame:
    if not isinstance(x, pd.DataFrame):
        raise TypeError(f"{who} expects a pandas DataFrame; received {type(x).__name__}.")
    return x


def require_columns(x: pd.DataFrame, columns: list[str] | tuple[str, ...], who: str) -> None:
    missing = [c for c in columns if c not in x.columns]
    if missing:
        raise DataError(f"{who}: column(s) {missing} not in the table. Columns: {list(x.columns)}.")


def non_numeric(x: pd.DataFrame) -> list[str]:
    return [c for c in x.columns if not (pd.api.types.is_numeric_dtype(x[c]) or pd.api.types.is_bool_dtype(x[c]))]


def require_numeric(x: pd.DataFrame, who: str) -> None:
    bad = non_numeric(x)
    if bad:
        raise DataError(f"{who}: columns {bad} are not numeric; add one_hot or frequency_encode before it.")


def require_graph_columns(columns: dict, wanted: list[str], who: str) -> None:
    """`to_graph`'s check that every column a fitted step reads is among the graph columns it is given."""
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise DataError(f"{who}: column(s) {missing} not among its inputs {list(columns)[:20]}.")


class Step(TransformerMixin, BaseEstimator):
    drops_rows: ClassVar[bool] = False

    def _check(self, x: object) -> pd.DataFrame:
        check_is_fitted(self)
        return as_frame(x, type(self).__name__)
