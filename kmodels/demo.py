"""`python -m kmodels.demo TASK...`: run tasks on their embedded data, then a summary table.

This is what `make run` calls. Each task runs with its shipped spec, plus the task's
`demo_overrides` (smaller settings for the embedded data) and then `--set`, into
`runs/<task>/<UTC time>/`; a failing task is reported and the others still run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time

from kmodels.console import import_backend_quietly, setup_logging
from kmodels.evaluation import format_table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m kmodels.demo", description=__doc__.splitlines()[0])
    p.add_argument("tasks", nargs="+", help="registered task names")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V")
    args = p.parse_args(argv)
    setup_logging(quiet=False)
    import_backend_quietly()  # no absl/oneDNN start-up lines on stderr (the CLI does the same)
    import kmodels

    rows, status = [], 0
    for task in args.tasks:
        start = time.perf_counter()
        try:
            with contextlib.redirect_stdout(sys.stderr):  # Keras's progress bars: progress, not results
                overrides = [f"{k}={json.dumps(v)}" for k, v in kmodels.registry.tasks.get(task).demo_overrides.items()]
                result = kmodels.run(task, overrides=overrides + args.overrides or None)
        except kmodels.KModelsError as exc:
            print(f"kmodels: error: {task}: {exc}", file=sys.stderr)
            rows.append({"task": task, "model": "FAILED"})
            status = 1
            continue
        verdict = "".join(f"{line}\n" for line in result.metrics.get("verdict", []))
        print(f"\n{task}: test-split results\n{result.markdown}\n{verdict}")
        m = result.metrics
        for name, metrics in m["models"].items():
            rows.append({"task": task, "model": name, "accuracy": metrics.get("accuracy"),
                         "balanced_accuracy": metrics.get("balanced_accuracy"), "roc_auc": metrics.get("roc_auc"),
                         "seconds": f"{time.perf_counter() - start:.1f}" if name == m["primary"] else None,
                         "run_dir": str(result.run_dir) if name == m["primary"] else ""})
    print("Summary (test splits of the embedded synthetic data; see README 'Limits')")
    print(format_table(rows, ["task", "model", "accuracy", "balanced_accuracy", "roc_auc", "seconds", "run_dir"]))
    return status


if __name__ == "__main__":
    sys.exit(main())
