"""kmodels: declaratively assembled Keras 3 models on JAX or TensorFlow.

The public API is declared here and only here:

    >>> import kmodels
    >>> "early_stopping" in kmodels.registry.callbacks.list()
    True

- `build(name, **kwargs)`: a compiled `keras.Model` from a registered builder.
- `list_models(pattern="*")`: registered model names matching a glob.
- `run(task_or_path, data=None, overrides=None, out=None)`: a whole task → `RunResult`.
- `load_spec(task_or_path, overrides=None)`: the validated, fully defaulted `TaskSpec`.
- `registry`: the registries (`models`, `preprocessors`, `callbacks`, `datasets`, `tasks`).
"""

from __future__ import annotations

from importlib import metadata as _metadata

from kmodels import callbacks as _callbacks  # noqa: F401  (registers the Keras callbacks)
from kmodels import registry
from kmodels.building import build
from kmodels.errors import (
    ConfigError,
    DataError,
    DuplicateNameError,
    KModelsError,
    NotRegisteredError,
    RunError,
)
from kmodels.spec import TaskSpec, load_spec
from kmodels.task import RunResult, Task, run

try:
    __version__ = _metadata.version("kmodels")
except _metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of registered models matching the glob `pattern`.

    Example:
        >>> import kmodels
        >>> kmodels.list_models("no_such_*")
        []
    """
    return registry.models.list(pattern)


__all__ = [
    "ConfigError",
    "DataError",
    "DuplicateNameError",
    "KModelsError",
    "NotRegisteredError",
    "RunError",
    "RunResult",
    "Task",
    "TaskSpec",
    "__version__",
    "build",
    "list_models",
    "load_spec",
    "registry",
    "run",
]
