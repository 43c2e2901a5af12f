"""A number: one linear unit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kmodels.problems.base import Problem


@dataclass(frozen=True)
class RegressionProblem(Problem):
    """A number: one linear unit, mean squared error, ranked by R²."""

    class_range = (0, 0)
    loss = "mean_squared_error"
    metrics = ("mean_absolute_error",)
    known_metrics = ("mean_absolute_error", "root_mean_squared_error")
    primary = "r2"
    columns = ("model", "r2", "mae", "rmse")

    @property
    def num_classes(self) -> int:
        return 1

    @property
    def is_classification(self) -> bool:
        return False

    def valid(self, values: pd.Series) -> np.ndarray:
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        return np.isfinite(numbers)

    def encode(self, values: pd.Series) -> np.ndarray:
        return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float32)

    def probabilities(self, output: np.ndarray) -> np.ndarray:
        output = np.asarray(output, dtype=np.float64)
        return output.reshape(len(output), -1)[:, 0] if output.size else output.reshape(0)

    def class_probabilities(self, output: np.ndarray) -> np.ndarray:
        raise TypeError("A regression has no class probabilities.")

    def as_output(self, class_probabilities: np.ndarray) -> np.ndarray:
        raise TypeError("A regression has no class probabilities.")

    def decode(self, output: np.ndarray, threshold: float = 0.5) -> np.ndarray:
        return self.probabilities(output)

    def chosen_probability(self, output: np.ndarray, threshold: float = 0.5) -> np.ndarray:
        raise TypeError("A regression has no class probabilities.")

    def constant_output(self, index: int, rows: int) -> np.ndarray:
        return np.full(rows, float(index))

    def describe_output(self) -> str:
        return "the predicted value, in the target's units"

    def majority_output(self, y_train: np.ndarray, rows: int) -> np.ndarray:
        return np.full(rows, float(np.mean(y_train)) if len(y_train) else 0.0)

    def prediction_frame(self, output: np.ndarray, threshold: Any = 0.5, index: Any = None) -> pd.DataFrame:
        return pd.DataFrame({"prediction": self.decode(output)}, index=index)

    def _metrics(self, y_true: np.ndarray, out: np.ndarray, threshold: float) -> dict[str, Any]:
        from kmodels import evaluation

        return evaluation.regression_metrics(y_true, out)
