"""`kmodels run ... --processes N`: start one run as N local processes of JAX's distributed runtime.

For trying multi-process training on one machine, and what a cluster launcher
(`srun`, `mpirun`, a Kubernetes indexed Job) does across machines: the same
`kmodels run` command N times, each with `JAX_COORDINATOR_ADDRESS` (a free
local port), `JAX_NUM_PROCESSES` and its own `JAX_PROCESS_ID`, and
`train.distribution=data_parallel` (see `kmodels.cluster`). Process 0's
output is the command's; the others only report errors. When
one process fails or is killed, the others are stopped at once (no hang) and
the command exits non-zero; `kmodels run --resume RUN_DIR --processes N`
continues the run.

Example:
    >>> child_argv(["run", "dog_cat", "--processes", "2", "--out", "r"])
    ['run', 'dog_cat', '--out', 'r', '--set', 'train.distribution=data_parallel']
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence

from kmodels.errors import ConfigError

logger = logging.getLogger("kmodels")

#: seconds a process gets to stop on SIGTERM (one blocked in a collective cannot) before SIGKILL
GRACE_SECONDS = 5.0


def child_argv(argv: Sequence[str]) -> list[str]:
    """The `kmodels` arguments each process runs: `argv` without `--processes`, data parallel."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--processes":
            skip = True
        elif not arg.startswith("--processes="):
            out.append(arg)
    return [*out, "--set", "train.distribution=data_parallel"]


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _stop(procs: Sequence[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    for p in procs:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def launch(argv: Sequence[str], processes: int, env: Mapping[str, str] | None = None,
           resume_hint: str | None = None) -> int:
    """Run `kmodels <argv>` as `processes` local processes of one distributed run; return the exit code.

    Args:
        argv: the `kmodels` command line (with or without `--processes`).
        processes: how many processes (≥ 2).
        env: their environment (default: this one's); `KERAS_BACKEND` must be `jax`.
        resume_hint: the run directory to name in the message when a process fails.
    """
    env = dict(os.environ if env is None else env)
    if processes < 2:
        raise ConfigError(f"--processes {processes}: give 2 or more (one process needs no --processes).")
    if env.get("KERAS_BACKEND", "tensorflow") != "jax":
        raise ConfigError(f"--processes uses JAX's distributed runtime; KERAS_BACKEND is "
                          f"{env.get('KERAS_BACKEND', 'unset (tensorflow)')!r}. Run with KERAS_BACKEND=jax.")
    if any(k in env for k in ("JAX_NUM_PROCESSES", "JAX_PROCESS_ID")):
        raise ConfigError("--processes starts its own processes, but JAX_NUM_PROCESSES/JAX_PROCESS_ID are already "
                          "set (a cluster launcher's job): drop --processes, or unset them.")
    args = child_argv(argv)
    port = free_port()
    procs: list[subprocess.Popen] = []
    logger.info("Starting %d processes (coordinator 127.0.0.1:%d)", processes, port)
    # SIGTERM and Ctrl-C only set a flag: raised in the middle of starting a process, an exception
    # could lose track of it; the loop below stops every process it started, then raises.
    stop: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: stop.append(signum))
                for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for i in range(processes):
            child_env = {**env, "JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}", "JAX_NUM_PROCESSES": str(processes),
                         "JAX_PROCESS_ID": str(i)}
            procs.append(subprocess.Popen([sys.executable, "-m", "kmodels", *args], env=child_env,
                                          stdin=subprocess.DEVNULL,
                                          stdout=None if i == 0 else subprocess.DEVNULL))
        while True:
            if stop:
                _stop(procs)
                raise KeyboardInterrupt(f"signal {stop[0]}")
            codes = [p.poll() for p in procs]
            failed = [(i, c) for i, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                i, code = failed[0]
                _stop(procs)
                where = resume_hint or "RUN_DIR"
                print(f"kmodels: error: process {i} of {processes} {_describe(code)}; the other processes were "
                      f"stopped. Continue the run with: kmodels run --resume {where} --processes {processes}",
                      file=sys.stderr)
                return code if 0 < code < 128 else 1
            if all(c == 0 for c in codes):
                return 0
            time.sleep(0.2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
