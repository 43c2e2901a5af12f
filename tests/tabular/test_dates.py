from __future__ import annotations

import datetime as dt

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st
from kmodels_tabular.dates import format_day_first, parse_day_first

transactions = st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2030, 12, 31))


@given(txn=transactions, days_before=st.integers(min_value=0, max_value=36523), fmt=st.sampled_from(
    ["d/m/yy", "d/m/yyyy", "dd/mm/yy", "dd/mm/yyyy", "yyyy-mm-dd"]))
def test_any_birth_date_within_100_years_parses_back_in_every_format(txn, days_before, fmt):
    birth = txn - dt.timedelta(days=days_before)
    yy = f"{birth.year % 100:02d}"
    text = {
        "d/m/yy": f"{birth.day}/{birth.month}/{yy}",
        "d/m/yyyy": f"{birth.day}/{birth.month}/{birth.year}",
        "dd/mm/yy": f"{birth.day:02d}/{birth.month:02d}/{yy}",
        "dd/mm/yyyy": f"{birth.day:02d}/{birth.month:02d}/{birth.year}",
        "yyyy-mm-dd": birth.isoformat(),
    }[fmt]
    if birth.year < 1900:
        return  # before the placeholder cut-off: read as missing by design
    got = parse_day_first(pd.Series([text]), pd.Series([pd.Timestamp(txn)]))[0]
    assert got == pd.Timestamp(birth), (text, txn)


@given(st.dates(min_value=dt.date(1930, 1, 1), max_value=dt.date(2016, 8, 1)), st.booleans())
def test_format_then_parse_round_trips(date, four):
    text = format_day_first(pd.Series([pd.Timestamp(date)]), four_digit=four)
    assert parse_day_first(text, pd.Timestamp("2016-08-02"))[0] == pd.Timestamp(date)


def test_placeholders_garbage_and_impossible_dates_are_missing():
    out = parse_day_first(pd.Series(["1/1/1800", "31/2/90", "hello", None, "", "13/13/13"]), pd.Timestamp("2016-01-01"))
    assert out.isna().all()


def test_naive_2057_is_1957():
    assert parse_day_first(pd.Series(["4/4/57"]), pd.Timestamp("2016-08-02"))[0].year == 1957
