"""Several processes training one model: JAX's distributed runtime, started from the launcher's environment.

A cluster launcher (SLURM's `srun`, Open MPI's `mpirun`, a Kubernetes indexed
Job, or `kmodels run ... --processes N` on one machine) starts the same
`kmodels run` command once per process. Each process finds its place in the
environment:

| variables | set by |
|---|---|
| `JAX_COORDINATOR_ADDRESS` (host:port of process 0), `JAX_NUM_PROCESSES`, `JAX_PROCESS_ID` | you, a Kubernetes Job, `--processes` |
| `SLURM_NTASKS` > 1 with `SLURM_PROCID` (JAX derives the coordinator from the node list) | `srun` |
| `OMPI_COMM_WORLD_SIZE` > 1 with `OMPI_COMM_WORLD_RANK` | `mpirun` |

Under `[train] distribution = "data_parallel"` the run then calls
`jax.distributed.initialize` (CPU collectives over gloo) and trains with
Keras's `DataParallel` over every process's devices. Each process feeds only
its slice of every global batch (`kmodels.data.batches.Batches`), process 0
writes the run directory and the console report, and the others work in a
private scratch copy that is removed when they finish and report only errors.
Test predictions are made on each process's shard and gathered, so metrics
cover the whole test split.

Example:
    >>> from_env({"JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234", "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "1"})
    Cluster(process_id=1, num_processes=2, coordinator='10.0.0.1:1234', source='JAX_* variables')
    >>> from_env({}) is None
    True
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from kmodels.errors import ConfigError, RunError

logger = logging.getLogger("kmodels")

_current: Cluster | None = None


@dataclass(frozen=True)
class Cluster:
    """This process's place among the processes of one run.

    Attributes:
        process_id: 0 ... num_processes - 1; process 0 writes the run directory.
        num_processes: how many processes train the model together.
        coordinator: `host:port` of process 0's coordination service, or `None` when JAX
            derives it from the cluster (SLURM, Open MPI).
        source: which environment variables described the cluster.
    """

    process_id: int
    num_processes: int
    coordinator: str | None
    source: str

    @property
    def writer(self) -> bool:
        """Whether this process writes the run directory (process 0)."""
        return self.process_id == 0


def _int(env: Mapping[str, str], key: str) -> int:
    value = env[key]
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{key}={value!r} is not an integer.") from None


def from_env(env: Mapping[str, str] | None = None) -> Cluster | None:
    """The cluster this process belongs to, from the launcher's environment; `None` for a single process."""
    env = os.environ if env is None else env
    if "JAX_NUM_PROCESSES" in env:
        n = _int(env, "JAX_NUM_PROCESSES")
        if n <= 1:
            return None
        missing = [k for k in ("JAX_COORDINATOR_ADDRESS", "JAX_PROCESS_ID") if not env.get(k)]
        if missing:
            raise ConfigError(f"JAX_NUM_PROCESSES={n} but {' and '.join(missing)} not set: every process needs "
                              "the coordinator's host:port and its own id 0..N-1.")
        pid = _int(env, "JAX_PROCESS_ID")
        if not 0 <= pid < n:
            raise ConfigError(f"JAX_PROCESS_ID={pid} is outside 0..{n - 1} (JAX_NUM_PROCESSES={n}).")
        return Cluster(pid, n, env["JAX_COORDINATOR_ADDRESS"], "JAX_* variables")
    if "SLURM_NTASKS" in env and "SLURM_PROCID" in env and "SLURM_STEP_ID" in env:
        n = _int(env, "SLURM_NTASKS")
        return Cluster(_int(env, "SLURM_PROCID"), n, None, "SLURM") if n > 1 else None
    if "OMPI_COMM_WORLD_SIZE" in env and "OMPI_COMM_WORLD_RANK" in env:
        n = _int(env, "OMPI_COMM_WORLD_SIZE")
        return Cluster(_int(env, "OMPI_COMM_WORLD_RANK"), n, None, "Open MPI") if n > 1 else None
    return None


def current() -> Cluster | None:
    """The cluster this process joined (`initialize`), or `None` when it trains alone."""
    return _current


def is_writer() -> bool:
    """Whether this process writes the run directory: it trains alone, or it is process 0."""
    return _current is None or _current.writer


def shard() -> tuple[int, int]:
    """(this process's index, process count): `(0, 1)` for a single process."""
    return (0, 1) if _current is None else (_current.process_id, _current.num_processes)


