"""Benchmark: wall time of the CLI's quick commands in fresh processes, next to `import keras`.

Each command runs `--repeats` times per backend in a new Python process (what a
user's shell does); the table shows the median and the range, and the target
where the project set one (`--help` and `--version` 0.5 s; `list` and `show`
1.5 s on TensorFlow).

    python -m benchmarks.startup --backends tensorflow,jax --repeats 5 \\
        --json benchmarks/results/startup.json
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from benchmarks._harness import machine, median, write_json

#: label -> (argv after `python`, target seconds on TensorFlow or None)
COMMANDS: dict[str, tuple[list[str], float | None]] = {
    "kmodels --help": (["-m", "kmodels.cli", "--help"], 0.5),
    "kmodels --version": (["-m", "kmodels.cli", "--version"], 0.5),
    "kmodels list": (["-m", "kmodels.cli", "list"], 1.5),
    "kmodels show dog_cat": (["-m", "kmodels.cli", "show", "dog_cat"], 1.5),
    "kmodels info": (["-m", "kmodels.cli", "info"], None),
    'python -c "import keras"': (["-c", "import keras"], None),
}


def time_command(argv: list[str], backend: str, repeats: int) -> list[float]:
    env = {**os.environ, "KERAS_BACKEND": backend}
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, *argv], env=env, capture_output=True, text=True, timeout=300)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise RuntimeError(f"{argv} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="kmodels bench startup", description=__doc__.splitlines()[0])
    p.add_argument("--backends", default="tensorflow,jax", help="comma-separated KERAS_BACKEND values")
    p.add_argument("--repeats", type=int, default=5, help="fresh processes per command (median reported)")
    p.add_argument("--commands", default=None, help="comma-separated subset of the labels, e.g. 'kmodels --help'")
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args(argv)
    commands = COMMANDS if args.commands is None else {k: COMMANDS[k] for k in args.commands.split(",")}
    rows = []
    for backend in args.backends.split(","):
        for label, (cmd, target) in commands.items():
            times = time_command(cmd, backend, args.repeats)
            goal = target if backend == "tensorflow" else None
            rows.append({"backend": backend, "command": label, "median_s": median(times), "min_s": min(times),
                         "max_s": max(times), "target_s": goal, "met": None if goal is None else median(times) <= goal})
    print(f"\nstart-up wall time, {args.repeats} fresh processes each")
    print("| backend | command | median s (min-max) | target | met |")
    print("|---|---|---|---|---|")
    for r in rows:
        target = "" if r["target_s"] is None else f"<= {r['target_s']}"
        met = "" if r["met"] is None else ("yes" if r["met"] else "no")
        print(f"| {r['backend']} | {r['command']} | {r['median_s']:.2f} ({r['min_s']:.2f}-{r['max_s']:.2f}) "
              f"| {target} | {met} |")
    write_json(args.json, {"benchmark": "startup", "repeats": args.repeats, "machine": machine(), "results": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
