"""Vectorised parsing of day-first dates with two- or four-digit years.

The bank export writes dates as `d/m/yy` (`10/1/94`), sometimes `d/m/yyyy`,
and uses `1/1/1800` as a "no date" placeholder. A naive `pd.to_datetime`
reads `4/4/57` as 2057; here a two-digit year is put in the latest century
that does not place the date after a reference date (the transaction date for
a birth date), so any birth date within 100 years before the transaction
parses back exactly.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

#: Years before this are placeholders (`1/1/1800`), read as missing.
MIN_YEAR = 1900


#: `d/m/yy`, `d/m/yyyy` (also `-` or `.` between the parts) or ISO `yyyy-mm-dd`, blanks around allowed;
#: ASCII digits only.
_DATE = re.compile(r"\s*(?:([0-9]{1,2})[/.-]([0-9]{1,2})[/.-]([0-9]{2}|[0-9]{4})"
                   r"|([0-9]{4})-([0-9]{1,2})-([0-9]{1,2}))\s*")


def _unique_parts(values: np.ndarray) -> np.ndarray:
    """(day, month, year, two-digit) rows for distinct strings; NaN where a string is not a date.

    A plain loop with one compiled regex: on the bank file's 25k distinct birth
    dates it is ~5x faster than pandas' `str.extract` (two calls, a frame each).
    """
    out = np.full((len(values), 4), np.nan)
    for i, value in enumerate(values):
        match = _DATE.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            continue
        day, month, year, iso_year, iso_month, iso_day = match.groups()
        if day is not None:
            out[i] = (int(day), int(month), int(year), len(year) == 2)
        else:
            out[i] = (int(iso_day), int(iso_month), int(iso_year), ISO)
    return out


#: The marker in the fourth column of the parts of an ISO date (never day/month-swapped).
ISO = 2


def date_order(values: pd.Series) -> str:
    """`"month_first"` when the dates can only be read so (a second part above 12, a first never), else `"day_first"`.

    Decided from every distinct value, not a sample: in US `m/d/yyyy` dates the first
    day above 12 may come late in a file, and reading the rows before it day-first
    would swap day and month silently.

    Example:
        >>> import pandas as pd
        >>> date_order(pd.Series(["1/2/2020", "3/4/2021", "12/25/2021"])), date_order(pd.Series(["25/12/2021", "1/2/20"]))
        ('month_first', 'day_first')
    """
    uniques = pd.Series(values).dropna().unique()
    parts = _unique_parts(np.asarray(uniques, dtype=object)) if len(uniques) else np.empty((0, 4))
    dmy = parts[(parts[:, 3] != ISO) & np.isfinite(parts[:, 0])]
    first_big, second_big = bool((dmy[:, 0] > 12).any()), bool((dmy[:, 1] > 12).any())
    return "month_first" if second_big and not first_big else "day_first"


def _assemble(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """`datetime64[D]` dates from float parts with NumPy datetime arithmetic; invalid parts give NaT."""
    y, m, d = (np.asarray(a, dtype=float) for a in (year, month, day))
    with np.errstate(invalid="ignore"):
        ok = (np.isfinite(y) & np.isfinite(m) & np.isfinite(d) & (m >= 1) & (m <= 12) & (d >= 1)
              & (y >= 1) & (y <= 9999))
    months = np.where(ok, (y - 1970) * 12 + (m - 1), 0).astype("int64").astype("datetime64[M]")
    start = months.astype("datetime64[D]")
    length = ((months + 1).astype("datetime64[D]") - start).astype("int64")
    ok &= np.where(ok, d, 0) <= length
    dates = start + np.where(ok, d - 1, 0).astype("int64").astype("timedelta64[D]")
    return np.where(ok, dates, np.datetime64("NaT", "D"))


def _as_days(reference: pd.Series | np.ndarray | pd.Timestamp | None, n: int) -> np.ndarray:
    today = np.datetime64(pd.Timestamp.today().normalize().date(), "D")
    if reference is None:
        return np.full(n, today)
    if isinstance(reference, np.ndarray) and reference.dtype.kind == "M":
        ref = reference.astype("datetime64[D]")
    elif isinstance(reference, pd.Series):
        ref = pd.to_datetime(reference, errors="coerce").to_numpy().astype("datetime64[D]")
    else:
        ref = np.full(n, np.datetime64(pd.Timestamp(reference).date(), "D"))
    return np.where(np.isnat(ref), today, ref)


def parse_day_first(values: pd.Series, reference: pd.Series | pd.Timestamp | None = None,
                    month_first: bool = False) -> pd.Series:
    """Parse `d/m/yy`, `d/m/yyyy` (or ISO `yyyy-mm-dd`) strings into timestamps.

    Each distinct string is parsed once, and dates are computed per distinct
    string and century; per row there is only a lookup and one comparison
    with the reference. Text and categorical Series are both accepted.

    Args:
        values: the date strings; anything unparseable becomes `NaT`.
        reference: a date (or one per row) that a two-digit year must not
            exceed: `20/5/57` is 1957 when the reference is in 2016. Default:
            today.
        month_first: read `m/d/yy` instead (US order; see `date_order`). ISO dates
            are read as ISO either way.

    Returns:
        A `datetime64` Series; placeholders (years before 1900) are `NaT`.

    Example:
        >>> import pandas as pd
        >>> parse_day_first(pd.Series(["4/4/57", "10/1/1994", "1/1/1800"]), pd.Timestamp("2016-08-02")).dt.year.tolist()
        [1957.0, 1994.0, nan]
    """
    values = pd.Series(values)
    return pd.Series(day_first_days(values, reference, month_first).astype("datetime64[ns]"), index=values.index)


def day_first_days(values: pd.Series, reference: pd.Series | np.ndarray | pd.Timestamp | None = None,
                   month_first: bool = False) -> np.ndarray:
    """`parse_day_first` as a NumPy `datetime64[D]` array (no Series, no nanoseconds); `reference` may be one too.

    Example:
        >>> import pandas as pd
        >>> day_first_days(pd.Series(["4/4/57", None]), pd.Timestamp("2016-08-02")).tolist()
        [datetime.date(1957, 4, 4), None]
    """
    codes, uniques = pd.factorize(pd.Series(values), use_na_sentinel=True)
    day, month, year, kind = _unique_parts(np.asarray(uniques, dtype=object)).T
    if month_first:
        day, month = np.where(kind == ISO, day, month), np.where(kind == ISO, month, day)
    two_digit = kind
    two_digit = np.append(two_digit == 1, False)  # the extra last entry is what code -1 (missing) picks
    ref = _as_days(reference, len(codes))
    out = np.full(len(codes), np.datetime64("NaT", "D"))
    if not len(codes):
        return out
    century = (ref.astype("datetime64[Y]").astype("int64") + 1970) // 100 * 100
    low, high = int(century.min()), int(century.max())
    for c in range(low, high + 1, 100):
        rows = slice(None) if low == high else np.flatnonzero(century == c)
        # A two-digit year is read in the reference's century, or the one before if that is too late.
        this = _dates(np.where(two_digit[:-1], c + year, year), month, day)
        before = _dates(np.where(two_digit[:-1], c - 100 + year, year), month, day)
        at = codes[rows]
        candidate = this[at]
        too_late = two_digit[at] & (candidate > ref[rows])  # NaT compares False
        out[rows] = np.where(too_late, before[at], candidate)
    return out


def _dates(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """`_assemble` with placeholder years (before `MIN_YEAR`) as NaT, plus a trailing NaT for missing rows."""
    with np.errstate(invalid="ignore"):
        dates = np.where(year >= MIN_YEAR, _assemble(year, month, day), np.datetime64("NaT", "D"))
    return np.append(dates, np.datetime64("NaT", "D"))


def format_day_first(dates: pd.Series, four_digit: np.ndarray | bool = False) -> pd.Series:
    """Write timestamps as the bank export does: `d/m/yy` (or `d/m/yyyy`), no zero padding."""
    dates = pd.Series(dates)
    day = dates.dt.day.astype("Int64").astype("string")
    month = dates.dt.month.astype("Int64").astype("string")
    year4 = dates.dt.year.astype("Int64").astype("string")
    year2 = (dates.dt.year % 100).astype("Int64").astype("string").str.zfill(2)
    year = year4.where(pd.Series(np.broadcast_to(four_digit, len(dates)), index=dates.index), year2)
    return (day + "/" + month + "/" + year).astype(object).where(dates.notna(), None)
