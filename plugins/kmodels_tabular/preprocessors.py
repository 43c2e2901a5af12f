"""Tabular feature steps: scikit-learn estimators that take and return DataFrames, fitted on the training split.

Conventions (scikit-learn's): `__init__` only stores its arguments; `fit`
validates, learns state in attributes ending in `_` and returns `self`;
`transform` before `fit` raises `NotFittedError`; `get_params`/`set_params`
and `sklearn.base.clone` work. Inputs are never modified in place. The row
filters that run on the whole table before the split (`drop_duplicates`,
`drop_missing`) are in `kmodels_tabular.row_filters`.
"""

from __future__ import annotations

import logging
from typing import ClassVar, Literal

import numpy as np
import pandas as pd

from kmodels.api import DataError, graph, registry
from kmodels_tabular._steps import Step, as_frame, non_numeric, require_columns, require_graph_columns, require_numeric
from kmodels_tabular.dates import day_first_days

logger = logging.getLogger("kmodels")


# ---- feature steps (fitted on the training split) -----------------------------------------------
@registry.preprocessors.register("drop_columns")
class DropColumns(Step):
    """Drop the named columns (those absent are ignored).

    Example:
        >>> import pandas as pd
        >>> DropColumns(["a"]).fit_transform(pd.DataFrame({"a": [1], "b": [2]})).columns.tolist()
        ['b']
    """

    def __init__(self, columns: list[str] = ()) -> None:  # noqa: B006
        self.columns = columns

    def fit(self, x: pd.DataFrame, y: object = None) -> DropColumns:
        x = as_frame(x, "drop_columns")
        self.columns_ = [c for c in self.columns if c in x.columns]
        return self

    def transform(self, x: pd.DataFrame) -> pd.DataFrame:
        return self._check(x).drop(columns=self.columns_, errors="ignore")

    def to_graph(self, columns: dict[str, graph.Column]) -> dict[str, graph.Column]:
        return {c: v for c, v in columns.items() if c not in self.columns_}


