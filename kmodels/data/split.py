"""Seeded, stratified, group-aware train/val/test splits."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from kmodels.errors import ConfigError, DataError

logger = logging.getLogger("kmodels")


def _two_way(units: np.ndarray, labels: np.ndarray | None, size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    if size <= 0:
        return units, units[:0]
    try:
        a, b = train_test_split(units, test_size=size, random_state=seed, stratify=labels)
    except ValueError as exc:
        if labels is None:
            raise DataError(f"Cannot split {len(units)} rows/groups with fraction {size}: {exc}") from None
        logger.warning("Stratified split impossible (%s); splitting without stratification.", exc)
        a, b = train_test_split(units, test_size=size, random_state=seed)
    return np.asarray(a), np.asarray(b)


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
        codes, uniques = pd.factorize(pd.Series(groups).reset_index(drop=True), use_na_sentinel=True)
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
