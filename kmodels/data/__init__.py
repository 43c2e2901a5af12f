"""Generic data machinery: tables, splits, CSV reading, image folders."""

from kmodels.data.duplicates import duplicate_mask
from kmodels.data.split import split_indices
from kmodels.data.table import Table, to_category

__all__ = ["Table", "duplicate_mask", "split_indices", "to_category"]
