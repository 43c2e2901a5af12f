"""kmodels: declaratively assembled Keras 3 models on JAX or TensorFlow.

The public API is declared here and only here (the plugin-author surface is
`kmodels.api`):

    >>> import kmodels
    >>> "early_stopping" in kmodels.registry.callbacks.list()
    True

- `build(name, **kwargs)`: a compiled `keras.Model` from a registered builder.
- `list_models(pattern="*")`: registered model names matching a glob.
- `run(task_or_path, data=None, overrides=None, out=None)`: a whole task → `RunResult`.
- `predict(run_dir_or_model, inputs)`: predictions of a finished run (or a `.keras` file) as a DataFrame.
- `evaluate(run_dir)`: a finished run's model re-evaluated on its test split.
- `explain(run_dir, inputs=(), plot=None)`: permutation importance of a table run's columns (or occlusion
  maps of images), as a DataFrame.
- `export(run_dir_or_model, out, format)`: the model as `keras`, `saved_model` or `onnx`, checked by loading it back.
- `load_spec(task_or_path, overrides=None)`: the validated, fully defaulted `TaskSpec`.
- `Classifier(task="tabular", overrides=None)`, `Regressor(...)`: scikit-learn estimators over a task
  (`fit`, `predict`, `predict_proba`, `score`, `save`; `kmodels.estimator.load(run_dir)`).
- `registry`: the registries (`models`, `preprocessors`, `callbacks`, `datasets`, `tasks`).

Importing kmodels imports neither Keras nor a backend: the names above that
need them are loaded on first use, so `kmodels --help` and `kmodels --version`
start in a fraction of a second.
"""

from __future__ import annotations

import importlib
import os as _os
from importlib import metadata as _metadata
from typing import Any

# TensorFlow turns its oneDNN CPU kernels on by itself only on CPUs with AVX-512 (VNNI/BF16/AMX); on
# AVX2 CPUs its own kernels run the separable convolutions of dog_cat_xception about 3x slower and
# refuse channels_first convolutions. kmodels asks for oneDNN unless you set the variable yourself;
# TensorFlow reads it when it is first imported, so this must happen before (it is cheap: no import).
_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

from kmodels import registry
from kmodels.errors import (
    ConfigError,
    DataError,
    DuplicateNameError,
    KModelsError,
    NotRegisteredError,
    RunError,
)

try:
    __version__ = _metadata.version("kmodels")
except _metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"

#: public name → the module that defines it (imported on first use)
_LAZY = {
    "build": "kmodels.building",
    "load_spec": "kmodels.spec",
    "TaskSpec": "kmodels.spec",
    "Task": "kmodels.task",
    "RunResult": "kmodels.task",
    "run": "kmodels.task",
    "predict": "kmodels.task",
    "evaluate": "kmodels.task",
    "export": "kmodels.task",
    "explain": "kmodels.task",
    "Classifier": "kmodels.estimator",
    "Regressor": "kmodels.estimator",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        attribute = {"evaluate": "evaluate_run", "explain": "explain_run"}.get(name, name)
        value = getattr(importlib.import_module(_LAZY[name]), attribute)
        globals()[name] = value
        return value
    if name in ("estimator", "task", "spec", "building", "problems", "evaluation", "api", "data", "runs", "backend", "cli"):
        return importlib.import_module(f"kmodels.{name}")
    raise AttributeError(f"module 'kmodels' has no attribute {name!r}")


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of registered models matching the glob `pattern`.

    Example:
        >>> import kmodels
        >>> kmodels.list_models("no_such_*")
        []
    """
    return registry.models.list(pattern)


__all__ = [
    "Classifier",
    "ConfigError",
    "DataError",
    "DuplicateNameError",
    "KModelsError",
    "NotRegisteredError",
    "Regressor",
    "RunError",
    "RunResult",
    "Task",
    "TaskSpec",
    "__version__",
    "build",
    "evaluate",
    "explain",
    "export",
    "list_models",
    "load_spec",
    "predict",
    "registry",
    "run",
]