def initialize(cluster: Cluster) -> None:
    """Join the cluster: `jax.distributed.initialize` with CPU collectives over gloo (once per process)."""
    global _current
    if _current is not None:
        if _current != cluster:
            raise RunError(f"This process already joined {_current}; it cannot join {cluster} as well.")
        return
    import keras

    if keras.backend.backend() != "jax":
        raise ConfigError(f"{cluster.num_processes} processes ({cluster.source}) need the JAX backend's distributed "
                          f"runtime; this process runs {keras.backend.backend()!r}. Set KERAS_BACKEND=jax "
                          "(TensorFlow's MultiWorkerMirroredStrategy is not supported).")
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    kwargs: dict[str, Any] = {}
    if cluster.coordinator is not None:
        kwargs = {"coordinator_address": cluster.coordinator, "num_processes": cluster.num_processes,
                  "process_id": cluster.process_id}
    try:
        jax.distributed.initialize(**kwargs)
    except RuntimeError as exc:
        raise RunError(f"Could not join the cluster ({cluster.source}, process {cluster.process_id} of "
                       f"{cluster.num_processes}): {exc}. The run must start in a fresh process, before "
                       "anything else uses JAX.") from None
    _current = cluster
    if not cluster.writer and logger.getEffectiveLevel() > logging.DEBUG:
        logger.setLevel(logging.ERROR)  # process 0 reports the run; the others only their errors
    logger.info("Process %d of %d (%s): %d local device(s), %d in all", cluster.process_id, cluster.num_processes,
                cluster.source, jax.local_device_count(), jax.device_count())


def barrier(name: str) -> None:
    """Wait until every process of the cluster reaches `barrier(name)`; a no-op for a single process."""
    if _current is None:
        return
    from jax.experimental import multihost_utils

    multihost_utils.sync_global_devices(name)


@contextlib.contextmanager
def writer_first(name: str) -> Iterator[None]:
    """Process 0 runs the block first, the others after it: for work that fills a shared cache.

    On one machine (or a shared `$KMODELS_CACHE_DIR`) the others then find what process 0
    cached, instead of all doing the same work at once.
    """
    if not is_writer():
        barrier(f"{name}:writer-done")
    yield
    if _current is not None and is_writer():
        barrier(f"{name}:writer-done")


def check_same(what: str, value: str) -> None:
    """Raise a `RunError` unless every process computed the same `value` (e.g. its splits' fingerprint).

    Processes that disagree on the data would feed batches of different splits into one model.
    """
    if _current is None:
        return
    import hashlib

    from jax.experimental import multihost_utils

    digest = np.frombuffer(hashlib.sha256(value.encode()).digest()[:8], dtype=np.int64)
    every = np.asarray(multihost_utils.process_allgather(digest)).reshape(-1)
    differ = [i for i, d in enumerate(every) if d != every[0]]
    if differ:
        raise RunError(f"Processes {differ} of {_current.num_processes} see other {what} than process 0. Every "
                       "process must read the same data: put it on a shared file system and do not change it "
                       "while the run starts.")


def gather_rows(local: np.ndarray, positions: np.ndarray, n: int) -> np.ndarray:
    """Assemble the (n, ...) array whose rows `positions` this process computed, from every process.

    Each process passes its own rows and their positions in the whole array; positions
    at or past `n` (padding) are dropped. A single process gets its rows back in place.
    """
    local = np.asarray(local)
    positions = np.asarray(positions, dtype=np.int64)
    if _current is not None:
        from jax.experimental import multihost_utils

        local = np.asarray(multihost_utils.process_allgather(local, tiled=True))
        positions = np.asarray(multihost_utils.process_allgather(positions, tiled=True))
    keep = positions < n
    out = np.empty((n, *local.shape[1:]), dtype=local.dtype)
    out[positions[keep]] = local[keep]
    return out


def local_copy(model: Any) -> Any:
    """A copy of `model` on this process's devices alone, with its trained weights.

    A model trained across processes holds arrays that span every process, and Keras cannot
    turn its predictions into NumPy; each process predicts its shard with this copy instead.
    The copy is built outside the run's `DataParallel` scope; predict with it outside too
    (`without_distribution`). Its initial values, replaced at once, are drawn with NumPy
    (`host_initialized`): on JAX, Keras's would compile a random program per weight shape.
    """
    import keras

    from kmodels.initializers import host_initialized

    weights = model.get_weights()  # replicated: every process holds the whole value
    with without_distribution(), host_initialized():
        copy = keras.models.clone_model(model)
        copy.set_weights(weights)
    return copy


@contextlib.contextmanager
def without_distribution() -> Iterator[None]:
    """Run the block without the global Keras distribution (for `local_copy` models)."""
    import keras

    previous = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(previous)
