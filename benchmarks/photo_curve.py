"""Accuracy against minutes: validation accuracy per epoch of finished image runs, at the wall time it was reached.

`kmodels bench photo-curve RUN_DIR[=LABEL] ... --out benchmarks/results/photo_curve.png` reads each run's
`history.csv` (`seconds` per epoch, `val_accuracy`) and `metrics.json` (the test accuracy of the saved
model, drawn as a marker at the end of training), and draws one curve per run. Runs made before
`history.csv` had `seconds` are refused by name.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="kmodels bench photo-curve", description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="run directories, each optionally followed by =LABEL")
    p.add_argument("--out", type=Path, required=True, help="the PNG to write (must not exist)")
    args = p.parse_args(argv)
    if args.out.exists():
        p.error(f"{args.out} exists; pick another path (nothing is overwritten)")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for item in args.runs:
        path, _, label = item.partition("=")
        run = Path(path)
        history = pd.read_csv(run / "history.csv")
        if "seconds" not in history or "val_accuracy" not in history:
            p.error(f"{run / 'history.csv'} has no 'seconds' or 'val_accuracy' column: rerun it with this kmodels")
        minutes = np.cumsum(history["seconds"].to_numpy()) / 60
        line, = ax.plot(minutes, history["val_accuracy"], label=label or run.name)
        test = json.loads((run / "metrics.json").read_text())["models"]["keras"].get("accuracy")
        if test is not None:
            ax.plot([minutes[-1]], [test], marker="*", markersize=12, color=line.get_color())
    ax.set_xlabel("minutes of training (2 CPU cores)")
    ax.set_ylabel("validation accuracy")
    ax.set_title("star: test accuracy of the saved model", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
