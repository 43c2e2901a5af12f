"""Shared fixtures. The backend comes from KERAS_BACKEND (default jax here)."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow turns its oneDNN kernels on by default only on some CPUs (AVX-512 ones); without them its
# CPU convolutions refuse channels_first, which the fused-BatchNorm and layout tests exercise.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

# ci: the same examples every run, and no example database (CI starts from a fresh clone, and `make test` runs
# the two backends side by side, which would share one folder of examples)
settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=50, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

from tests import _items  # noqa: E402,F401  (registers the test-only model, dataset, task)


@pytest.fixture(scope="session", autouse=True)
def _compilation_cache(tmp_path_factory):
    """The session's JAX compiled-step cache in a temporary folder (not ~/.cache): set once, before any run."""
    from kmodels import backend

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KMODELS_CACHE_DIR", str(tmp_path_factory.mktemp("kmodels-xla")))
        directory = backend.compilation_cache()
    return directory


@pytest.fixture(scope="session")
def backend() -> str:
    import keras

    return keras.backend.backend()


@pytest.fixture(scope="session")
def toy_run(tmp_path_factory):
    """One finished run of the test task, shared by the tests that read run artifacts."""
    import kmodels

    out = tmp_path_factory.mktemp("toy") / "run"
    return kmodels.run("toy_task", overrides={"train.epochs": 4}, out=out)
