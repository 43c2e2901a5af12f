from __future__ import annotations

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from kmodels.data import duplicate_mask

cells = st.one_of(st.none(), st.integers(0, 3), st.sampled_from(["a", "b", ""]))


@given(st.lists(st.tuples(st.integers(0, 2), st.one_of(st.just(float("nan")), st.sampled_from([0.0, 1.5, 2.0])), cells),
                max_size=60))
def test_duplicate_mask_equals_pandas_duplicated(rows):
    frame = pd.DataFrame(rows, columns=["i", "f", "o"])
    assert duplicate_mask(frame).tolist() == frame.duplicated().tolist()
    assert duplicate_mask(frame, ["o"]).tolist() == frame.duplicated(subset=["o"]).tolist()


def test_text_only_frames():
    frame = pd.DataFrame({"a": ["x", "y", "x"], "b": ["1", "2", "1"]})
    assert duplicate_mask(frame).tolist() == [False, False, True]


def test_back_to_back_calls_on_tables_with_equal_numbers_and_different_text():
    # The second call reuses the first one's hash collisions; the text must still be compared afresh.
    a = pd.DataFrame({"n": [1.0, 1.0, 2.0, 2.0], "t": ["x", "x", "y", "y"]})
    b = a.assign(t=["x", "z", "y", "y"])
    assert duplicate_mask(a).tolist() == [False, True, False, True]
    assert duplicate_mask(b).tolist() == [False, False, False, True]
    c = b.assign(n=[1.0, 3.0, 2.0, 4.0])  # other numbers: collisions recomputed
    assert duplicate_mask(c).tolist() == [False, False, False, False]
