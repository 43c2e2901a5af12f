from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kmodels.data.split import split_indices


@given(n=st.integers(40, 400), groups=st.integers(10, 60), seed=st.integers(0, 10_000), p=st.floats(0.2, 0.8))
def test_group_split_is_disjoint_complete_and_deterministic(n, groups, seed, p):
    rng = np.random.default_rng(seed)
    group = rng.integers(0, groups, n)
    label_of_group = (rng.random(groups) < p).astype(int)
    labels = label_of_group[group]
    parts = split_indices(labels, test=0.2, val=0.1, seed=seed, groups=group)
    assert sorted(np.concatenate(parts).tolist()) == list(range(n))
    sets = [set(group[i]) for i in parts]
    assert not sets[0] & sets[1] and not sets[0] & sets[2] and not sets[1] & sets[2]
    again = split_indices(labels, test=0.2, val=0.1, seed=seed, groups=group)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))


@given(n=st.integers(200, 2000), seed=st.integers(0, 10_000), p=st.floats(0.15, 0.85))
def test_row_split_is_stratified_within_tolerance(n, seed, p):
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < p).astype(int)
    train, val, test = split_indices(labels, test=0.2, val=0.1, seed=seed)
    overall = labels.mean()
    for part in (train, val, test):
        assert abs(labels[part].mean() - overall) <= max(0.02, 2 / len(part))
    assert abs(len(test) / n - 0.2) < 0.01 and abs(len(val) / n - 0.1) < 0.01


def test_missing_group_ids_are_their_own_groups():
    import pandas as pd

    groups = pd.Series(["a", "a", None, None, "b", "b", "c", "c", "d", "d"])
    labels = np.array([0, 0, 1, 1, 0, 0, 1, 1, 0, 1])
    parts = split_indices(labels, test=0.3, val=0.0, seed=0, groups=groups, stratify=False)
    assert sorted(np.concatenate(parts).tolist()) == list(range(10))


@given(n=st.integers(1, 300), test=st.floats(0.01, 0.95), seed=st.integers(0, 2**32 - 1),
       classes=st.integers(1, 4), stratify=st.booleans(), data=st.data())
def test_shuffle_split_is_scikit_learns_train_test_split(n, test, seed, classes, stratify, data):
    from sklearn.model_selection import train_test_split

    from kmodels.data.split import shuffle_split
    from kmodels.errors import DataError

    labels = np.array(data.draw(st.lists(st.integers(0, classes - 1), min_size=n, max_size=n)))
    strat = labels if stratify else None
    try:
        expected = train_test_split(np.arange(n), test_size=test, random_state=seed, stratify=strat)
    except ValueError:
        with pytest.raises(DataError):
            shuffle_split(n, test, seed, strat)
        return
    got = shuffle_split(n, test, seed, strat)
    assert all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True))
