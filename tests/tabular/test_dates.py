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


def test_separators_blanks_and_near_misses():
    texts = ["\xa01/2/90\u2003", "1/2/90\n", "2016-1-2 ", "12-10-2016", "1.2.1999", "29/2/2000",
             "1/2/3", "123/1/90", "1/1/19999", "\u0663/\u0664/\u0669\u0660", "29/2/1900", "0/1/90", "1/13/90", "1/2/90x"]
    got = parse_day_first(pd.Series(texts), pd.Timestamp("2016-08-02"))
    expected = ["1990-02-01", "1990-02-01", "2016-01-02", "2016-10-12", "1999-02-01", "2000-02-29"] + [None] * 8
    assert got.tolist() == [pd.NaT if e is None else pd.Timestamp(e) for e in expected]


def test_categorical_input_and_reference_across_centuries():
    text = pd.Series(["1/1/99", "1/1/01", None, "1/1/99"], dtype="category")
    ref = pd.Series(pd.to_datetime(["1999-06-01", "2001-06-01", "2001-06-01", "2100-03-01"]))
    got = parse_day_first(text, ref)  # three reference centuries: 1900s, 2000s, 2100s
    assert got.tolist() == [pd.Timestamp("1999-01-01"), pd.Timestamp("2001-01-01"), pd.NaT, pd.Timestamp("2099-01-01")]


def test_auto_features_reads_us_dates_month_first_from_all_values():
    """US m/d/yyyy dates whose first day above 12 comes late: decided from every value, nothing swapped or lost."""
    from kmodels_tabular.auto_features import AutoFeatures

    days = pd.date_range("2021-01-01", periods=400, freq="D")
    early = [d for d in days if d.day <= 12][:300]  # 300 rows that also read day-first (swapped)
    late = [d for d in days if d.day > 12][:100]
    dates = early + late
    frame = pd.DataFrame({"when": [f"{d.month}/{d.day}/{d.year}" for d in dates]})
    step = AutoFeatures().fit(frame)
    assert step.kinds_["when"] == "date" and step.date_orders_["when"] == "month_first"
    out = step.transform(frame)
    assert out["when_month"].tolist() == [float(d.month) for d in dates]
    assert out["when_weekday"].tolist() == [float(d.day_of_week) for d in dates]
    day_first = pd.DataFrame({"when": [f"{d.day}/{d.month}/{d.year}" for d in dates]})
    step = AutoFeatures().fit(day_first)
    assert step.date_orders_["when"] == "day_first"
    assert step.transform(day_first)["when_month"].tolist() == [float(d.month) for d in dates]