@registry.preprocessors.register("bank_features")
class BankFeatures(Step):
    """Features of a bank transaction row: age, time of day, weekday, log amounts.

    From the published columns it derives `age` (years at the transaction,
    two-digit birth years put in the right century, `1/1/1800` and ages
    outside [min_age, max_age] as missing), `hour`, `weekday`, `log_amount`,
    `log_balance`, `zero_balance`, and keeps `CustLocation` for an encoder.
    IDs and raw dates are dropped. Missing inputs give missing features (an
    imputer step follows).

    Args:
        min_age: youngest plausible customer age.
        max_age: oldest plausible customer age.

    Example:
        >>> from kmodels_tabular.bank_data import generate_bank_frame
        >>> BankFeatures().fit_transform(generate_bank_frame(20)).columns.tolist()
        ['age', 'hour', 'weekday', 'log_amount', 'log_balance', 'zero_balance', 'CustLocation']
    """

    INPUTS: ClassVar[tuple[str, ...]] = ("CustomerDOB", "TransactionDate", "TransactionTime",
                                         "TransactionAmount (INR)", "CustAccountBalance", "CustLocation")

    def __init__(self, min_age: float = 0.0, max_age: float = 100.0) -> None:
        self.min_age = min_age
        self.max_age = max_age

    def fit(self, x: pd.DataFrame, y: object = None) -> BankFeatures:
        x = as_frame(x, "bank_features")
        require_columns(x, list(self.INPUTS), "bank_features")
        if not self.min_age < self.max_age:
            raise DataError(f"bank_features: received min_age={self.min_age}, max_age={self.max_age}; expected min_age < max_age.")
        self.feature_names_ = ["age", "hour", "weekday", "log_amount", "log_balance", "zero_balance", "CustLocation"]
        return self

    def transform(self, x: pd.DataFrame) -> pd.DataFrame:
        x = self._check(x)
        require_columns(x, list(self.INPUTS), "bank_features")
        txn = day_first_days(x["TransactionDate"])  # datetime64[D] arrays
        dob = day_first_days(x["CustomerDOB"], reference=txn)
        no_txn = np.isnat(txn)
        age = np.where(no_txn | np.isnat(dob), np.nan, (txn - dob).astype("int64")) / 365.25
        with np.errstate(invalid="ignore"):
            age[(age < self.min_age) | (age > self.max_age)] = np.nan
        time = pd.to_numeric(x["TransactionTime"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        hour = np.floor(time / 10000)
        hour[(hour < 0) | (hour > 23)] = np.nan
        amount = pd.to_numeric(x["TransactionAmount (INR)"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        balance = pd.to_numeric(x["CustAccountBalance"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        return pd.DataFrame({  # copy=False: the columns stay separate arrays, not copied into one block
            "age": age,
            "hour": hour,
            "weekday": np.where(no_txn, np.nan, (txn.astype("int64") + 3) % 7),  # 1970-01-01 was a Thursday (3)
            "log_amount": np.log1p(np.clip(amount, 0, None)),
            "log_balance": np.log1p(np.clip(balance, 0, None)),
            "zero_balance": np.where(np.isnan(balance), np.nan, (balance == 0).astype(float)),
            "CustLocation": x["CustLocation"].array,  # text or categorical, as it came
        }, index=x.index, copy=False)

    def to_graph(self, columns: dict[str, graph.Column]) -> dict[str, graph.Column]:
        missing = [c for c in self.INPUTS if c not in columns]
        if missing:
            raise DataError(f"bank_features: column(s) {missing} not among its inputs {list(columns)[:20]}.")
        _, _, weekday, txn = graph.date_parts(graph.as_string(columns["TransactionDate"]))
        dob = graph.date_parts(graph.as_string(columns["CustomerDOB"]), reference=txn)[3]
        age = (txn - dob) / 365.25
        age = graph.where(graph.either(graph.compare(age, "lt", self.min_age), graph.compare(age, "gt", self.max_age)),
                          np.nan, age)
        hour = graph.floor(graph.as_number(columns["TransactionTime"]) / 10000)
        hour = graph.where(graph.either(graph.compare(hour, "lt", 0), graph.compare(hour, "gt", 23)), np.nan, hour)
        amount = graph.as_number(columns["TransactionAmount (INR)"])
        balance = graph.as_number(columns["CustAccountBalance"])
        known = graph.compare(balance, "eq", balance)  # False only for NaN
        return {"age": age, "hour": hour, "weekday": weekday,
                "log_amount": graph.log1p(graph.maximum(amount, 0.0)),
                "log_balance": graph.log1p(graph.maximum(balance, 0.0)),
                "zero_balance": graph.where(known, graph.to_float(graph.compare(balance, "eq", 0.0)), np.nan),
                "CustLocation": columns["CustLocation"]}


@registry.preprocessors.register("frequency_encode")
class FrequencyEncode(Step):
    """Replace high-cardinality categoricals by their frequency in the training split.

    No target information is used, so nothing leaks. Missing values count as
    their own category; values unseen in training get frequency 0.

    Args:
        columns: the columns to encode; `None` encodes every non-numeric column.

    Example:
        >>> import pandas as pd
        >>> enc = FrequencyEncode(["city"]).fit(pd.DataFrame({"city": ["A", "A", "B", "C"]}))
        >>> enc.transform(pd.DataFrame({"city": ["A", "Z"]}))["city_freq"].tolist()
        [0.5, 0.0]
    """

    def __init__(self, columns: list[str] | None = None) -> None:
        self.columns = columns

    def fit(self, x: pd.DataFrame, y: object = None) -> FrequencyEncode:
        x = as_frame(x, "frequency_encode")
        cols = list(self.columns) if self.columns is not None else non_numeric(x)
        require_columns(x, cols, "frequency_encode")
        self.frequencies_ = {c: {("<missing>" if pd.isna(k) else k): float(v) for k, v in
                                 x[c].value_counts(normalize=True, dropna=False).items()} for c in cols}
        return self

    def transform(self, x: pd.DataFrame) -> pd.DataFrame:
        x = self._check(x)
        out = x.drop(columns=list(self.frequencies_))
        for c, freq in self.frequencies_.items():
            # Look up each distinct value once (a dict lookup per row costs ~10x more on 1M rows).
            codes, uniques = pd.factorize(x[c], use_na_sentinel=True)
            table = np.array([freq.get(u, 0.0) for u in uniques] + [freq.get("<missing>", 0.0)], dtype=float)
            out[f"{c}_freq"] = table[codes]
        return out

    def to_graph(self, columns: dict[str, graph.Column]) -> dict[str, graph.Column]:
        out = {c: v for c, v in columns.items() if c not in self.frequencies_}
        for c, freq in self.frequencies_.items():
            known = {str(k): v for k, v in freq.items() if k != "<missing>"}
            out[f"{c}_freq"] = graph.lookup(graph.as_string(columns[c]), known, 0.0, missing=freq.get("<missing>", 0.0))
        return out


@registry.preprocessors.register("one_hot")
class OneHot(Step):
    """One-hot encode low-cardinality categoricals; unseen values encode as all zeros.

    Args:
        columns: the columns; `None` encodes every non-numeric column.
        max_categories: the most frequent categories kept per column; the rest
            share an `other` column.

    Example:
        >>> import pandas as pd
        >>> OneHot(["c"]).fit_transform(pd.DataFrame({"c": ["x", "y", "x"]})).columns.tolist()
        ['c=x', 'c=y']
    """

    def __init__(self, columns: list[str] | None = None, max_categories: int = 20) -> None:
        self.columns = columns
        self.max_categories = max_categories

    def fit(self, x: pd.DataFrame, y: object = None) -> OneHot:
        x = as_frame(x, "one_hot")
        if self.max_categories < 1:
            raise DataError(f"one_hot: received max_categories={self.max_categories}; expected >= 1.")
        cols = list(self.columns) if self.columns is not None else non_numeric(x)
        require_columns(x, cols, "one_hot")
        self.categories_ = {}
        self.other_ = {}
        for c in cols:
            counts = x[c].astype(object).fillna("<missing>").astype(str).value_counts()
            self.categories_[c] = counts.index[: self.max_categories].tolist()
            self.other_[c] = counts.index[self.max_categories:].tolist()  # seen in training, not kept
        return self

    def transform(self, x: pd.DataFrame) -> pd.DataFrame:
        x = self._check(x)
        out = x.drop(columns=list(self.categories_))
        for c, cats in self.categories_.items():
            values = x[c].astype(object).fillna("<missing>").astype(str).to_numpy()
            for cat in cats:
                out[f"{c}={cat}"] = (values == cat).astype(float)
            if self.other_[c]:
                out[f"{c}=other"] = np.isin(values, self.other_[c]).astype(float)
        return out

    def to_graph(self, columns: dict[str, graph.Column]) -> dict[str, graph.Column]:
        out = {c: v for c, v in columns.items() if c not in self.categories_}
        for c, cats in self.categories_.items():
            text = graph.as_string(columns[c])
            groups = [(f"{c}={cat}", [cat]) for cat in cats] + ([(f"{c}=other", self.other_[c])] if self.other_[c] else [])
            for name, members in groups:  # a missing value is the category "<missing>"
                out[name] = graph.lookup(text, dict.fromkeys(members, 1.0), 0.0,
                                         missing=1.0 if "<missing>" in members else 0.0)
        return out


@registry.preprocessors.register("impute")
class Impute(Step):
    """Fill missing and infinite numeric values with the training median (or mean), adding indicators.

    `inf` and `-inf` (a division by zero upstream) count as missing: they are
    excluded from the statistics and filled like NaN.

    Args:
        strategy: `"median"` or `"mean"` of the training split.
        add_indicator: add a `<column>_missing` 0/1 column for every column that
            had missing values in training.

    Example:
        >>> import pandas as pd
        >>> Impute().fit_transform(pd.DataFrame({"a": [1.0, None, 3.0]})).to_dict("list")
        {'a': [1.0, 2.0, 3.0], 'a_missing': [0.0, 1.0, 0.0]}
    """

    def __init__(self, strategy: Literal["median", "mean"] = "median", add_indicator: bool = True) -> None:
        self.strategy = strategy
        self.add_indicator = add_indicator

    def fit(self, x: pd.DataFrame, y: object = None) -> Impute:
        x = as_frame(x, "impute")
        if self.strategy not in ("median", "mean"):
            raise DataError(f"impute: received strategy={self.strategy!r}; expected 'median' or 'mean'.")
        num = [c for c in x.columns if pd.api.types.is_numeric_dtype(x[c])]
        finite = x[num].astype(float).replace([np.inf, -np.inf], np.nan)
        stats = finite.median() if self.strategy == "median" else finite.mean()
        self.statistics_ = {c: float(v) if np.isfinite(v) else 0.0 for c, v in stats.items()}
        self.indicators_ = [c for c in num if finite[c].isna().any()] if self.add_indicator else []
        return self

    def transform(self, x: pd.DataFrame) -> pd.DataFrame:
        x = self._check(x)
        out = x.copy(deep=False)  # columns are replaced, never edited: `x` stays as it was
        values = {c: pd.to_numeric(x[c], errors="coerce").astype(float).replace([np.inf, -np.inf], np.nan)
                  for c in self.statistics_ if c in x}
        for c in self.indicators_:
            out[f"{c}_missing"] = values[c].isna().astype(float) if c in values else 1.0
        for c, v in self.statistics_.items():
            if c in values:
                out[c] = values[c].fillna(v)
        return out

    def to_graph(self, columns: dict[str, graph.Column]) -> dict[str, graph.Column]:
        out = dict(columns)
        numbers = {c: graph.as_number(columns[c]) for c in self.statistics_ if c in columns}
        for c, v in self.statistics_.items():
            if c in numbers:
                out[c] = graph.where(graph.is_missing(numbers[c]), v, numbers[c])
        for c in self.indicators_:
            out[f"{c}_missing"] = graph.to_float(graph.is_missing(numbers[c])) if c in numbers else graph.const(1.0)
        return out


@registry.preprocessors.register("standard_scale")
class StandardScale(Step):
    """Standardise every numeric column with the training mean and standard deviation.

    Constant columns are centred and left unscaled. Non-numeric columns are an
    error: encode them first.

    Example:
        >>> import pandas as pd
        >>> StandardScale().fit_transform(pd.DataFrame({"a": [1.0, 3.0]}))["a"].tolist()
        [-1.0, 1.0]
    """

    def fit(self, x: pd.DataFrame, y: object = None) -> StandardScale:
        x = as_frame(x, "standard_scale")
        require_numeric(x, "standard_scale")
        self.columns_ = list(x.columns)
        mean, scale = np.zeros(len(self.columns_)), np.ones(len(self.columns_))
        for i, c in enumerate(self.columns_):
            values = x[c].to_numpy(dtype=float)
            if len(values):
                # After an imputer there is no NaN: the plain reductions skip the nan* copies of the column.
                has_nan = np.isnan(values).any()
                mean[i] = np.nanmean(values) if has_nan else values.mean()
                scale[i] = np.nanstd(values) if has_nan else values.std()
        self.scale_ = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        self.mean_ = np.where(np.isfinite(mean), mean, 0.0)
        return self

    def transform(self, x: pd.DataFrame) -> pd.DataFrame:
        x = self._check(x)
        require_columns(x, self.columns_, "standard_scale")
        # Column by column into a frame of separate columns: no (rows x columns) block is allocated here;
        # the one matrix is made once, by whoever needs it.
        columns = {c: (x[c].to_numpy(dtype=float) - m) / s for c, m, s in zip(self.columns_, self.mean_, self.scale_, strict=True)}
        return pd.DataFrame(columns, index=x.index, copy=False)

    def to_graph(self, columns: dict[str, graph.Column]) -> dict[str, graph.Column]:
        require_graph_columns(columns, self.columns_, "standard_scale")
        return {c: (graph.as_number(columns[c]) - m) / s for c, m, s in zip(self.columns_, self.mean_, self.scale_,
                                                                             strict=True)}


def __getattr__(name: str):
    """`AutoFeatures` lived here until it got its own module: preprocessing files saved then name this path."""
    if name in ("AutoFeatures", "ID_RATIO"):
        from kmodels_tabular import auto_features

        return getattr(auto_features, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
