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


class Step(TransformerMixin, BaseEstimator):
    drops_rows: ClassVar[bool] = False

    def _check(self, x: object) -> pd.DataFrame:
        check_is_fitted(self)
        return as_frame(x, type(self).__name__)
