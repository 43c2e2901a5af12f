"""Backend information and seeding.

The backend is chosen with `KERAS_BACKEND` (`jax`, `tensorflow`, `torch`)
before Keras is imported. Example:

    >>> from kmodels import backend
    >>> backend.info(devices=False)["backend"] in {"jax", "tensorflow", "torch", "numpy"}
    True
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import platform
import sys
from collections.abc import Iterator
from importlib import metadata
from typing import Any

from kmodels.errors import ConfigError

logger = logging.getLogger("kmodels")

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


@contextlib.contextmanager
def distribution(kind: str = "none", batch_size: int | None = None) -> Iterator[int]:
    """Build, train and predict inside this scope to use every local device; yields the replica count.

    Entering it lists the devices and checks that `batch_size` splits evenly over
    them (a `ConfigError` otherwise), so a run that enters it first fails before
    loading any data. `"data_parallel"` uses Keras's `DataParallel` distribution on JAX and a
    `tf.distribute.MirroredStrategy` over the local GPUs (or the logical CPUs
    when there are no GPUs) on TensorFlow. Each batch of `batch_size` (the global
    batch) is split evenly across the replicas; `"none"` is a no-op. When the launcher's
    environment says this process is one of several (`kmodels.cluster.from_env`), JAX's
    distributed runtime is started first and the devices are those of every process.

    Example:
        >>> with distribution("none") as replicas:
        ...     replicas
        1
    """
    from kmodels import cluster as cluster_lib

    joined = cluster_lib.from_env()
    if kind == "none":
        if joined is not None:
            raise ConfigError(
                f"This is process {joined.process_id} of {joined.num_processes} ({joined.source}), but "
                "[train] distribution='none' would make each process train alone and write its own run. "
                "Set train.distribution=data_parallel to train one model across the processes, or start one process."
            )
        yield 1
        return
    if joined is not None:
        cluster_lib.initialize(joined)
    backend, devices = _local_devices(kind)
    _check_batch(batch_size, devices)
    if len(devices) < 2:
        logger.warning("distribution='data_parallel' with one device (%s): nothing to split. On a CPU, "
                       "XLA_FLAGS=--xla_force_host_platform_device_count=N (JAX) makes N devices.", devices[0])
    if backend == "jax":
        import keras

        # Several processes: each one's batches are already its shard (`Batches`), not Keras's to split.
        dist = keras.distribution.DataParallel(devices=devices, auto_shard_dataset=joined is None)
        logger.info("Data parallel over %d device(s): %s", len(devices), ", ".join(devices))
        with dist.scope():
            yield len(devices)
    else:
        import tensorflow as tf

        # NCCL all-reduce needs GPUs; on logical CPU devices reduce through one device.
        cross = None if "GPU" in devices[0].upper() else tf.distribute.ReductionToOneDevice()
        strategy = tf.distribute.MirroredStrategy(devices=devices, cross_device_ops=cross)
        logger.info("Data parallel (MirroredStrategy) over %d device(s): %s", len(devices), ", ".join(devices))
        with strategy.scope():
            yield strategy.num_replicas_in_sync


def _local_devices(kind: str) -> tuple[str, list[str]]:
    if kind != "data_parallel":
        raise ConfigError(f"[train] distribution={kind!r}; expected 'none' or 'data_parallel'.")
    backend = name()
    if backend == "jax":
        import keras

        return backend, list(keras.distribution.list_devices())
    if backend == "tensorflow":
        import tensorflow as tf

        local = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return backend, [d.name for d in local]
    raise ConfigError(
        f"[train] distribution='data_parallel' is supported on the jax and tensorflow backends, "
        f"not {backend!r}; set KERAS_BACKEND=jax (or tensorflow) or distribution='none'."
    )


def _check_batch(batch_size: int | None, devices: list[str]) -> None:
    replicas = len(devices)
    if batch_size is not None and batch_size % replicas:
        raise ConfigError(
            f"[train] batch_size={batch_size} does not split evenly over {replicas} devices ({', '.join(devices)}); "
            f"use a multiple of {replicas}, e.g. {batch_size + replicas - batch_size % replicas}."
        )


#: The most disk the compiled-program cache may take; JAX evicts the least recently used past it.
COMPILATION_CACHE_BYTES = 512 << 20
_cache_state: dict[str, Any] = {}


def compilation_cache() -> str | None:
    """On JAX, keep compiled training, validation and prediction steps in `$KMODELS_CACHE_DIR/xla`
    (default `~/.cache/kmodels/xla`), so a later run of the same model on data of the same shape loads
    them instead of compiling again; returns the directory, or `None` when the cache is not used.

    Runs and the commands that load a model call it. On a 10,000-row table the first epoch, which
    compiles, drops from about 0.8 s to about 0.15 s on a second run (`kmodels bench table-fit`).
    Only a private directory is used: it is created with mode 0700, and one that another user owns
    or others may write is refused with a warning (a cached program is code that runs).
    `KMODELS_COMPILATION_CACHE=0` turns it off; a cache directory you set for JAX yourself
    (`JAX_COMPILATION_CACHE_DIR`) is kept, with your settings. Other backends: `None`.

    Example:
        >>> import os
        >>> os.environ["KMODELS_COMPILATION_CACHE"] = "0"
        >>> compilation_cache() is None
        True
        >>> del os.environ["KMODELS_COMPILATION_CACHE"]
    """
    if os.environ.get("KMODELS_COMPILATION_CACHE", "1").strip().lower() in {"0", "false", "no", "off"}:
        return None
    if name() != "jax":
        return None
    import jax

    if "dir" in _cache_state:
        return _cache_state["dir"]
    own = jax.config.jax_compilation_cache_dir
    if own:  # the user's own JAX cache, as they configured it
        _cache_state["dir"] = str(own)
        return _cache_state["dir"]
    from kmodels.data.cache import cache_dir

    path = cache_dir() / "xla"
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = path.stat()
    except OSError as exc:
        logger.warning("Not caching compiled steps: cannot create %s (%s).", path, exc)
        _cache_state["dir"] = None
        return None
    if (hasattr(os, "getuid") and st.st_uid != os.getuid()) or st.st_mode & 0o022:
        logger.warning("Not caching compiled steps in %s: it is owned by another user or writable by others, and a "
                       "cached program runs as code. Make it yours with mode 0700, or set KMODELS_CACHE_DIR.", path)
        _cache_state["dir"] = None
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # small tables compile in under a second
    try:
        import filelock  # noqa: F401  (JAX's size cap needs it; it comes with kmodels[jax])
    except ImportError:
        logger.info("filelock is not installed: the compiled-step cache in %s has no size cap.", path)
    else:
        jax.config.update("jax_compilation_cache_max_size", COMPILATION_CACHE_BYTES)
    _cache_state["dir"] = str(path)
    return _cache_state["dir"]


@contextlib.contextmanager
def tensorflow_unimported() -> Iterator[None]:
    """Keras code inside this scope does not import TensorFlow when the backend is another and TensorFlow
    is not imported yet.

    Keras checks `tf.available` (which imports TensorFlow when it is installed) before asking whether an
    object is a `tf.TensorShape` or `tf.DType` while serializing a model, and to seed TensorFlow in
    `keras.utils.set_random_seed`. On JAX that import was 2.3 s of a 9 s table run on 2 CPU cores
    (benchmarks/README.md), for checks that cannot succeed: no TensorFlow object exists before TensorFlow is imported. Inside the
    scope Keras is told TensorFlow is not available; outside it, Keras asks again.

    Example:
        >>> import sys
        >>> from keras.src.utils import module_utils
        >>> imported = "tensorflow" in sys.modules  # on the TensorFlow backend, always
        >>> with tensorflow_unimported():
        ...     said = module_utils.tensorflow.available
        >>> said == imported == ("tensorflow" in sys.modules)
        True
    """
    try:
        from keras.src.utils import module_utils
    except ImportError:  # a Keras without it: nothing to do
        yield
        return
    lazy = getattr(module_utils, "tensorflow", None)
    if name() == "tensorflow" or "tensorflow" in sys.modules or getattr(lazy, "_available", False) is not None:
        yield
        return
    lazy._available = False
    try:
        yield
    finally:
        lazy._available = None  # Keras asks again next time (and finds it, if something imported it inside)


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """While it lasts, Python's cyclic garbage collector skips the objects that existed when it began
    (`gc.freeze`); they are handed back to it (`gc.unfreeze`) when it ends, however it ends.

    A run starts with Keras, the backend and pandas imported: some 350,000 objects, which every full
    collection walks again. Tracing and compiling a training step makes many short-lived objects, so
    collections come often, and on a 10,000-row table they were about a seventh of a warm fit (0.2 of
    1.3 s on JAX; `kmodels bench table-fit`, benchmarks/README.md). Objects made inside the scope are collected as usual, so a long
    run does not hold on to its garbage. Where something else froze objects first (a forking server
    does), or the collector is off, the scope changes nothing.

    Example:
        >>> import gc
        >>> with frozen_heap():
        ...     inside = gc.get_freeze_count() > 0
        >>> inside, gc.get_freeze_count()
        (True, 0)
    """
    if not gc.isenabled() or gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def set_seed(seed: int) -> None:
    """Seed Python, NumPy, Keras and the backend (`keras.utils.set_random_seed`).

    On JAX and torch, TensorFlow is seeded only if it is already imported (Keras imports it to seed it,
    about 2.3 s; see `tensorflow_unimported`): nothing in a run uses it there.
    """
    import keras

    with tensorflow_unimported():
        keras.utils.set_random_seed(int(seed))
