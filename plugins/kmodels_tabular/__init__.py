"""kmodels_tabular: the bank_gender task, tabular preprocessors and the Keras MLP.

Registered through the `kmodels.plugins` entry point, like any third-party plugin.
"""

from kmodels_tabular import (
    auto_features,
    bank_data,
    csv_dataset,
    models,
    preprocessors,
    robust,
    row_filters,
    tabm,
    task,
)

__all__ = ["auto_features", "bank_data", "csv_dataset", "models", "preprocessors", "robust", "row_filters", "tabm", "task"]
