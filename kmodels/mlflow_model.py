"""The MLflow model (pyfunc flavour) a tracked run logs: `mlflow.pyfunc.load_model(uri).predict(rows)`.

Logged by `kmodels run --mlflow` as the MLflow run's `model`: the run directory travels as the
model's artifact, and loading it builds the same in-memory predictor as
`kmodels.estimator.load`, so `predict` takes raw rows (a DataFrame with the run's columns) and
returns what `kmodels predict` gives (`label`, `probability`, `probability_<class>`; regression:
`prediction`). Loading needs kmodels installed (it is the model's declared requirement).

Example:
    >>> import mlflow  # doctest: +SKIP
    >>> model = mlflow.pyfunc.load_model("runs:/<run id>/model")  # doctest: +SKIP
    >>> model.predict(new_rows_df)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc


class KModelsModel(mlflow.pyfunc.PythonModel):
    """A kmodels run directory as an MLflow python model."""

    def load_context(self, context: Any) -> None:
        from kmodels.estimator import load

        self.estimator = load(context.artifacts["run_dir"])

    def predict(self, context: Any, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        import pandas as pd

        if self.estimator._state is None:  # an image run: inputs are image paths
            paths = model_input.iloc[:, 0].tolist() if isinstance(model_input, pd.DataFrame) else list(model_input)
            from kmodels.runs import RunDir

            return self.estimator._task_class.predict_files(RunDir(self.estimator.run_dir_), self.estimator.model_,
                                                            paths)
        return self.estimator.predict_frame(model_input)
