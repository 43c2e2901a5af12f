"""Image recipe ablation: an image task run on one folder per seed and variant, test accuracy side by side.

`kmodels bench photo-ablation --data DIR --seeds 42,1,2 --variant cutmix="images.cutmix=1.0 images.cutout=0"
--json-lines benchmarks/results/photo_recipe_ablation.jsonl` runs `kmodels.run(TASK, data=DIR, overrides=...)`
one run at a time, in this process: for each seed, the shipped spec (`default`, unless `--no-default`) and
each variant, with `train.seed` set to the seed (which also draws the held-back test split, so the runs of
one seed are scored on the same photos). After every run it appends one JSON line (the schema of
`benchmarks/results/photo_recipe_ablation.jsonl`: task, overrides, test accuracy, ROC AUC, seconds, run
directory, date, note; and the backend and the checkout's commit, which says what `default` was) and, at
the end, prints per variant the accuracy on each seed, the mean ± standard error over seeds and, where
`default` ran on the same seeds, the mean paired difference against it.

A run whose line is already in `--json-lines` is not run again when the line's backend, variant and resolved spec
(`spec`: a digest of `kmodels show`'s TOML for the task with the line's overrides, which names the task and the
resolved data folder too) are this run's: its line is reused, so a loop cut short resumes where it stopped (`--rerun` runs it again, to measure repeats).
Each run keeps its run directory under `--out-root` (new; nothing is overwritten), so `kmodels bench tta` and
`kmodels bench photo-curve` can re-score and plot them. A run takes 18-25 minutes on the 2,002 real photos on
2 CPU cores with the shipped `dog_cat` recipe; without `--data` the task's embedded synthetic photos are used
(the smoke test).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._harness import ROOT


def _variant(text: str) -> tuple[str, dict[str, Any]]:
    """`NAME=KEY=VALUE [KEY=VALUE ...]` → (NAME, overrides)."""
    from kmodels.spec import parse_override

    name, sep, sets = text.partition("=")
    if not sep or not name or not sets.strip():
        raise argparse.ArgumentTypeError(f"--variant {text!r}: expected NAME=\"KEY=VALUE [KEY=VALUE ...]\", "
                                         "e.g. cutmix=\"images.cutmix=1.0 images.cutout=0\"")
    return name, dict(parse_override(item) for item in sets.split())


def spec_digest(task: str, overrides: dict[str, Any], data: str | None) -> str:
    """A digest of the fully resolved spec a run would use: equal digests train the same recipe. A line is keyed on
    this, not on its overrides alone, because `default` means whatever the task ships when it runs."""
    import hashlib

    import kmodels

    toml = kmodels.load_spec(task, overrides, data=data).to_toml()
    return hashlib.sha256(toml.encode()).hexdigest()[:16]


def _mean_se(values: list[float], signed: bool = False) -> str:
    """`mean ± standard error` over `values` (the mean alone for one value), three decimals."""
    mean = sum(values) / len(values)
    text = f"{mean:+.3f}" if signed else f"{mean:.3f}"
    if len(values) < 2:
        return text
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return f"{text} ± {math.sqrt(var / len(values)):.3f}"


def summary(lines: list[dict[str, Any]], seeds: list[int]) -> str:
    """A markdown table of the runs in `lines` (one per variant and seed): accuracy (ROC AUC, binary problems) per
    seed, mean ± SE, and the mean paired difference against the `default` variant on the seeds both ran.
    Variants that ran on some of the seeds only are averaged over those.

    Example:
        >>> rows = [{"variant": v, "seed": s, "acc": a, "auc": 0.9, "s": 60.0}
        ...         for v, s, a in [("default", 1, 0.8), ("default", 2, 0.9), ("x", 1, 0.85), ("x", 2, 0.9), ("y", 2, 0.8)]]
        >>> for line in summary(rows, [1, 2]).splitlines()[-2:]:
        ...     print(line)
        | x | 0.850 (0.900) | 0.900 (0.900) | 0.875 ± 0.025 | +0.025 ± 0.025 | 1.0 |
        | y |  | 0.800 (0.900) | 0.800 | -0.100 | 1.0 |
    """
    by = {(r["variant"], r["seed"]): r for r in lines}
    variants = list(dict.fromkeys(r["variant"] for r in lines))
    head = ["variant", *[f"seed {s}" for s in seeds], "mean ± SE", "− default (paired)", "minutes a run"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for v in variants:
        runs = [by.get((v, s)) for s in seeds]
        cells = ["" if not r else f"{r['acc']:.3f}" if r.get("auc") is None else f"{r['acc']:.3f} ({r['auc']:.3f})"
                 for r in runs]
        accs = [r["acc"] for r in runs if r]
        paired = [by[(v, s)]["acc"] - by[("default", s)]["acc"] for s in seeds
                  if (v, s) in by and ("default", s) in by]
        diff = "" if v == "default" or not paired else _mean_se(paired, signed=True)
        minutes = sum(r["s"] for r in runs if r) / len(accs) / 60
        out.append("| " + " | ".join([v, *cells, _mean_se(accs), diff, f"{minutes:.1f}"]) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="kmodels bench photo-ablation", description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=None, help="the image folder (default: the task's embedded photos)")
    p.add_argument("--task", default="dog_cat", help="an image task (default: dog_cat)")
    p.add_argument("--seeds", default="42,1,2", help="comma-separated seeds, each its own split (default: 42,1,2)")
    p.add_argument("--variant", dest="variants", action="append", type=_variant, default=[],
                   metavar='NAME="K=V [K=V ...]"',
                   help="a variant of the shipped spec: overrides separated by spaces, no space inside a value "
                        "(model.filters=[32,64]); repeatable")
    p.add_argument("--no-default", action="store_true", help="do not run the shipped spec itself")
    p.add_argument("--set", dest="common", action="append", default=[], metavar="K=V",
                   help="an override for every run, the default's too (e.g. train.epochs=60)")
    p.add_argument("--json-lines", type=Path, default=None, help="append one JSON line per run to this file")
    p.add_argument("--out-root", type=Path, default=None,
                   help="where the run directories go (must not exist; default: a new temporary folder)")
    p.add_argument("--rerun", action="store_true", help="run again what --json-lines already has")
    p.add_argument("--note", default="", help="free text stored with every line (machine, load, session)")
    args = p.parse_args(argv)
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        p.error(f"--seeds {args.seeds!r}: expected comma-separated integers, e.g. 42,1,2")
    if args.data is not None and not args.data.is_dir():
        p.error(f"--data {args.data}: not a folder")
    if args.out_root is not None and args.out_root.exists():
        p.error(f"--out-root {args.out_root} exists; pick a new path (nothing is overwritten)")
    from kmodels.spec import parse_override

    common = dict(parse_override(item) for item in args.common)
    variants = ([] if args.no_default else [("default", {})]) + args.variants
    if not variants:
        p.error("nothing to run: give --variant, or drop --no-default")
    if len({name for name, _ in variants}) != len(variants):
        p.error("variant names must differ (and 'default' is the shipped spec's)")
    root = args.out_root or Path(tempfile.mkdtemp(prefix="photo_ablation_"))

    import keras

    import kmodels

    data = str(args.data.resolve()) if args.data else "embedded"  # one key however the folder was typed
    try:  # what `default` meant: the checkout's commit (None outside a git checkout)
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                check=False).stdout.strip() or None
    except OSError:
        commit = None
    done = {}
    if args.json_lines and args.json_lines.exists() and not args.rerun:
        for number, text in enumerate(args.json_lines.read_text().splitlines(), 1):
            try:
                old = json.loads(text) if text.strip() else {}
            except json.JSONDecodeError as err:
                p.error(f"--json-lines {args.json_lines}, line {number}: not JSON ({err.msg} at column {err.colno}); "
                        "mend or delete that line, or give another file")
            if isinstance(old, dict) and "variant" in old and "spec" in old:  # lines without a digest: not reused
                done[(old.get("backend"), old["variant"], old["spec"])] = old
    lines = []
    for seed in seeds:
        for name, over in variants:
            overrides = {**common, **over, "train.seed": seed}
            digest = spec_digest(args.task, overrides, data if args.data else None)
            key = (keras.backend.backend(), name, digest)  # the digest covers the task and the resolved data folder
            if key in done:
                print(f"{name}, seed {seed}: already in {args.json_lines}, not run again", file=sys.stderr)
                lines.append(done[key])
                continue
            out = root / f"{name}_s{seed}"
            root.mkdir(parents=True, exist_ok=True)  # checked to be new above; made when the first run starts
            start = time.perf_counter()
            result = kmodels.run(args.task, data=args.data, overrides=overrides, out=out)
            keras_metrics = result.metrics["models"]["keras"]
            line = {"task": args.task, "variant": name, "seed": seed, "ov": overrides,
                    "acc": keras_metrics.get("accuracy"), "auc": keras_metrics.get("roc_auc"),
                    "s": round(time.perf_counter() - start, 1), "dir": str(out),
                    "data": data, "date": time.strftime("%Y-%m-%d"), "backend": keras.backend.backend(), "commit": commit, "spec": digest,
                    "note": args.note}
            lines.append(line)
            if args.json_lines:
                with args.json_lines.open("a") as fh:
                    fh.write(json.dumps(line) + "\n")
            print(json.dumps(line), file=sys.stderr, flush=True)
    print(summary(lines, seeds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
