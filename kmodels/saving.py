"""What a run directory holds: every file kmodels writes there, named once, and the writer of what hooks make.

The core's own files are the constants below (`RUN_FILES`; the code that writes or reads
one imports its name from here). What a task's hooks make (plots, reports) they return as
`{file name: content}`, and the runner writes it with `write_artifacts`: a matplotlib figure
as PNG, a dict or list as JSON, a string as text, a DataFrame as CSV. A hook never needs the
run directory to write to, and a read-only use of a finished run (`evaluate`, `explain`)
simply drops what they return.

Example:
    >>> import tempfile
    >>> from kmodels.runs import RunDir
    >>> rd = RunDir.create("doc", out=tempfile.mkdtemp() + "/run")
    >>> write_artifacts(rd, {"notes.md": "# hello\\n", "numbers.json": {"a": 1}})
    ['notes.md', 'numbers.json']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SPEC = "spec.toml"
METADATA = "metadata.json"
METRICS = "metrics.json"
MODEL = "model.keras"
HISTORY = "history.csv"
REPORT = "report.md"
STATE, STATE_META = "preprocessor.skops", "preprocessor.json"
HEAD_WEIGHTS = "head.weights.h5"
FINE_TUNE = "fine_tune.json"
TRAINED = "trained.json"
TRACKING = "tracking.json"
LOCK = ".kmodels.lock"
TRAINING_CURVES = "training_curves.png"
IMPORTANCE_PLOT = "permutation_importance.png"

#: Every file the core writes in a run directory, and what it holds (docs/runs.md lists the same).
ARTIFACTS: dict[str, str] = {
    SPEC: "the spec as run, fully defaulted: `kmodels run spec.toml` runs it again",
    METADATA: "status (running, completed, failed, interrupted), versions, seed, times, the error if any",
    METRICS: "the problem, splits, every model's test metrics, threshold(s), verdict, data fingerprint",
    MODEL: "the trained Keras model (loads in plain Keras, safe_mode)",
    HISTORY: "per-epoch loss, metrics and learning rate",
    REPORT: "the comparison table, the verdict and links to the plots",
    STATE: "the fitted preprocessing (skops: data, never a pickle)",
    STATE_META: "the target, the feature columns and which were numeric",
    HEAD_WEIGHTS: "fine-tuning: the trained head, before the backbone is unfrozen",
    FINE_TUNE: "fine-tuning: how many epochs the head trained",
    TRAINED: "training finished: history and timing (a resume then only evaluates)",
    TRACKING: "the MLflow run this run was logged to",
    LOCK: "the OS lock a running or resuming process holds",
    TRAINING_CURVES: "loss and metrics per epoch, train and validation",
    IMPORTANCE_PLOT: "permutation importance of each input column (tables)",
}
#: The core's files: a spec callback may not name one of them.
RUN_FILES = (SPEC, METADATA, METRICS, MODEL, HISTORY, REPORT, STATE_META, STATE, HEAD_WEIGHTS, FINE_TUNE, TRAINED,
             TRACKING)


class Artifacts(dict):
    """What a hook made for the run directory, `{file name: content}`; the runner writes it (`write_artifacts`).

    Returning this type (not a plain dict) is how a hook says "write these": `analyse` and
    `plot_results` may return one.

    Example:
        >>> Artifacts({"summary.md": "# Summary"})
        Artifacts({'summary.md': '# Summary'})
    """

    def __repr__(self) -> str:
        return f"Artifacts({dict.__repr__(self)})"


def write_artifacts(run_dir: Any, made: Mapping[str, Any] | None) -> list[str]:
    """Write what a hook made into `run_dir` (atomically, like every run file); returns the names, in order.

    A name must be a plain file name that is not one of the core's (`RUN_FILES`); a content of
    another type than those the module docstring lists is a `TypeError` naming it.
    """
    import pandas as pd

    from kmodels.errors import RunError

    written = []
    for name, content in (made or {}).items():
        if "/" in name or "\\" in name or name in RUN_FILES or name.startswith("."):
            raise RunError(f"A hook returned the artifact name {name!r}; expected a plain file name that is not one "
                           f"of kmodels' own ({', '.join(RUN_FILES)}).")
        if hasattr(content, "savefig"):
            from kmodels.evaluation import save_figure

            save_figure(content, run_dir.file(name))
        elif isinstance(content, dict | list):
            run_dir.write_json(name, content)
        elif isinstance(content, str):
            run_dir.write_text(name, content)
        elif isinstance(content, pd.DataFrame):
            run_dir.write_text(name, content.to_csv(index=False))
        else:
            raise TypeError(f"Artifact {name!r}: cannot write a {type(content).__name__} (expected a matplotlib "
                            "figure, a dict or list, a string or a DataFrame).")
        written.append(name)
    return written
