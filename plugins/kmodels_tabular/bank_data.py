"""The bank customer data: the loader for the published file and a synthetic twin.

The Kaggle "Bank Customer Segmentation (1M+ Transactions)" file
`bank_transactions.csv` has 1,048,567 rows and the columns in `COLUMNS`. It
cannot be downloaded here, so `bank_synthetic` writes rows with the same
columns, formats and quirks, and reads them back through the same loader.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from kmodels.api import DataError, Table, atomic_write, read_csv, registry, to_category
from kmodels_tabular.dates import format_day_first

logger = logging.getLogger("kmodels")

TARGET = "CustGender"
GROUP = "CustomerID"
NUMERIC = ("CustAccountBalance", "TransactionTime", "TransactionAmount (INR)")
#: Text columns with few distinct values (dates, gender, city), held as categoricals.
CATEGORICAL = ("CustomerDOB", "CustGender", "CustLocation", "TransactionDate")
COLUMNS = ("TransactionID", "CustomerID", "CustomerDOB", "CustGender", "CustLocation",
           "CustAccountBalance", "TransactionDate", "TransactionTime", "TransactionAmount (INR)")
PLACEHOLDER_DOB = "1/1/1800"

_CITIES = ("MUMBAI", "NEW DELHI", "BANGALORE", "GURGAON", "DELHI", "NOIDA", "CHENNAI", "PUNE",
           "HYDERABAD", "THANE", "KOLKATA", "AHMEDABAD", "NAVI MUMBAI", "JAIPUR", "LUCKNOW", "CHANDIGARH")


def has_bank_schema(columns: list[str] | pd.Index) -> bool:
    """True if `columns` are the published file's columns (any order)."""
    return set(COLUMNS) <= {str(c).strip() for c in columns}


def read_bank_frame(source: str | Path | io.StringIO, name: str = "bank_transactions.csv") -> tuple[pd.DataFrame, list[str]]:
    """Read the bank export with the right dtypes; return the frame and notes.

    Text columns stay text (IDs like `C5841053`, dates like `10/1/94`); the
    low-cardinality ones (`CATEGORICAL`: dates, gender, city) are held as
    categoricals, so each distinct string is hashed once here and everything
    after (EDA counts, cleaning, splits, date parsing, encoding) works on codes.
    Non-numeric garbage in a numeric column is read as missing and reported
    in the notes (with up to three example values), never silently.
    """
    def read(dtype: object) -> pd.DataFrame:
        kwargs = {"dtype": dtype, "keep_default_na": True, "na_values": [""]}
        if isinstance(source, io.StringIO):
            source.seek(0)
            return pd.read_csv(source, **kwargs)
        return read_csv(source, **kwargs)

    try:  # fast path: numeric columns parse as numbers
        frame = read({c: (float if c in NUMERIC else str) for c in COLUMNS})
    except (ValueError, TypeError):  # garbage in a numeric column: read as text, report below
        frame = read(str)
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            f"{name}: missing column(s) {missing}; the bank_transactions loader expects {list(COLUMNS)}. "
            "For another table use the generic path: `kmodels run tabular --data FILE --set data.target=COLUMN`."
        )
    notes = []
    for col in NUMERIC:
        raw = frame[col]
        if pd.api.types.is_numeric_dtype(raw):
            continue
        num = pd.to_numeric(raw, errors="coerce")
        bad = num.isna() & raw.notna()
        if bad.any():
            examples = ", ".join(repr(v) for v in raw[bad].unique()[:3])
            notes.append(f"{col}: {int(bad.sum())} non-numeric value(s) ({examples}) read as missing")
            logger.warning("%s: %s", name, notes[-1])
        frame[col] = num
    for col in CATEGORICAL:
        frame[col] = to_category(frame[col])
    return frame, notes


