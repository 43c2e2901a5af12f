"""Seeded, stratified, group-aware train/val/test splits."""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd

from kmodels.data.table import _factorize
from kmodels.errors import ConfigError, DataError

logger = logging.getLogger("kmodels")


def _two_way(units: np.ndarray, labels: np.ndarray | None, size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if size <= 0:
        return units, units[:0]
    try:
        a, b = shuffle_split(len(units), size, seed, labels)
    except _CannotStratify as exc:
        logger.warning("Stratified split impossible (%s); splitting without stratification.", exc)
        a, b = shuffle_split(len(units), size, seed)
    return units[a], units[b]


class _CannotStratify(DataError):
    pass


def shuffle_split(n: int, test: float, seed: int, labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Positions of a seeded (stratified) train/test split of `n` items: scikit-learn's `train_test_split`.

    A split that cannot be stratified (a class with one member, fewer items on a side than
    classes) raises `_CannotStratify`, which `split_indices` turns into an unstratified split
    with a warning.

    Example:
        >>> train, test = shuffle_split(10, 0.3, seed=0, labels=np.array([0, 1] * 5))
        >>> len(train), len(test), sorted(np.r_[train, test].tolist()) == list(range(10))
        (7, 3, True)
    """
    from sklearn.model_selection import train_test_split

    n_test = math.ceil(test * n)
    if not 0 < test < 1 or n - n_test <= 0:
        raise DataError(f"Cannot split {n} rows/groups with test fraction {test}: one side would be empty. "
                        "Use more data or a fraction that leaves rows on both sides.")
    try:
        train, held = train_test_split(np.arange(n), test_size=test, random_state=seed,
                                       stratify=None if labels is None else np.asarray(labels))
    except ValueError as exc:  # scikit-learn's words for a split that cannot keep the class balance
        raise _CannotStratify(str(exc).split(".")[0].strip()) from None
    return train, held


def split_indices(labels: np.ndarray, *, test: float, val: float, seed: int, stratify: bool = True,
                  groups: pd.Series | np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row positions of the train, validation and test splits.

    With `groups`, whole groups go to one split (a customer never appears in
    two); stratification then uses each group's first label.

    Example:
        >>> import numpy as np
        >>> tr, va, te = split_indices(np.array([0, 1] * 50), test=0.2, val=0.1, seed=0)
        >>> len(tr), len(va), len(te)
        (70, 10, 20)
    """
    if not (0 <= test < 1 and 0 <= val < 1 and test + val < 1):
        raise ConfigError(
            f"[split] received test={test}, val={val}. Expected fractions in [0, 1) with test + val < 1."
        )
    labels = np.asarray(labels)
    n = len(labels)
    if groups is None:
        units = np.arange(n)
        unit_labels = labels
        row_unit = units
    else:
        codes, uniques = _factorize(pd.Series(groups).reset_index(drop=True))
        missing = codes < 0
        codes = codes.copy()
        codes[missing] = len(uniques) + np.arange(int(missing.sum()))  # a missing id is its own group
        row_unit = codes
        n_units = int(codes.max()) + 1 if n else 0
        first = np.full(n_units, -1)
        order = np.arange(n)[::-1]
        first[codes[order]] = labels[order]
        units = np.arange(n_units)
        unit_labels = first
    strat = unit_labels if stratify else None
    rest, test_units = _two_way(units, strat, test, seed)
    rest_labels = None if strat is None else unit_labels[rest]
    train_units, val_units = _two_way(rest, rest_labels, val / (1 - test) if val else 0.0, seed + 1)
    membership = np.zeros(len(units), dtype=np.int8)
    membership[val_units] = 1
    membership[test_units] = 2
    row_split = membership[row_unit]
    return (np.flatnonzero(row_split == 0), np.flatnonzero(row_split == 1), np.flatnonzero(row_split == 2))


#: The fewest rows a split may hold: a metric on fewer test rows is noise, fewer training rows teach nothing.
MIN_TRAIN_ROWS = 10
MIN_TEST_ROWS = 5
MIN_VAL_ROWS = 2


def check_split_sizes(n: int, *, test: float, val: float, class_counts: dict[Any, int] | None = None,
                      source: str = "the data") -> None:
    """Raise a `DataError` naming the fix when `n` rows cannot give every split (and class) enough rows.

    Every split needs a minimum of rows (`MIN_TRAIN_ROWS`, `MIN_TEST_ROWS`,
    `MIN_VAL_ROWS` when `val > 0`), and every class at least 2 (one to train
    on, one to test). Run before anything is written, so a too-small file fails at once.

    Example:
        >>> check_split_sizes(100, test=0.2, val=0.1)
        >>> try:
        ...     check_split_sizes(3, test=0.2, val=0.1)
        ... except DataError as exc:
        ...     print(str(exc)[:55])
        the data has 3 rows: too few to train, validate and tes
    """
    need = max(math.ceil(MIN_TEST_ROWS / test) if test > 0 else 0,
               math.ceil(MIN_VAL_ROWS / val) if val > 0 else 0,
               math.ceil(MIN_TRAIN_ROWS / (1 - test - val)))
    if n < need:
        raise DataError(
            f"{source} has {n} rows: too few to train, validate and test (at least {MIN_TRAIN_ROWS} training, "
            f"{MIN_TEST_ROWS} test{f' and {MIN_VAL_ROWS} validation' if val > 0 else ''} rows; with test={test:g} "
            f"and val={val:g} that takes {need} rows). Add rows, or change [split] test/val."
        )
    rare = {k: c for k, c in (class_counts or {}).items() if c < 2}
    if rare:
        listed = ", ".join(f"{k!r} ({c})" for k, c in list(rare.items())[:10])
        raise DataError(f"{source}: class(es) {listed} have fewer than 2 rows, so they cannot be both trained on and "
                        "tested. Add rows, merge the class into another, or drop it (data.classes lists the ones to keep).")
