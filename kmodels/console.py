"""Console plumbing shared by the CLI, `make run` and the benchmarks: logging to stderr, and a quiet backend import."""

from __future__ import annotations

import logging
import os
import sys

#: The CLI's exit codes: success, the run failed, a usage/config/data error, interrupted.
EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time of each record."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("kmodels: %(message)s"))

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def setup_logging(quiet: bool) -> None:
    log = logging.getLogger("kmodels")
    if not any(isinstance(h, _StderrHandler) for h in log.handlers):
        log.addHandler(_StderrHandler())
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    log.propagate = False


#: set by the CLI's `main`: whether `--debug` lets the backends' native start-up lines through
DEBUG = False


def import_backend_quietly() -> None:
    """Import Keras (and so its backend) with the native stderr pointed at /dev/null, unless `--debug`.

    TensorFlow's C++ start-up lines (absl's "All log messages before absl::InitializeLog()",
    "oneDNN custom operations are on", CPU feature notes) are written before
    `TF_CPP_MIN_LOG_LEVEL` applies, straight to file descriptor 2. Python's own errors are
    unaffected: an import that raises is reported after stderr is restored. On JAX a run no longer
    imports TensorFlow at all (`kmodels.backend.tensorflow_unimported`); a command that needs it there
    (`export --format saved_model`) imports it itself.
    """
    wanted = ["keras"]
    if DEBUG or all(m in sys.modules for m in wanted):
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        for module in wanted:
            __import__(module)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