def generate_bank_frame(rows: int = 20000, seed: int = 0) -> pd.DataFrame:
    """Synthetic rows in the published file's format, with its quirks.

    Quirks reproduced: day-first dates with two-digit (and ~10% four-digit)
    years, the `1/1/1800` placeholder on ~6% of DOBs, missing values in
    CustomerDOB, CustGender, CustLocation and CustAccountBalance, a few `T`
    genders, unpadded HHMMSS times, zero amounts and balances, repeated
    customers and ~0.5% exact duplicate rows. About 72% of customers are `M`.

    The planted gender signal is modest: women are on average a little older,
    bank at slightly different hours, hold smaller balances, spend somewhat
    different amounts and are over-represented in some cities.
    """
    if rows < 1:
        raise DataError(f"Received rows={rows}. Expected a positive number of rows.")
    rng = np.random.default_rng(seed)
    n_dup = int(rows * 0.005)
    base = rows - n_dup
    n_cust = max(1, int(base * 0.8))
    female = rng.random(n_cust) < 0.28
    age = np.clip(rng.normal(31 + 2.5 * female, 7.0), 18, 90)
    n_cities = max(20, min(9000, n_cust // 10))
    city_names = np.array(list(_CITIES) + [f"TOWN {i:04d}" for i in range(n_cities - len(_CITIES))], dtype=object)
    popularity = 1.0 / np.arange(1, n_cities + 1) ** 1.1
    city = rng.choice(n_cities, size=n_cust, p=popularity / popularity.sum())
    # some cities lean female: shift a fraction of women into a set of "female-leaning" towns
    lean = rng.random(n_cust) < 0.25
    city = np.where(female & lean, (city * 7 + 3) % max(1, n_cities // 3), city)
    balance = np.exp(rng.normal(9.6 - 0.45 * female, 1.6))
    balance[rng.random(n_cust) < 0.01] = 0.0
    cust_ids = rng.choice(np.arange(1_000_000, 9_999_999), size=n_cust, replace=False)

    cust = rng.integers(0, n_cust, size=base)  # customers repeat
    txn_day = pd.Timestamp("2016-08-01") + pd.to_timedelta(rng.integers(0, 77, size=base), unit="D")
    dob = txn_day - pd.to_timedelta((age[cust] * 365.25).astype(int), unit="D")
    hour = np.clip(rng.normal(14 - 1.5 * female[cust], 4.5), 0, 23).astype(int)
    time = hour * 10000 + rng.integers(0, 60, base) * 100 + rng.integers(0, 60, base)
    amount = np.round(np.exp(rng.normal(6.6 + 0.3 * female[cust], 1.5)), 2)
    amount[rng.random(base) < 0.002] = 0.0

    dob_text = format_day_first(pd.Series(dob), four_digit=rng.random(base) < 0.10)
    dob_text[rng.random(base) < 0.06] = PLACEHOLDER_DOB
    dob_text[rng.random(base) < 0.0032] = None
    gender = np.where(female[cust], "F", "M").astype(object)
    gender[rng.random(base) < 0.001] = None
    gender[rng.random(base) < 0.00005] = "T"
    location = city_names[city[cust]].copy()
    location[rng.random(base) < 0.00015] = None
    bal = np.round(balance[cust], 2).astype(object)
    bal[rng.random(base) < 0.0023] = None

    frame = pd.DataFrame({
        "TransactionID": [f"T{i}" for i in range(1, base + 1)],
        "CustomerID": [f"C{c}" for c in cust_ids[cust]],
        "CustomerDOB": dob_text,
        "CustGender": gender,
        "CustLocation": location,
        "CustAccountBalance": bal,
        "TransactionDate": format_day_first(pd.Series(txn_day)),
        "TransactionTime": time,
        "TransactionAmount (INR)": amount,
    })
    if n_dup:
        frame = pd.concat([frame, frame.iloc[rng.integers(0, base, n_dup)]], ignore_index=True)
        frame = frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)
    return frame


def write_bank_csv(path: str | Path, rows: int = 20000, seed: int = 0) -> Path:
    """Write `generate_bank_frame(rows, seed)` as a CSV file in the published format."""

    return atomic_write(Path(path), generate_bank_frame(rows, seed).to_csv(index=False))


@registry.datasets.register("bank_transactions")
def bank_transactions(path: str, target: str = TARGET, classes: tuple[str, str] = ("M", "F")) -> Table:
    """The published `bank_transactions.csv` (Kaggle "Bank Customer Segmentation").

    Reads the file as published: text IDs and day-first dates, numeric
    balance/time/amount (garbage read as missing and reported). Predicts `F`
    (class 1) vs `M` (class 0); other values (missing, `T`) are removed by the
    `keep_classes` step and counted.

    Args:
        path: the CSV file.
        target: the column to predict.
        classes: negative and positive class values.

    Example:
        >>> from kmodels_tabular.bank_data import write_bank_csv
        >>> import tempfile, pathlib
        >>> p = write_bank_csv(pathlib.Path(tempfile.mkdtemp()) / "bank.csv", rows=50)
        >>> bank_transactions(str(p)).frame.shape
        (50, 9)
    """
    frame, notes = read_bank_frame(path, name=str(path))
    return Table(frame, target=target, classes=tuple(classes), group=GROUP, source=str(path), notes=notes)


@registry.datasets.register("bank_synthetic")
def bank_synthetic(rows: int = 20000, seed: int = 0, target: str = TARGET,
                   classes: tuple[str, str] = ("M", "F")) -> Table:
    """Deterministic synthetic bank transactions (the embedded default data).

    Same columns, formats and quirks as the published file; rows are written
    to CSV text and read back through the real loader.

    Args:
        rows: number of rows (including the planted duplicates).
        seed: the data's own seed (the same seed gives the same rows).
        target: the column to predict.
        classes: negative and positive class values.

    Example:
        >>> t = bank_synthetic(rows=100)
        >>> t.frame.shape, t.group
        ((100, 9), 'CustomerID')
    """
    text = generate_bank_frame(rows, seed).to_csv(index=False)
    frame, notes = read_bank_frame(io.StringIO(text), name="bank_synthetic")
    return Table(frame, target=target, classes=tuple(classes), group=GROUP,
                 source=f"bank_synthetic(rows={rows}, seed={seed})", notes=notes)
