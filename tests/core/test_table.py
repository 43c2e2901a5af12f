from __future__ import annotations

import doctest
import importlib

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kmodels.data import to_category


@given(st.lists(st.one_of(st.none(), st.sampled_from(["1/1/90", "b", "a", "10/12/2016", "", " x"])), max_size=60),
       st.sampled_from([object, "str"]))
def test_to_category_equals_astype_category(values, dtype):
    s = pd.Series(values, dtype=dtype, name="c", index=pd.RangeIndex(len(values)) * 3)
    pd.testing.assert_series_equal(to_category(s), s.astype("category"))


def test_to_category_keeps_categoricals_and_falls_back_for_unorderable_values():
    s = pd.Series(["b", "a"], dtype="category")
    assert to_category(s) is s
    mixed = pd.Series([1, "a", None, 1], dtype=object)
    pd.testing.assert_series_equal(to_category(mixed), mixed.astype("category"))


@pytest.mark.parametrize("module", ["kmodels.data.table", "kmodels.data.split", "kmodels.data.duplicates",
                                    "kmodels.data.csv", "kmodels_tabular.dates", "kmodels.evaluation",
                                    "kmodels.options", "kmodels.runs", "kmodels.building",
                                    "kmodels_vision.report", "kmodels_vision.layers"])
def test_module_examples_run(module):
    result = doctest.testmod(importlib.import_module(module),
                             optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
