"""Backend information and seeding.

The backend is chosen with `KERAS_BACKEND` (`jax`, `tensorflow`, `torch`)
before Keras is imported. Example:

    >>> from kmodels import backend
    >>> backend.info(devices=False)["backend"] in {"jax", "tensorflow", "torch", "numpy"}
    True
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
from collections.abc import Iterator
from importlib import metadata
from typing import Any

_PACKAGES = ("kmodels", "keras", "jax", "jaxlib", "tensorflow-cpu", "tensorflow", "torch",
             "numpy", "pandas", "scikit-learn")


def versions() -> dict[str, str | None]:
    """Installed versions of the packages that matter, read without importing them."""
    out: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def name() -> str:
    import keras

    return keras.backend.backend()


def devices() -> list[str]:
    """Devices the current backend sees (e.g. `['cpu:0']`)."""
    import keras

    try:
        return [str(d) for d in keras.distribution.list_devices()]
    except (NotImplementedError, RuntimeError, AttributeError):
        return ["cpu:0"]


def info(devices: bool = True) -> dict[str, Any]:
    """Backend, devices, versions, Python and host facts, as a dict."""
    out: dict[str, Any] = {
        "backend": name(),
        "versions": versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
    }
    if devices:
        out["devices"] = globals()["devices"]()
    return out


@contextlib.contextmanager
def precision(policy: str = "float32") -> Iterator[None]:
    """Build layers under the Keras dtype `policy` (`"mixed_bfloat16"`, ...), then restore the previous one.

    Layers keep the policy they were built with, so only what is built inside is affected.

    Example:
        >>> import keras
        >>> with precision("mixed_bfloat16"):
        ...     layer = keras.layers.Dense(2)
        >>> layer.compute_dtype, keras.mixed_precision.dtype_policy().name
        ('bfloat16', 'float32')
    """
    import keras

    previous = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_dtype_policy(previous)


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and the backend (`keras.utils.set_random_seed`)."""
    import keras

    keras.utils.set_random_seed(int(seed))
