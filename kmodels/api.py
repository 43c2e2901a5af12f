"""The plugin-author surface: everything a plugin may import from the kmodels core, in one place.

The bundled plugins (`kmodels_tabular`, `kmodels_vision`, `kmodels_applications`)
import from here and nowhere else in the core, exactly as a third-party plugin
would; anything not listed here is internal and may change.

Example:
    >>> from kmodels.api import Problem, Table, Task, registry
    >>> issubclass(Task, object) and "tasks" in repr(registry.tasks)
    True
"""

from __future__ import annotations

from kmodels import graph, registry
from kmodels.building import BACKBONE, all_layers
from kmodels.cluster import writer_first
from kmodels.data.batches import ArrayBatches, Batches
from kmodels.data.cache import cache_dir
from kmodels.data.csv import read_csv
from kmodels.data.duplicates import duplicate_mask
from kmodels.data.split import split_indices
from kmodels.data.table import Table, to_category
from kmodels.errors import ConfigError, DataError, RunError
from kmodels.evaluation import format_table, markdown_text, plot_confusion_matrix, pyplot, save_figure, spreadsheet_safe
from kmodels.initializers import HostInitializer, host_built
from kmodels.layers import BroadcastDepthwiseConv1D, HashDropout, portable_model
from kmodels.problems import Problem, infer_problem, output_head
from kmodels.runs import RunDir, atomic_write
from kmodels.saving import Artifacts
from kmodels.spec import load_spec
from kmodels.task import Features, Prepared, RunResult, Task
from kmodels.task.inference import predict_rows, prediction_frame, saved_problem

__all__ = [
    "Artifacts",
    "BACKBONE",
    "ArrayBatches",
    "BroadcastDepthwiseConv1D",
    "Batches",
    "ConfigError",
    "DataError",
    "Features",
    "HashDropout",
    "HostInitializer",
    "Prepared",
    "Problem",
    "RunDir",
    "RunError",
    "RunResult",
    "all_layers",
    "atomic_write",
    "Table",
    "Task",
    "cache_dir",
    "duplicate_mask",
    "format_table",
    "graph",
    "host_built",
    "infer_problem",
    "load_spec",
    "markdown_text",
    "output_head",
    "portable_model",
    "plot_confusion_matrix",
    "predict_rows",
    "prediction_frame",
    "pyplot",
    "read_csv",
    "registry",
    "save_figure",
    "saved_problem",
    "spreadsheet_safe",
    "split_indices",
    "to_category",
    "writer_first",
]
