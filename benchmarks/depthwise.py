"""Depthwise convolutions as sums of slices: an image task's training step with `sliced_depthwise` off and on.

`kmodels bench depthwise [--task dog_cat] [--sizes 96,144] [--batch-size 32] [--steps 6] [--rounds 2] [--json OUT]`
builds the task spec's network (its `[model]` block, the number of classes of a binary task) twice from the
same seed, once with Keras's `DepthwiseConv2D` / `SeparableConv2D` (`sliced_depthwise = false`) and once with
`kmodels_vision.layers.SlicedDepthwiseConv2D` / `SlicedSeparableConv2D`, gives the second the first's weights,
and checks that both compute the same pooled features on one batch (the largest difference relative to the
largest feature). It then times `train_on_batch` on random images, the two
networks alternating round by round in this one process (so the machine's drift falls on both), and prints the
median milliseconds a step of each and their ratio, per image size. Run it once per backend
(`KERAS_BACKEND=jax|tensorflow`): the sliced form only differs from Keras's on a JAX CPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._harness import machine, median, write_json


def networks(task: str, size: int) -> tuple[Any, Any]:
    """The task's network at `size` px with Keras's depthwise layers and with the sliced ones, the same weights."""
    import keras

    import kmodels

    block = dict(kmodels.load_spec(task)["model"])
    name = block.pop("name")
    built = []
    for sliced in (False, True):
        keras.utils.set_random_seed(0)
        model = kmodels.build(name, **{**block, "input_shape": (size, size, 3), "num_classes": 2,
                                       "sliced_depthwise": sliced})
        model.compile(optimizer="adam", loss="binary_crossentropy")
        built.append(model)
    built[1].set_weights(built[0].get_weights())
    return built[0], built[1]


def features(model: Any, x: np.ndarray) -> np.ndarray:
    """The pooled features before the head (an untrained head answers about 0.5 for anything)."""
    import keras

    pooled = next(layer for layer in model.layers if isinstance(layer, keras.layers.GlobalAveragePooling2D))
    return np.asarray(keras.Model(model.inputs, pooled.output).predict(x, verbose=0))


def time_steps(model: Any, x: np.ndarray, y: np.ndarray, steps: int) -> list[float]:
    seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        seconds.append(time.perf_counter() - start)
    return seconds


def measure(task: str, size: int, batch_size: int, steps: int, rounds: int) -> dict[str, Any]:
    import keras

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (batch_size, size, size, 3)).astype("float32")
    y = rng.integers(0, 2, (batch_size, 1)).astype("float32")
    plain, sliced = networks(task, size)
    a, b = features(plain, x), features(sliced, x)
    gap = float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(a))), 1e-12))
    for model in (plain, sliced):  # compile the steps outside the timing
        time_steps(model, x, y, 2)
    times: dict[str, list[float]] = {"keras": [], "sliced": []}
    for _ in range(rounds):
        times["keras"] += time_steps(plain, x, y, steps)
        times["sliced"] += time_steps(sliced, x, y, steps)
    keras_ms, sliced_ms = median(times["keras"]) * 1e3, median(times["sliced"]) * 1e3
    return {"backend": keras.backend.backend(), "task": task, "image_size": size, "batch_size": batch_size,
            "steps": steps * rounds, "keras_ms": round(keras_ms, 1), "sliced_ms": round(sliced_ms, 1),
            "speedup": round(keras_ms / sliced_ms, 2), "max_relative_feature_gap": gap}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="kmodels bench depthwise", description=__doc__.splitlines()[0])
    p.add_argument("--task", default="dog_cat", help="an image task whose [model] is timed (default dog_cat)")
    p.add_argument("--sizes", default="96,144", help="comma-separated image sides in pixels (default 96,144)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=6, help="timed steps per network per round (default 6)")
    p.add_argument("--rounds", type=int, default=2, help="rounds, each timing both networks (default 2)")
    p.add_argument("--json", type=Path, help="also write the rows to this JSON file (must not exist)")
    args = p.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        sizes = []
    if not sizes or any(not 16 <= s <= 512 for s in sizes):
        p.error(f"--sizes {args.sizes!r}: expected comma-separated image sides in pixels, each in [16, 512]")
    if min(args.batch_size, args.steps, args.rounds) < 1:
        p.error("--batch-size, --steps and --rounds must each be at least 1")
    if args.json is not None and args.json.exists():
        p.error(f"{args.json} exists; pick another path (nothing is overwritten)")
    rows = []
    for size in sizes:
        row = measure(args.task, size, args.batch_size, args.steps, args.rounds)
        rows.append(row)
        print(f"{row['backend']:<10} {args.task} {size:>3} px, batch {args.batch_size}: Keras {row['keras_ms']:.1f} ms a "
              f"step, sliced {row['sliced_ms']:.1f} ms ({row['speedup']:.2f}x; features within "
              f"{row['max_relative_feature_gap']:.1e} relative)", flush=True)
    write_json(args.json, {"machine": machine(), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
