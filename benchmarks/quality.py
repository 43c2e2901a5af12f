"""Quality on real data: kmodels' Keras model against the best scikit-learn baseline of the same run.

`kmodels bench quality [--photos DIR] [--bank CSV] [--only NAME,...] [--json PATH]` runs the
real data sets that packages ship (always) and the ones you point it at, each through the
ordinary `kmodels.run` with the task's default spec (one seed, the task's own split), and
prints one table: data | problem | best sklearn baseline | kmodels Keras | target | met.

- penguins (palmerpenguins): `species` (multiclass) and `sex` (binary);
- scikit-learn's `load_wine` (multiclass), `load_breast_cancer` (binary), `load_diabetes`
  (regression), and `load_digits` written as PNG class folders (10 classes, images);
- `--photos DIR`: a cat/dog photo folder through `dog_cat` (e.g. the Kaggle flat layout);
- `--bank CSV`: a sample of the Kaggle bank file through `bank_gender`.

Targets: the issue's absolute ones where it set them (penguins species ≥ 0.97, wine ≥ 0.95,
digits ≥ 0.95, diabetes R2 ≥ Ridge - 0.05, photos ≥ 0.90), and for every table "Keras'
primary metric ≥ the best scikit-learn baseline's - 0.01".
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._harness import machine, write_json

PRIMARY = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "r2"}


def _write_tables(root: Path) -> dict[str, tuple[Path, str]]:
    import numpy as np
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

    out: dict[str, tuple[Path, str]] = {}
    try:
        import palmerpenguins

        palmerpenguins.load_penguins().to_csv(root / "penguins.csv", index=False)
        out["penguins species"] = (root / "penguins.csv", "species")
        out["penguins sex"] = (root / "penguins.csv", "sex")
    except ImportError:
        print("palmerpenguins is not installed: skipping the penguins rows", file=sys.stderr)
    wine = load_wine(as_frame=True)
    frame = wine.frame.drop(columns=["target"])
    frame["cultivar"] = np.asarray(wine.target_names)[wine.target]
    frame.to_csv(root / "wine.csv", index=False)
    out["wine"] = (root / "wine.csv", "cultivar")
    cancer = load_breast_cancer(as_frame=True)
    frame = cancer.frame.drop(columns=["target"])
    frame["diagnosis"] = np.asarray(cancer.target_names)[cancer.target]
    frame.to_csv(root / "breast_cancer.csv", index=False)
    out["breast cancer"] = (root / "breast_cancer.csv", "diagnosis")
    load_diabetes(as_frame=True, scaled=False).frame.to_csv(root / "diabetes.csv", index=False)
    out["diabetes"] = (root / "diabetes.csv", "target")
    return out


def _write_digits(root: Path) -> Path:
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for i, (image, target) in enumerate(zip(digits.images, digits.target, strict=True)):
        folder = root / "digits" / str(target)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((image * 255 / 16).astype(np.uint8), mode="L").save(folder / f"{i}.png")
    return root / "digits"


def _row(name: str, result: Any, seconds: float, target: str, absolute: float | None = None) -> dict[str, Any]:
    metrics = result.metrics
    kind = metrics["problem"]["kind"]
    key = PRIMARY[kind]
    models = metrics["models"]
    baselines = {k: v.get(key) for k, v in models.items() if k not in ("keras", "majority", "mean")}
    best_name = max(baselines, key=lambda k: baselines[k] if baselines[k] is not None else -1e9, default=None)
    best = baselines.get(best_name) if best_name else None
    keras_value = models["keras"].get(key)
    met = keras_value is not None and (best is None or keras_value >= best - 0.01)
    if absolute is not None:
        met = met and keras_value >= absolute
    return {"data": name, "problem": f"{kind} ({len(metrics['classes'])})" if kind != "regression" else kind,
            "metric": key, "best_sklearn": f"{best_name} {best:.3f}" if best_name else "-",
            "keras": round(keras_value, 4) if keras_value is not None else None, "target": target,
            "met": "yes" if met else "no", "seconds": f"{seconds:.1f}", "run_dir": str(result.run_dir)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="kmodels bench quality", description=__doc__.splitlines()[0])
    p.add_argument("--photos", type=Path, default=None, help="a cat/dog photo folder (dog_cat task)")
    p.add_argument("--bank", type=Path, default=None, help="a bank_transactions.csv sample (bank_gender task)")
    p.add_argument("--only", default=None, help="comma-separated row names to run (e.g. 'wine,diabetes')")
    p.add_argument("--out", type=Path, default=None, help="parent of the run directories (default: a temp folder)")
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args(argv)
    from kmodels.console import setup_logging

    setup_logging(quiet=True)
    import kmodels
    from kmodels.evaluation import format_table

    work = Path(tempfile.mkdtemp(prefix="kmodels-quality-"))
    runs = args.out or work / "runs"
    tables = _write_tables(work)
    absolute = {"penguins species": 0.97, "wine": 0.95}
    jobs: list[tuple[str, str, Path, dict[str, Any], str, float | None]] = []
    for name, (path, target) in tables.items():
        goal = (f"≥ {absolute[name]} and ≥ best - 0.01" if name in absolute else "R2 ≥ Ridge - 0.05"
                if name == "diabetes" else "≥ best - 0.01")
        jobs.append((name, "tabular", path, {"data.target": target}, goal, absolute.get(name)))
    only = set(args.only.split(",")) if args.only else None
    if only is None or "digits (images)" in only:
        jobs.append(("digits (images)", "image_classification", _write_digits(work),
                     {"images.image_size": [32, 32], "images.augment": False}, "≥ 0.95", 0.95))
    if args.photos is not None:
        jobs.append(("cat/dog photos", "dog_cat", args.photos, {}, "accuracy ≥ 0.90", None))
    if args.bank is not None:
        jobs.append(("bank sample", "bank_gender", args.bank, {}, "≥ best - 0.01", None))
    rows = []
    for name, task, path, overrides, goal, floor in jobs:
        if only is not None and name not in only:
            continue
        print(f"quality: {name} ({task}) ...", file=sys.stderr)
        start = time.perf_counter()
        result = kmodels.run(task, data=path, overrides={**overrides, "train.verbose": 0},
                             out=runs / name.replace(" ", "_").replace("/", "_").replace("(", "").replace(")", ""))
        seconds = time.perf_counter() - start
        if name == "diabetes":
            row = _row(name, result, seconds, goal)
            ridge = result.metrics["models"]["ridge"]["r2"]
            row["met"] = "yes" if row["keras"] >= ridge - 0.05 else "no"
        elif name == "cat/dog photos":
            row = _row(name, result, seconds, goal)
            row["metric"], row["keras"] = "accuracy", round(result.metrics["models"]["keras"]["accuracy"], 4)
            row["met"] = "yes" if row["keras"] >= 0.90 else "no"
        else:
            row = _row(name, result, seconds, goal, floor)
        rows.append(row)
        print(format_table([row], list(row)), file=sys.stderr)
    columns = ["data", "problem", "metric", "best_sklearn", "keras", "target", "met", "seconds"]
    print(format_table(rows, columns))
    import keras

    write_json(args.json, {"machine": machine(), "backend": keras.backend.backend(), "results": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
