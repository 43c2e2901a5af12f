"""Test-time augmentation, measured after training: a finished image run's network re-scored on its own test split
with each `[images] tta` setting.

`kmodels bench tta RUN_DIR ... [--views none,flip,flip_translate] [--json OUT]` rebuilds each run's task from its
`spec.toml` (its data path, or `--data DIR` when the data has moved), splits the data again with the run's seed, and
refuses a run whose data no longer has the fingerprint its `metrics.json` recorded: a different test split would
make the numbers meaningless. It then takes the network out of the saved model (the `model.keras` of a run with
`tta = "flip"` averages the network over two views) and scores it under each view set with the problem's primary
metric (and accuracy) at the run's decision threshold, timing the prediction. No training: the views cost test time only, so a
run of any setting measures them all on one network. Prints one line per run, size and view set; `--json` writes them.

`--sizes 144,160,176` also scores each run with its test photos decoded at other sizes than it trained at (the
"FixRes" effect, Touvron et al. 2019: a network trained on zoomed crops can test better on larger images), the
network rebuilt around a larger or smaller input with the same weights; only networks that pool globally (every
bundled image model) can be rebuilt that way.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

VIEWS = ("none", "flip", "flip_translate")


def network(model: Any) -> Any:
    """The network inside a saved image model: the one nested model of a test-time-augmentation wrapper
    (`kmodels_vision.task.finish_model`), else the model itself."""
    import keras

    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    averaged = any(isinstance(layer, keras.layers.Average) for layer in model.layers)
    return nested[0] if len(nested) == 1 and averaged else model


def at_size(net: Any, size: tuple[int, int]) -> Any:
    """`net` with the same weights around a `size` (height, width) input: a fully convolutional network that pools
    globally computes at any size; one whose weights depend on the input size cannot be rebuilt."""
    import keras

    from kmodels.errors import ConfigError

    if tuple(net.input_shape[1:3]) == tuple(size):
        return net
    config = net.get_config()
    inputs = [layer for layer in config.get("layers", []) if layer["class_name"] == "InputLayer"]
    if len(inputs) != 1:
        raise ConfigError(f"--sizes: {net.name} is not a one-input functional network; it cannot be rebuilt at {size}")
    channels = net.input_shape[-1]
    inputs[0]["config"]["batch_shape"] = [None, *size, channels]
    try:
        rebuilt = keras.Model.from_config(config)
        rebuilt.set_weights(net.get_weights())
    except ValueError as e:
        raise ConfigError(f"--sizes: {net.name} cannot be rebuilt at {size[0]}x{size[1]} ({e}); only networks that "
                          "pool globally compute at another input size") from e
    return rebuilt


def score_run(run: Path, views: list[str], data: Path | None,
              sizes: list[int] | None = None) -> list[dict[str, Any]]:
    import keras
    from kmodels_vision.options import with_test_time_views

    from kmodels import registry
    from kmodels.errors import DataError
    from kmodels.evaluation.metrics import fingerprint
    from kmodels.spec import load_spec
    from kmodels.task.context import RunContext

    metrics = json.loads((run / "metrics.json").read_text())
    net = network(keras.saving.load_model(run / "model.keras", compile=False))
    trained = tuple(net.input_shape[1:3])
    rows = []
    for size in sizes or [trained[0]]:
        shape = trained if size == trained[0] else (size, round(size * trained[1] / trained[0]))
        overrides = {} if shape == trained else {"images.image_size": list(shape)}
        spec = load_spec(run / "spec.toml", overrides, data=data)
        task = registry.tasks.get(spec.task)(spec)
        if not task.feeds_batches:
            raise DataError(f"{run} is a {spec.task} run; test-time views are for image runs")
        task.set_context(RunContext(devices=1, seed=task.train_options.seed))
        prepared = task.prepare()  # spec.toml holds the run's resolved "auto" settings, so this is its own split
        if fingerprint(prepared.table.frame) != metrics.get("data_fingerprint"):
            raise DataError(f"the data at {spec['data'].get('path')} is not the data {run} was "
                             "trained on (its fingerprint differs), so its test split cannot be rebuilt; pass --data "
                             "with the run's own folder")
        test = prepared.data["test"]
        threshold = metrics.get("threshold", task.threshold)
        sized = at_size(net, shape)
        for tta in views:
            model = with_test_time_views(sized, tta)
            start = time.perf_counter()
            output = task.predict_output(model, test.x)
            seconds = time.perf_counter() - start
            scores = prepared.problem.score(test.y, output, threshold)
            rows.append({"run": str(run), "seed": task.train_options.seed, "shipped": task.images.tta, "tta": tta,
                         "trained_size": list(trained), "test_size": list(shape),
                         "metric": prepared.problem.primary, "value": scores.get(prepared.problem.primary),
                         "accuracy": scores.get("accuracy"), "test_images": len(test.y),
                         "ms_per_image": round(1000 * seconds / max(len(test.y), 1), 2)})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="kmodels bench tta", description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="finished image run directories")
    p.add_argument("--views", default=",".join(VIEWS), help=f"comma-separated view sets (default: {','.join(VIEWS)})")
    p.add_argument("--sizes", help="comma-separated test image heights, e.g. 144,160,176 (default: each run's own); "
                   "the width keeps the run's aspect ratio")
    p.add_argument("--data", type=Path, help="the runs' data, when it has moved since they ran")
    p.add_argument("--json", type=Path, help="also write the rows to this JSON file (must not exist)")
    args = p.parse_args(argv)
    views = [v.strip() for v in args.views.split(",") if v.strip()]
    if not views or set(views) - set(VIEWS):
        p.error(f"--views {args.views!r}: expected a comma-separated subset of {','.join(VIEWS)}")
    sizes = None
    if args.sizes is not None:
        try:
            sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
        except ValueError:
            sizes = []
        from kmodels_vision.options import MAX_IMAGE_SIDE

        if not sizes or any(not 16 <= s <= MAX_IMAGE_SIDE for s in sizes):
            p.error(f"--sizes {args.sizes!r}: expected comma-separated image heights in pixels, each in [16, "
                    f"{MAX_IMAGE_SIDE}]")
    if args.json is not None and args.json.exists():
        p.error(f"{args.json} exists; pick another path (nothing is overwritten)")
    for run in args.runs:
        if not (run / "metrics.json").is_file() or not (run / "model.keras").is_file():
            p.error(f"{run}: not a finished run (no metrics.json or model.keras)")
    from kmodels.errors import KModelsError

    rows = []
    for run in args.runs:
        try:
            scored = score_run(run, views, args.data, sizes)
        except KModelsError as e:
            p.error(str(e))
        for row in scored:
            rows.append(row)
            accuracy = "" if row["accuracy"] is None or row["metric"] == "accuracy" else \
                f"  accuracy {row['accuracy']:.4f}"
            size = "x".join(map(str, row["test_size"]))
            print(f"{row['run']}  seed {row['seed']}  {size}  tta={row['tta']:<15} {row['metric']} {row['value']:.4f}"
                  f"{accuracy}  {row['ms_per_image']} ms/image", flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps({"results": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
