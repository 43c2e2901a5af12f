"""What a task's steps hand each other and what a run returns: `Features`, `Prepared`, `RunResult`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kmodels.data.table import Table
from kmodels.problems import Problem


@dataclass
class RunResult:
    """What `kmodels.run` returns.

    Attributes:
        task: the task name.
        run_dir: the run directory holding every artifact.
        metrics: the content of `metrics.json` (per-model test metrics).
        table: the comparison table, one row per model (a DataFrame indexed by model;
            `table.to_markdown()` gives the markdown the CLI prints).
        markdown: the comparison table as the console and `report.md` show it.
    """

    task: str
    run_dir: Path
    metrics: dict[str, Any]
    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    markdown: str = ""
    extras: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"RunResult(task={self.task!r}, run_dir={str(self.run_dir)!r})"


@dataclass
class Features:
    """Model-ready arrays of one split."""

    x: np.ndarray
    y: np.ndarray
    frame: pd.DataFrame


@dataclass
class Prepared:
    """What `Task.prepare` returns: the model-ready splits and what the run learned about its data.

    Attributes:
        data: `"train"`, `"val"`, `"test"` → `Features`.
        problem: the problem type with its classes (see `kmodels.problems`).
        table: the cleaned table the splits were drawn from.
        cleaning: rows in/out and what each cleaning step removed.
        preprocessor: the fitted feature pipeline (`None` when the task has none).
    """

    data: dict[str, Features]
    problem: Problem
    table: Table
    cleaning: dict[str, Any] = field(default_factory=dict)
    preprocessor: Any = None

    @property
    def sizes(self) -> dict[str, int]:
        return {k: len(v.y) for k, v in self.data.items()}
