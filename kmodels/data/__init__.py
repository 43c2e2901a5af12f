"""Generic data machinery: tables, splits, CSV reading, image folders."""

from kmodels.data.split import split_indices
from kmodels.data.table import Table

__all__ = ["Table", "split_indices"]
