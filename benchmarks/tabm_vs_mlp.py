"""Side by side: the tabular task's default `mlp` against `tabm`, on the same splits (seeds 42, 1, 2).

`KERAS_BACKEND=tensorflow python -m benchmarks.tabm_vs_mlp benchmarks/results/quality_tabm_vs_mlp.json`
prints, per table of `kmodels bench quality`, the mean primary metric of each scikit-learn baseline
(from the mlp runs), of `mlp` and of `tabm`, and the mean seconds per run.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import kmodels
from benchmarks.quality import PRIMARY, _write_tables
from kmodels.console import setup_logging


def main(out_path: str) -> None:
    setup_logging(quiet=True)
    work = Path(tempfile.mkdtemp())
    tables = _write_tables(work)
    out = {}
    for name, (path, target) in tables.items():
        row = {}
        for model in ("mlp", "tabm"):
            vals, secs = [], []
            for seed in (42, 1, 2):
                t = time.perf_counter()
                r = kmodels.run("tabular", data=path, out=work / f"{name}-{model}-{seed}".replace(" ", "_"),
                                overrides={"data.target": target, "train.verbose": 0, "train.seed": seed, "model.name": model,
                                           "baselines.sklearn_mlp": model == "mlp", "baselines.gradient_boosting": model == "mlp",
                                           "baselines.linear": model == "mlp"})
                secs.append(time.perf_counter() - t)
                key = PRIMARY[r.metrics["problem"]["kind"]]
                vals.append(r.metrics["models"]["keras"][key])
                if model == "mlp":
                    for b, m in r.metrics["models"].items():
                        if b not in ("keras", "majority", "mean") and m.get(key) is not None:
                            row.setdefault(b, []).append(m[key])
            row[model] = vals
            row[f"{model}_seconds"] = secs
        row = {k: round(float(np.mean(v)), 4) for k, v in row.items()}
        out[name] = row
        print(name, row, flush=True)
    Path(out_path).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
