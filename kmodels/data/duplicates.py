"""Exact duplicate rows, fast: hash every row, then compare only rows whose hashes collide."""

from __future__ import annotations

import numpy as np
import pandas as pd


def duplicate_mask(frame: pd.DataFrame, subset: list[str] | None = None) -> np.ndarray:
    """Boolean mask of rows that exactly repeat an earlier row (like `DataFrame.duplicated()`).

    Rows are first hashed on their numeric columns (cheap, and rows that differ
    there cannot be duplicates); only rows sharing that hash are compared
    exactly on every column. The answer is exact and text columns such as
    unique IDs are only compared for the few candidate rows.

    Example:
        >>> import pandas as pd
        >>> duplicate_mask(pd.DataFrame({"a": [1, 2, 1], "b": ["x", "y", "x"]})).tolist()
        [False, False, True]
    """
    data = frame if not subset else frame[subset]
    if data.empty:
        return np.zeros(len(data), dtype=bool)
    cheap = [c for c in data.columns if pd.api.types.is_numeric_dtype(data[c]) or pd.api.types.is_bool_dtype(data[c])]
    hashes = pd.util.hash_pandas_object(data[cheap] if cheap else data, index=False).to_numpy()
    candidates = _colliding(hashes)
    mask = np.zeros(len(data), dtype=bool)
    if candidates.any():
        mask[candidates] = data[candidates].duplicated().to_numpy()
    return mask


#: The last (hashes, colliding rows) pair: the EDA and the drop_duplicates step ask about the same
#: table one after the other. Reuse depends only on the hashes being equal, which is checked.
_LAST: tuple[np.ndarray, np.ndarray] | None = None


def _colliding(hashes: np.ndarray) -> np.ndarray:
    """Rows whose hash occurs more than once."""
    global _LAST
    last = _LAST
    if last is not None and np.array_equal(last[0], hashes):
        return last[1]
    candidates = pd.Series(hashes).duplicated(keep=False).to_numpy()
    _LAST = (hashes, candidates)
    return candidates
