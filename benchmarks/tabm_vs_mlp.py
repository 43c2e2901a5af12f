"""Side by side on the same splits: the tabular task's default `mlp`, `tabm`, and RealMLP's preprocessing.

`KERAS_BACKEND=tensorflow python -m benchmarks.tabm_vs_mlp --json benchmarks/results/quality_tabm_vs_mlp.json`
prints, per table of `kmodels bench quality`, the mean primary metric of each scikit-learn baseline
(from the first variant's runs), of each variant, and the mean seconds per run. Variants:

- `mlp`: the `tabular` spec as it ships (standard scaling);
- `previous`: the spec shipped before session 23 (no piecewise bins, 30 epochs, patience 4);
- `tabm`: the same with `model.name = "tabm"`;
- `mlp_robust`: the shipped spec with `robust_scale` + `smooth_clip` in place of `standard_scale`;
- `tabm_robust`: both;
- `tabm_ple`: `tabm` with piecewise-linear embeddings (bins: the training split's quantiles);
- `mlp_bag5`: the shipped spec with `[train] folds = 5` (five models on five folds of the training and
  validation rows, averaged);
- `mlp_wide`: the shipped spec with `model.linear = true` (wide and deep: the head sees the features too);
- `big`, `long`, `big_long`, `big_200`, `big_200_es`: capacity and training length for `randhie`, where the
  net trails the trees: 256-256 units, 100 epochs with patience 10, both, 200 epochs without early
  stopping (the last epoch kept), 200 epochs with patience 20;
- `tabm_ple48`: `tabm` with 48 piecewise-linear bins per feature;
- `mlp_ple16`, `mlp_ple48`: the shipped spec with `model.piecewise_bins = 16` or 48 and `model.raw_features = false` (the
  `mlp`'s piecewise-linear encoding of each feature in place of the feature); `mlp_ple16_raw`: 16 bins with the features themselves beside them (`model.raw_features = true`);
  `ple48_raw`: 48 such bins; `ple_raw_big`, `ple_raw_long`, `ple_raw_big_long`: `mlp_ple16_raw` with 256-256 units,
  100 epochs with patience 10, or both;
- `ple32_raw`, `ple32_tree`, `ple16_both`, `ple64_both`: 32 bins at the quantiles, 32 bins where per-feature trees
  see the target change, 16 or 64 bins half of each kind (`model.piecewise_edges`); `quantile16`: 16 bins at the quantiles, session 23's
  default on tables of at least 4,000 rows (the default now has 32, half of each kind);
- `unweighted`: `[train] class_weight = "none"` (every row weighs the same, as in scikit-learn's defaults);
- `ple_embed16`: the shipped spec with `model.piecewise_embedding = 16` (each feature's bins through a learned
  16-unit linear map and a ReLU of its own: rtdl's MLP-PLE);
- `ema99`, `ema995`: the shipped spec with `[compile] ema = 0.99` or 0.995 (an exponential moving average of the
  weights, which validation, early stopping and the saved model use);
- `drop_duplicates`: the shipped spec with `drop_duplicates` first, as `tabular` had it until session 35 (rows that
  repeat an earlier row dropped before the split; run it as the first variant for baselines on the same rows). Session
  35 measured the other way round, as variant `keep_duplicates` against the spec of the time: the same two specs;
- `bins_always`: the shipped spec with its 32 piecewise-linear bins per feature on tables of any size (`"auto"` turns
  them on from `AUTO_BINS_ROWS` rows);
- `plateau`: the shipped spec with `reduce_lr_on_plateau` (factor 0.3, patience 3) beside its early stopping;
- `wd01`, `wd02`, `wd05`: the shipped spec with `[compile] weight_decay` 0.01, 0.02 or 0.05 (Adam's decoupled weight
  decay: each step shrinks every weight by `learning_rate * weight_decay` of itself).

On classification tables each variant and baseline also records its balanced accuracy (`<name>_balanced_accuracy`).

`--tables holdout` runs the nine tables of `benchmarks.quality.HOLDOUT_TABLES` (no default was chosen on them) in
place of the others, `--tables small` the six of `SMALL_TABLES` (2,000-4,000 rows). `--bank CSV` adds a row for a sample of the Kaggle bank file through `bank_gender` (its own spec, split by
customer): `mlp` is that spec's seed network, `tabm` replaces its `[model]` with `tabm`'s defaults; the
variants that change the preprocessing or the network's options do not apply there and are skipped. The JSON is rewritten
after every table, so a run cut short keeps the tables it finished.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import kmodels
from benchmarks.quality import PRIMARY, TABLE_SETS, _write_tables
from kmodels.console import setup_logging

# the shipped preprocessing with RealMLP's scaling (until session 35 `drop_duplicates` came first, as in the shipped one)
ROBUST = {"preprocess": [{"name": n} for n in ("auto_features", "impute", "robust_scale", "smooth_clip")]}
# `tabular`'s preprocessing until session 35: rows that repeat an earlier row dropped first
WITH_DROP_DUPLICATES = {"preprocess": [{"name": n} for n in ("drop_duplicates", "auto_features", "impute",
                                                             "standard_scale")]}
VARIANTS: dict[str, dict[str, Any]] = {"mlp": {}, "tabm": {"model.name": "tabm"}, "mlp_robust": ROBUST,
                                       "tabm_robust": {"model.name": "tabm", **ROBUST},
                                       "tabm_ple": {"model.name": "tabm", "model.embedding": "piecewise"},
                                       "mlp_bag5": {"train.folds": 5}, "mlp_wide": {"model.linear": True},
                                       "big": {"model.units": [256, 256]},
                                       "long": {"train.epochs": 100, "callbacks.early_stopping.patience": 10},
                                       "big_long": {"model.units": [256, 256], "train.epochs": 100,
                                                    "callbacks.early_stopping.patience": 10},
                                       "big_200": {"model.units": [256, 256], "train.epochs": 200,
                                                   "callbacks.early_stopping.patience": 200,
                                                   "callbacks.early_stopping.restore_best_weights": False},
                                       "big_200_es": {"model.units": [256, 256], "train.epochs": 200,
                                                      "callbacks.early_stopping.patience": 20},
                                       "tabm_ple48": {"model.name": "tabm", "model.embedding": "piecewise", "model.bins": 48},
                                       "mlp_ple16": {"model.piecewise_bins": 16, "model.raw_features": False},
                                       "mlp_ple48": {"model.piecewise_bins": 48, "model.raw_features": False},
                                       "mlp_ple16_raw": {"model.piecewise_bins": 16, "model.raw_features": True},
                                       "previous": {"model.piecewise_bins": 0, "train.epochs": 30,
                                                    "callbacks.early_stopping.patience": 4},
                                       "ple_raw_big": {"model.piecewise_bins": 16, "model.raw_features": True,
                                                       "model.units": [256, 256]},
                                       "ple_raw_long": {"model.piecewise_bins": 16, "model.raw_features": True, "train.epochs": 100,
                                                        "callbacks.early_stopping.patience": 10},
                                       "ple_raw_big_long": {"model.piecewise_bins": 16, "model.raw_features": True,
                                                            "model.units": [256, 256], "train.epochs": 100,
                                                            "callbacks.early_stopping.patience": 10},
                                       "ple48_raw": {"model.piecewise_bins": 48, "model.raw_features": True},
                                       "ple32_raw": {"model.piecewise_bins": 32, "model.raw_features": True,
                                                     "model.piecewise_edges": "quantile"},
                                       "ple32_tree": {"model.piecewise_bins": 32, "model.piecewise_edges": "tree"},
                                       "ple16_both": {"model.piecewise_bins": 16, "model.piecewise_edges": "quantile+tree"},
                                       "ple64_both": {"model.piecewise_bins": 64, "model.piecewise_edges": "quantile+tree"},
                                       # session 23's default on tables of >= 4,000 rows (below them it had no bins)
                                       "quantile16": {"model.piecewise_bins": 16, "model.piecewise_edges": "quantile"},
                                       "unweighted": {"train.class_weight": "none"},
                                       "drop_duplicates": WITH_DROP_DUPLICATES,
                                       "bins_always": {"model.piecewise_bins": 32},
                                       "ple_embed16": {"model.piecewise_embedding": 16},
                                       "ema99": {"compile.ema": 0.99}, "ema995": {"compile.ema": 0.995},
                                       "wd01": {"compile.weight_decay": 0.01}, "wd02": {"compile.weight_decay": 0.02},
                                       "wd05": {"compile.weight_decay": 0.05},
                                       "plateau": {"callbacks": [
                                           {"name": "early_stopping", "monitor": "val_loss", "patience": 10,
                                            "restore_best_weights": True},
                                           {"name": "reduce_lr_on_plateau", "monitor": "val_loss", "factor": 0.3,
                                            "patience": 3}]}}


def _variant(task: str, variant: str) -> dict[str, Any] | None:
    """The overrides of `variant` for `task`; `None` where it does not apply (bank_gender has its own steps)."""
    if task == "tabular":
        return VARIANTS[variant]
    if variant == "mlp":
        return {}
    if variant == "tabm":
        return {"model": {"name": "tabm"}}  # not the seed network's units
    if variant == "mlp_bag5":
        return VARIANTS[variant]
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.tabm_vs_mlp", description=__doc__.splitlines()[0])
    p.add_argument("--only", default=None, help="comma-separated table names (default: all)")
    p.add_argument("--variants", default="mlp,tabm", help=f"comma-separated, of {', '.join(VARIANTS)}")
    p.add_argument("--seeds", type=int, default=3, help="splits per table (seeds 42, 1, 2, ...)")
    p.add_argument("--json", default=None, help="write the results here (after every table)")
    p.add_argument("--bank", type=Path, default=None, help="a bank_transactions.csv sample (bank_gender task)")
    p.add_argument("--tables", choices=TABLE_SETS, default="tuned",
                   help="tuned (default), holdout or small: the sets of `benchmarks.quality._write_tables`")
    args = p.parse_args(argv)
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        p.error(f"unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}")
    setup_logging(quiet=True)
    work = Path(tempfile.mkdtemp())
    tables = {name: ("tabular", path, target) for name, (path, target) in _write_tables(work, args.tables).items()}
    if args.bank is not None:
        tables["bank sample"] = ("bank_gender", args.bank, None)
    only = set(args.only.split(",")) if args.only else None
    seeds = [42, *range(1, args.seeds)]
    out = {}
    for name, (task, path, target) in tables.items():
        if only is not None and name not in only:
            continue
        row: dict[str, list[float]] = {}
        for i, variant in enumerate(variants):
            overrides = _variant(task, variant)
            if overrides is None:
                print(f"{name}: variant {variant} does not apply to {task}; skipped", file=sys.stderr)
                continue
            for seed in seeds:
                start = time.perf_counter()
                baselines = i == 0
                r = kmodels.run(task, data=path, out=work / f"{name}-{variant}-{seed}".replace(" ", "_"),
                                overrides={**({"data.target": target} if target else {}), "train.verbose": 0,
                                           "train.seed": seed, "evaluate.importance_repeats": 0, **overrides,
                                           "baselines.sklearn_mlp": baselines,
                                           "baselines.gradient_boosting": baselines, "baselines.linear": baselines})
                row.setdefault(f"{variant}_seconds", []).append(time.perf_counter() - start)
                kind = r.metrics["problem"]["kind"]
                key = PRIMARY[kind]
                row.setdefault(variant, []).append(r.metrics["models"]["keras"][key])
                # classification also records balanced accuracy (kmodels' own primary metric for classes)
                extra = "balanced_accuracy" if kind in ("binary", "multiclass") else None
                if extra:
                    row.setdefault(f"{variant}_{extra}", []).append(r.metrics["models"]["keras"][extra])
                if baselines:
                    for b, m in r.metrics["models"].items():
                        if b not in ("keras", "majority", "mean") and m.get(key) is not None:
                            row.setdefault(b, []).append(m[key])
                            if extra and m.get(extra) is not None:
                                row.setdefault(f"{b}_{extra}", []).append(m[extra])
        out[name] = {k: round(float(np.mean(v)), 4) for k, v in row.items()}
        out[name]["per_seed"] = {k: [round(float(x), 4) for x in v] for k, v in row.items()}
        print(name, {k: v for k, v in out[name].items() if k != "per_seed"}, flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps({"seeds": seeds, "results": out}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
