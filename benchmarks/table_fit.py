"""Benchmark: how long the `tabular` task's Keras model trains against HistGradientBoosting, and its peak memory.

Time: a deterministic 10,000 x 15 table (`sklearn.datasets.make_classification`, binary), each model of
`--models` run `--repeats` times through the ordinary `kmodels.run("tabular")` with only the
gradient-boosting baseline on, interleaved. Each run reports both fit times on the same training
rows: the Keras model's `fit_seconds` (its whole `fit`, compilation included) and
`models.hist_gradient_boosting.fit_seconds`; the ratio is of the medians. The run's `history.csv` splits the
Keras time: the first epoch (which compiles the training and validation steps) and the later ones. Target (issue #28): the
default model trains in at most 3x HistGradientBoosting's time on 2 CPU cores.

Every timed run is a fresh process, as a user's `kmodels run` is: nothing an earlier run compiled or traced in
this process can help it. On JAX, runs keep their compiled steps (`kmodels.backend.compilation_cache`). There every
repeat is timed twice, interleaved: "cold" with an empty cache folder of its own (the first run of a model on a
machine: it compiles and writes the cache) and "warm" with a folder one untimed run filled (any later run of the
same model on a table of the same shape). The main table is the cold one; a second table compares both.

Memory (`--memory-rows N`, 0 to skip): the default model trained on N rows of the synthetic
`bank_transactions.csv` (the Kaggle schema) predicting `CustGender`, in a fresh process, with
its peak resident memory. Target: 1,000,000 rows complete within 4 GiB.

    python -m benchmarks.table_fit --repeats 3 --memory-rows 1000000 --json benchmarks/results/table_fit.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._harness import machine, median, peak_rss_mib, run_worker, write_json

#: Overrides by label; "default" is the tabular spec as it ships.
MODELS = {"default": {}, "mlp": {"model.name": "mlp"}, "tabm": {"model.name": "tabm"},
          # the default until session 23: no piecewise-linear bins, 30 epochs, patience 4
          "previous": {"model.piecewise_bins": 0, "train.epochs": 30, "callbacks.early_stopping.patience": 4},
          # session 23's default on this table: 16 bins per feature at the training split's quantiles
          "quantile16": {"model.piecewise_bins": 16, "model.piecewise_edges": "quantile"},
          # each feature's bins through a learned 16-unit map of its own (rtdl's MLP-PLE)
          "embed16": {"model.piecewise_embedding": 16},
          # one model: the default until session 36 on this table (`folds = "auto"` bagged up to 8,000 rows, now 30,000)
          "one_model": {"train.folds": 1}}
# HistGradientBoosting as a user would fit it, unweighted: with the net's balanced `sample_weight` (`[baselines]
# weighted`, the run's default) scikit-learn 1.9 fits it 7-9 times slower on this table (1.3 s against 0.18 s).
BASELINES_OFF = {"baselines.linear": False, "baselines.sklearn_mlp": False, "baselines.majority": False,
                 "baselines.weighted": False, "evaluate.importance_repeats": 0}


def write_table(path: Path, rows: int, features: int, seed: int = 0) -> Path:
    """A deterministic binary table of `rows` x `features` numeric columns and a text target `y`."""
    import numpy as np
    import pandas as pd
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=rows, n_features=features, n_informative=max(2, features // 2),
                               n_redundant=max(0, features // 5), flip_y=0.05, random_state=seed)
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(features)])
    frame["y"] = np.where(y == 1, "yes", "no")
    frame.to_csv(path, index=False)
    return path


def _time_one(path: Path, label: str, seed: int, out: Path) -> dict[str, float]:
    import kmodels

    start = time.perf_counter()
    r = kmodels.run("tabular", data=path, out=out, overrides={
        "data.target": "y", "train.verbose": 0, "train.seed": seed, "baselines.gradient_boosting": True,
        **BASELINES_OFF, **MODELS[label]})
    import pandas as pd

    seconds = pd.read_csv(r.run_dir / "history.csv")["seconds"].to_numpy()  # each epoch's wall time
    return {"run_seconds": time.perf_counter() - start, "keras_fit_seconds": float(r.metrics["fit_seconds"]),
            "first_epoch_seconds": float(seconds[0]),  # compilation included
            "later_epoch_seconds": float(median(list(seconds[1:]))) if len(seconds) > 1 else float("nan"),
            "hgb_fit_seconds": float(r.metrics["models"]["hist_gradient_boosting"]["fit_seconds"]),
            "epochs": int(r.metrics["epochs_run"]), "roc_auc": float(r.metrics["models"]["keras"]["roc_auc"])}


def _timed_run(table: Path, label: str, out: Path, cache: Path | None) -> dict[str, float]:
    """`_time_one` in a fresh process, with `cache` as its compiled-step cache folder (JAX) when given."""
    import keras

    env = {"KERAS_BACKEND": keras.backend.backend(), **({"KMODELS_CACHE_DIR": str(cache)} if cache else {})}
    return run_worker("benchmarks.table_fit", ["--time-worker", str(table), label, str(out)], env=env)


def _memory_worker(path: str, out: str) -> None:
    import os

    os.environ.setdefault("KERAS_BACKEND", "jax")
    import kmodels

    base = peak_rss_mib()
    start = time.perf_counter()
    r = kmodels.run("tabular", data=Path(path), out=Path(out), overrides={
        "data.target": "CustGender", "train.verbose": 0, "baselines.gradient_boosting": False, **BASELINES_OFF})
    print(json.dumps({"seconds": time.perf_counter() - start, "peak_rss_mib": peak_rss_mib(), "baseline_rss_mib": base,
                      "rows": sum(r.metrics["splits"].values()), "epochs": r.metrics["epochs_run"],
                      "roc_auc": r.metrics["models"]["keras"].get("roc_auc")}))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.table_fit", description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=10_000, help="rows of the timing table (default 10,000)")
    p.add_argument("--features", type=int, default=15, help="its numeric columns (default 15)")
    p.add_argument("--models", default="default", help=f"comma-separated, of {', '.join(MODELS)}")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--memory-rows", type=int, default=0, help="bank rows for the memory run (0: skip)")
    p.add_argument("--json", default=None, help="write results here")
    p.add_argument("--worker", nargs=2, metavar=("PATH", "OUT"), help=argparse.SUPPRESS)
    p.add_argument("--time-worker", nargs=3, metavar=("TABLE", "MODEL", "OUT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        _memory_worker(*args.worker)
        return 0
    if args.time_worker:
        from kmodels.console import setup_logging

        setup_logging(quiet=True)
        table, label, out = args.time_worker
        print(json.dumps(_time_one(Path(table), label, 42, Path(out))))
        return 0
    models = args.models.split(",")
    if unknown := [m for m in models if m not in MODELS]:
        p.error(f"unknown model(s) {unknown}; known: {', '.join(MODELS)}")
    if args.repeats < 1 or args.rows < 100 or args.features < 2:
        p.error("expected --repeats >= 1, --rows >= 100 and --features >= 2")
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        p.error("JAX_COMPILATION_CACHE_DIR is set: unset it, this benchmark times runs against cache folders of its own")
    import keras

    from kmodels.backend import compilation_cache
    from kmodels.console import setup_logging

    setup_logging(quiet=True)
    rows, memory = [], None
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        table = write_table(work / "table.csv", args.rows, args.features)
        os.environ["KMODELS_CACHE_DIR"] = str(work / "cache")
        cached = compilation_cache() is not None  # JAX, the cache not turned off
        runs: dict[str, list[dict[str, float]]] = {m: [] for m in models}
        warm: dict[str, list[dict[str, float]]] = {m: [] for m in models}
        if cached:
            for m in models:  # untimed: fills the warm cache
                _timed_run(table, m, work / f"{m}-prime", work / "cache")
        for i in range(args.repeats):  # interleaved: drift on a shared machine hits every model alike
            for m in models:  # cold: an empty cache folder of its own, so this run compiles everything
                runs[m].append(_timed_run(table, m, work / f"{m}-{i}", work / f"cold-{m}-{i}"))
                print(f"table-fit: {m} repeat {i + 1}: {runs[m][-1]}", file=sys.stderr)
                if cached:
                    warm[m].append(_timed_run(table, m, work / f"{m}-{i}-warm", work / "cache"))
                    print(f"table-fit: {m} repeat {i + 1}, warm cache: {warm[m][-1]}", file=sys.stderr)
        for m, done in runs.items():
            keras_s = median([r["keras_fit_seconds"] for r in done])
            hgb_s = median([r["hgb_fit_seconds"] for r in done])
            rows.append({"model": m, "keras_fit_median_s": keras_s, "hgb_fit_median_s": hgb_s,
                         "ratio": keras_s / hgb_s, "run_median_s": median([r["run_seconds"] for r in done]),
                         "epochs": median([r["epochs"] for r in done]), "roc_auc": median([r["roc_auc"] for r in done]),
                         "first_epoch_median_s": median([r["first_epoch_seconds"] for r in done]),
                         "later_epoch_median_s": median([r["later_epoch_seconds"] for r in done]),
                         "hgb_fit_s": [r["hgb_fit_seconds"] for r in done],
                         "keras_fit_s": [r["keras_fit_seconds"] for r in done]})
            if warm[m]:
                rows[-1].update({"warm_fit_median_s": median([r["keras_fit_seconds"] for r in warm[m]]),
                                 "warm_first_epoch_median_s": median([r["first_epoch_seconds"] for r in warm[m]]),
                                 "warm_run_median_s": median([r["run_seconds"] for r in warm[m]]),
                                 "warm_hgb_fit_median_s": median([r["hgb_fit_seconds"] for r in warm[m]]),
                                 "warm_fit_s": [r["keras_fit_seconds"] for r in warm[m]]})
        if args.memory_rows:
            from kmodels_tabular.bank_data import write_bank_csv

            bank = work / "bank_transactions.csv"
            write_bank_csv(bank, rows=args.memory_rows, seed=0)
            memory = run_worker("benchmarks.table_fit", ["--worker", str(bank), str(work / "memory-run")],
                                env={"KERAS_BACKEND": keras.backend.backend()}, timeout=7200)
            memory["rows_asked"] = args.memory_rows
    print(f"\nTraining time, {args.rows:,} x {args.features} table, {args.repeats} repeats "
          f"({keras.backend.backend()}; medians; ratio target <= 3x)")
    print("| model | Keras fit s | first epoch s (compiles) | later epochs s each | HistGradientBoosting fit s | "
          "ratio | whole run s | epochs | ROC AUC |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['keras_fit_median_s']:.2f} | {r['first_epoch_median_s']:.2f} | "
              f"{r['later_epoch_median_s']:.3f} | {r['hgb_fit_median_s']:.2f} | {r['ratio']:.1f}x | "
              f"{r['run_median_s']:.1f} | {r['epochs']:.0f} | {r['roc_auc']:.3f} |")
    if any("warm_fit_median_s" in r for r in rows):
        print("\nJAX compiled-step cache: cold (an empty cache; the table above) against warm (a filled one)")
        print("| model | cold fit s | cold first epoch s | warm fit s | warm first epoch s | warm whole run s | "
              "HistGradientBoosting fit s | warm ratio |")
        print("|---|---|---|---|---|---|---|---|")
        for r in rows:
            hgb = median([r["hgb_fit_median_s"], r["warm_hgb_fit_median_s"]])
            print(f"| {r['model']} | {r['keras_fit_median_s']:.2f} | {r['first_epoch_median_s']:.2f} | "
                  f"{r['warm_fit_median_s']:.2f} | {r['warm_first_epoch_median_s']:.2f} | {r['warm_run_median_s']:.1f} | "
                  f"{hgb:.2f} | {r['warm_fit_median_s'] / hgb:.1f}x |")
    if memory is not None:
        print(f"\nMemory: {memory['rows_asked']:,} bank rows, default model: peak RSS {memory['peak_rss_mib']:.0f} MiB "
              f"(target <= 4096), {memory['seconds']:.0f} s, {memory['epochs']} epochs, ROC AUC {memory['roc_auc']}")
    write_json(args.json, {"benchmark": "table_fit", "rows": args.rows, "features": args.features,
                           "repeats": args.repeats, "backend": keras.backend.backend(), "machine": machine(),
                           "results": rows, "memory": memory})
    return 0


if __name__ == "__main__":
    sys.exit(main())
