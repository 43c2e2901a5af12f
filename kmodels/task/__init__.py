"""Tasks: the pipeline (`base`, with its data hooks in `data_steps`, its model hooks in
`model_steps` and its callbacks in `callback_steps`), what they hand each other (`results`), its
training phases (`training`), the use of a finished run (`inference`) and starting, running or
resuming a run (`runner`).

Example:
    >>> from kmodels.task import Task, run
    >>> callable(run) and hasattr(Task, "prepare")
    True
"""

from kmodels.task.base import Task
from kmodels.task.export import export
from kmodels.task.inference import evaluate_run, explain_run, load_model, predict, save_model
from kmodels.task.results import Features, Prepared, RunResult
from kmodels.task.runner import run

__all__ = ["Features", "Prepared", "RunResult", "Task", "evaluate_run", "explain_run", "export", "load_model", "predict",
           "run", "save_model"]
