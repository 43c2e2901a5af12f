"""Row filters: stateless preprocessors that drop rows of the whole table before the split.

Each has `drops_rows = True` and a `keep_mask(x)` (one boolean per row, what `transform`
keeps), so the task knows which rows remain and carries per-row results over. They are not
part of the fitted feature pipeline a run saves.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from kmodels.api import duplicate_mask, registry
from kmodels_tabular._steps import Step, as_frame, require_columns

logger = logging.getLogger("kmodels")


@registry.preprocessors.register("drop_duplicates")
class DropDuplicates(Step):
    """Drop exact duplicate rows (all columns, or `subset`), keeping the first.

    Args:
        subset: columns that define a duplicate; `None` uses every column.

    Example:
        >>> import pandas as pd
        >>> DropDuplicates().fit_transform(pd.DataFrame({"a": [1, 1, 2]})).shape
        (2, 1)
    """

    drops_rows = True

    def __init__(self, subset: list[str] | None = None) -> None:
        self.subset = subset

    def fit(self, x: pd.DataFrame, y: object = None) -> DropDuplicates:
        x = as_frame(x, "drop_duplicates")
        if self.subset:
            require_columns(x, self.subset, "drop_duplicates")
        self.columns_ = list(x.columns)
        return self

    def keep_mask(self, x: pd.DataFrame) -> np.ndarray:
        """True for the rows `transform` keeps."""
        keep = ~duplicate_mask(self._check(x), self.subset or None)
        if not keep.all():
            logger.info("drop_duplicates: removed %d duplicate row(s)", int((~keep).sum()))
        return keep

    def transform(self, x: pd.DataFrame) -> pd.DataFrame:
        return x[self.keep_mask(x)]


@registry.preprocessors.register("drop_missing")
class DropMissing(Step):
    """Drop rows with a missing value in any of `columns`.

    Example:
        >>> import pandas as pd
        >>> DropMissing(["a"]).fit_transform(pd.DataFrame({"a": [1, None], "b": [None, 2]})).shape
        (1, 2)
    """

    drops_rows = True

    def __init__(self, columns: list[str] = ()) -> None:  # noqa: B006
        self.columns = columns

    def fit(self, x: pd.DataFrame, y: object = None) -> DropMissing:
        x = as_frame(x, "drop_missing")
        require_columns(x, list(self.columns), "drop_missing")
        self.columns_ = list(self.columns)
        return self

    def keep_mask(self, x: pd.DataFrame) -> np.ndarray:
        """True for the rows `transform` keeps."""
        x = self._check(x)
        return x[self.columns_].notna().all(axis=1).to_numpy() if self.columns_ else np.ones(len(x), dtype=bool)

    def transform(self, x: pd.DataFrame) -> pd.DataFrame:
        return x[self.keep_mask(x)]
