"""Benchmark: the CNN training step across backends, next to hand-written references, in one run.

Each backend runs in its own process (the backend is fixed at import). In each:
warm-up (compilation) is timed separately, then `--steps` steps are timed
`--repeats` times (for the `fit` variants: one `fit` of 1 + repeats epochs of
`--steps` steps, each epoch timed by a callback, the first excluded); the table shows the median (min-max) ms/step, images/s,
achieved GFLOP/s from an analytic FLOP count (forward + backward) and its share
of this machine's float32 matmul peak (numpy 4096x4096, measured in the same run).

Variants: `keras fit (memory), keras BN` plain `model.fit` on in-memory arrays
of the model built with `keras.layers.BatchNormalization` (what a user writes
without kmodels); `..., fused BN` the same with kmodels' default
`FusedBatchNormalization`; `kmodels fit (JPEG files)` the dog_cat input
pipeline (decode + resize + augment from ~400x350 JPEGs) feeding the default
model, with decoded images cached after the first (untimed) epoch as dog_cat
does, and decoded every epoch; `pure JAX` `jax.jit` of `value_and_grad` + optax adam over
`model.stateless_call`; `raw TF` a `tf.function` + `GradientTape` step of the
default model (fused BN: what a hand-written TF step would use).

    python -m benchmarks.train_step --image-size 128 --batch-size 32 --steps 10 --repeats 3 \\
        --backends jax,tensorflow --json benchmarks/results/train_step.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._harness import machine, median, run_worker, write_json

#: the variants that train from JPEG files (the files are written once, shared by the backends)
FILE_VARIANTS = {"files", "device", "cache"}


def matmul_peak_gflops(n: int = 4096, repeats: int = 3) -> float:
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def write_jpegs(folder: Path, count: int, seed: int = 0) -> list[str]:
    """~400x350 synthetic photos (the size of the Kaggle photos), half cats, half dogs.

    Drawn in chunks of 64 over all cores (one photo takes ~60 ms to draw and encode, and a batch-256
    run needs thousands); each chunk draws from its own seeded stream, so the files do not depend
    on the number of cores.
    """
    from concurrent.futures import ProcessPoolExecutor

    chunks = [(folder, start, min(start + 64, count), seed) for start in range(0, count, 64)]
    with ProcessPoolExecutor(max_workers=min(len(chunks), os.cpu_count() or 1) or 1) as pool:
        return [path for part in pool.map(_write_chunk, chunks) for path in part]


def _write_chunk(job: tuple[Path, int, int, int]) -> list[str]:
    from kmodels_vision.synthetic import draw_animal

    folder, start, stop, seed = job
    rng = np.random.default_rng([seed, start])
    paths = []
    for i in range(start, stop):
        label = "cat" if i % 2 == 0 else "dog"
        size = (int(rng.integers(380, 420)), int(rng.integers(330, 370)))
        path = folder / f"{label}.{i}.jpg"
        draw_animal(label, size, rng).save(path, quality=90)
        paths.append(str(path))
    return paths


# ---- worker (one backend) -----------------------------------------------------------------------
def _measure(step, steps: int, repeats: int, sync=lambda r: r) -> tuple[float, list[float]]:
    start = time.perf_counter()
    sync(step(2))  # warm-up: compilation + first steps
    warmup = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        sync(step(steps))
        times.append((time.perf_counter() - start) / steps * 1000)
    return warmup, times


def worker(args: argparse.Namespace) -> None:
    import keras
    from kmodels_vision.pipeline import Augment, ImageBatches

    import kmodels
    from benchmarks.flops import train_flops

    backend = keras.backend.backend()
    size, bs, steps = args.image_size, args.batch_size, args.steps
    keras.utils.set_random_seed(0)
    n = bs * steps
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (n, size, size, 3)).astype("float32")
    y = rng.integers(0, 2, n).astype("float32")
    results = []

    def fresh(policy="float32", data_format=None, batchnorm="fused"):
        keras.utils.set_random_seed(0)
        extra = {} if data_format is None else {"data_format": data_format}
        extra["fused_batchnorm"] = batchnorm == "fused"  # the task specs train fused
        return kmodels.build(args.model, input_shape=(size, size, 3), precision=policy, **extra)

    variants = set(args.variants.split(","))

    default = fresh()  # the model as a task builds it on this backend (dog_cat_cnn: data_format="auto")
    flops = train_flops(default)
    default_format = next((layer.data_format for layer in default.layers if isinstance(layer, keras.layers.Conv2D)),
                          "channels_last")

    class EpochTimer(keras.callbacks.Callback):
        """Steady state: one fit of 1 + repeats epochs, each epoch timed; the first (compilation) apart."""

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.start)

    def fit_epochs(fit_call):
        timer = EpochTimer()
        timer.times = []
        fit_call(timer)
        return timer.times[0], [t / steps * 1000 for t in timer.times[1:]]

    formats = args.data_formats.split(",")
    combos = [(p, f, b) for p in args.precisions.split(",") for f in formats for b in args.batchnorms.split(",")]
    for policy, data_format, batchnorm in combos if "memory" in variants else []:
        model = fresh(policy, data_format, batchnorm)
        warm, times = fit_epochs(lambda cb, model=model: model.fit(x, y, batch_size=bs, epochs=1 + args.repeats,
                                                                   verbose=0, shuffle=False, callbacks=[cb]))
        tags = [t for t in (policy, data_format, f"{batchnorm} BN") if t != "float32"]
        results.append({"variant": "keras fit (memory), " + ", ".join(tags), "warmup_s": warm, "ms": times})

    if args.files and variants & FILE_VARIANTS:
        import glob

        paths = sorted(glob.glob(os.path.join(args.files, "*.jpg")))[:n]
        labels = [0.0 if Path(p).name.startswith("cat") else 1.0 for p in paths]
        for cache in (True, False) if "files" in variants else ():
            # host augmentation in Pillow threads (JAX on a CPU), decoded images kept (images.cache_mb) or not
            model = fresh()
            ds = ImageBatches(paths, labels, (size, size), bs, shuffle=True, augment=Augment(), seed=0, workers=2,
                              cache=cache)
            warm, times = fit_epochs(lambda cb, model=model, ds=ds: model.fit(ds, epochs=1 + args.repeats, verbose=0,
                                                                               callbacks=[cb]))
            how = "augmented" if cache else "augmented, decoded every epoch"
            results.append({"variant": f"kmodels fit (JPEG files, {how}), {default_format}, fused BN",
                            "warmup_s": warm, "ms": times})
        # the dog_cat default off a JAX CPU: the decoded-image cache (memory-mapped), augmentation on the device;
        # `cache` alone: the same reading without the augmentation (what the pipeline costs, apart from the warp)
        from kmodels_vision.cache import DecodedImages
        from kmodels_vision.layers import RandomAffineAugment

        from kmodels.building import compile_model, compile_options
        from kmodels.problems import Problem

        with tempfile.TemporaryDirectory() as root:
            store = DecodedImages.open(paths, paths, (size, size), root=Path(root), progress=False)
            # with the warp for `files` and `device`, without it for `cache`
            for augmented in [True] * bool(variants & {"files", "device"}) + [False] * ("cache" in variants):
                model = fresh()
                if augmented:
                    inputs = keras.Input((size, size, 3))
                    model = keras.Model(inputs, model(RandomAffineAugment(seed=0)(inputs)))
                    compile_model(model, compile_options(args.model, None), Problem.from_num_classes(2))  # as fresh
                ds = ImageBatches(paths, labels, (size, size), bs, shuffle=True, seed=0, workers=2,
                                  store=store.array, rows=store.rows(paths))
                warm, times = fit_epochs(lambda cb, m=model, ds=ds: m.fit(ds, epochs=1 + args.repeats, verbose=0,
                                                                           callbacks=[cb]))
                how = "augmented on the device" if augmented else "not augmented"
                results.append({"variant": f"kmodels fit (JPEG files via the decoded-image cache, {how}), "
                                           f"{default_format}, fused BN", "warmup_s": warm, "ms": times})

    device_peak = None
    if backend == "jax" and "reference" in variants:
        import jax
        import jax.numpy as jnp
        import optax

        a = jnp.ones((4096, 4096), jnp.float32)
        jax.block_until_ready(a @ a)
        best = min(_timed(lambda: jax.block_until_ready(a @ a)) for _ in range(5))
        device_peak = {"device": str(jax.devices()[0]), "matmul_gflops": 2 * 4096**3 / best / 1e9}

        model = fresh()
        tx = optax.adam(1e-3)
        loss_fn = keras.losses.BinaryCrossentropy()

        def compute_loss(tv, ntv, xb, yb):
            pred, ntv = model.stateless_call(tv, ntv, xb, training=True)
            return loss_fn(yb[:, None], pred), ntv

        grad_fn = jax.value_and_grad(compute_loss, has_aux=True)

        @jax.jit
        def train_step(state, xb, yb):
            tv, ntv, opt = state
            (loss, ntv), grads = grad_fn(tv, ntv, xb, yb)
            updates, opt = tx.update(grads, opt, tv)
            return loss, (optax.apply_updates(tv, updates), ntv, opt)

        tv = [v.value for v in model.trainable_variables]
        state = [tv, [v.value for v in model.non_trainable_variables], tx.init(tv)]

        def run_jax(k):
            loss = None
            for i in range(k):
                loss, new = train_step(tuple(state), x[i * bs:(i + 1) * bs], y[i * bs:(i + 1) * bs])
                state[:] = new
            return loss

        warm, times = _measure(run_jax, steps, args.repeats, sync=jax.block_until_ready)
        results.append({"variant": "pure JAX (jit + optax adam)", "warmup_s": warm, "ms": times})

    if backend == "tensorflow" and "reference" in variants:
        import tensorflow as tf

        for jit in (False, True):
            model = fresh()
            opt = keras.optimizers.Adam(1e-3)
            loss_fn = keras.losses.BinaryCrossentropy()
            opt.build(model.trainable_variables)

            @tf.function(jit_compile=jit)
            def tf_step(xb, yb, model=model, opt=opt, loss_fn=loss_fn):
                with tf.GradientTape() as tape:
                    loss = loss_fn(yb[:, None], model(xb, training=True))
                grads = tape.gradient(loss, model.trainable_variables)
                opt.apply(grads, model.trainable_variables)
                return loss

            xt, yt = tf.constant(x), tf.constant(y)

            def run_tf(k, tf_step=tf_step, xt=xt, yt=yt):
                loss = None
                for i in range(k):
                    loss = tf_step(xt[i * bs:(i + 1) * bs], yt[i * bs:(i + 1) * bs])
                return loss.numpy()

            warm, times = _measure(run_tf, steps, args.repeats)
            name = "raw TF (tf.function + GradientTape" + (", XLA)" if jit else ")")
            results.append({"variant": name, "warmup_s": warm, "ms": times})

    if backend == "torch" and "reference" in variants:
        results += _torch_references(x, y, bs, steps, args.repeats)

    print(json.dumps({"backend": backend, "flops_per_image": flops, "results": results, "device_peak": device_peak}))


def _torch_references(x: np.ndarray, y: np.ndarray, bs: int, steps: int, repeats: int) -> list[dict]:
    """Hand-written PyTorch steps of the default dog_cat_cnn: eager and torch.compile, channels_last memory."""
    import torch
    from torch import nn

    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout, momentum=0.1), nn.ReLU(),
                nn.MaxPool2d(2)]

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(*block(3, 32), *block(32, 64), *block(64, 128))
            self.head = nn.Sequential(nn.Linear(128, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 1))

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            z = self.features(images / 255.0)
            return self.head(z.mean(dim=(2, 3)))

    xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    yt = torch.from_numpy(y)[:, None]
    out = []
    for compiled in (False, True):
        torch.manual_seed(0)
        net = Net().to(memory_format=torch.channels_last).train()
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        loss_fn = nn.BCEWithLogitsLoss()

        def step(xb, yb, net=net, opt=opt, loss_fn=loss_fn):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(xb), yb)
            loss.backward()
            opt.step()
            return loss

        fn = torch.compile(step) if compiled else step

        def run(k, fn=fn):
            loss = None
            for i in range(k):
                loss = fn(xt[i * bs:(i + 1) * bs], yt[i * bs:(i + 1) * bs])
            return float(loss)

        warm, times = _measure(run, steps, repeats)
        name = "PyTorch " + ("torch.compile" if compiled else "eager") + ", channels_last"
        out.append({"variant": name, "warmup_s": warm, "ms": times})
    return out


# ---- driver -------------------------------------------------------------------------------------
def _in_memory_twin(rows: list[dict], files: dict) -> dict | None:
    """The in-memory `fit` row of the same model as a from-files row (its name ends with the layout and BN)."""
    same = "keras fit (memory), " + files["variant"].rsplit("), ", 1)[1]
    return next((r for r in rows if r["backend"] == files["backend"] and r["variant"] == same), None)


def _summary(rows: list[dict]) -> list[str]:
    """The issue's targets, read off the table: each backend's default model (`fit` in memory) is the row that counts."""
    default = {r["backend"]: _in_memory_twin(rows, r) for r in rows if r["variant"].startswith("kmodels fit")}
    default = {b: r for b, r in default.items() if r}
    lines = []
    if default:
        best = min(default.values(), key=lambda r: r["ms"])
        lines.append(f"fastest backend: {best['backend']}, {best['ms']:.0f} ms/step = {best['peak_pct']:.0f}% of "
                     "matmul peak (target >= 60%)")
    if "jax" in default and "tensorflow" in default:
        lines.append(f"jax / tensorflow throughput = {default['tensorflow']['ms'] / default['jax']['ms']:.2f}x "
                     "(target >= 0.7x)")
    eager = next((r for r in rows if r["variant"] == "PyTorch eager, channels_last"), None)
    if "torch" in default and eager:
        lines.append(f"torch backend / PyTorch eager throughput = {eager['ms'] / default['torch']['ms']:.2f}x "
                     "(target >= 0.8x)")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="kmodels bench train-step", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="dog_cat_cnn")
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--backends", default="jax,tensorflow,torch",
                   help="each in its own process; one that is not installed is skipped with a note")
    p.add_argument("--no-files", action="store_true", help="skip the from-JPEG-files variant")
    p.add_argument("--variants", default="memory,files,reference",
                   help="which to run: memory (Keras fit on arrays), files (every kmodels from-files path), device (only the "
                        "decoded-image cache + device augmentation path, dog_cat's default off a JAX CPU), cache (the "
                        "same without augmentation: the reading alone), reference (hand-written)")
    p.add_argument("--precisions", default="float32",
                   help="policies for the in-memory fit, e.g. float32,mixed_bfloat16 (side by side)")
    p.add_argument("--data-formats", default="channels_last,channels_first",
                   help="layouts for the in-memory fit (the from-files fit uses the model's default for the backend)")
    p.add_argument("--batchnorms", default="keras,fused",
                   help="BatchNorm layers for the in-memory fit: keras (keras.layers.BatchNormalization, what a "
                        "user writes without kmodels), fused (kmodels_vision.layers.FusedBatchNormalization, what the task specs train with)")
    p.add_argument("--json", default=None)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--files", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    peak = matmul_peak_gflops()
    print(f"float32 matmul peak (numpy 4096x4096): {peak:.0f} GFLOP/s", file=sys.stderr)
    out = {"benchmark": "train_step", "model": args.model, "image_size": args.image_size,
           "batch_size": args.batch_size, "steps": args.steps, "repeats": args.repeats,
           "matmul_peak_gflops": peak, "machine": machine(), "backends": {}}
    with tempfile.TemporaryDirectory() as tmp:
        files = None
        if not args.no_files and FILE_VARIANTS & set(args.variants.split(",")):
            write_jpegs(Path(tmp), args.batch_size * args.steps)
            files = tmp
        for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
            cmd = ["--worker", "--model", args.model, "--image-size", str(args.image_size), "--batch-size",
                   str(args.batch_size), "--steps", str(args.steps), "--repeats", str(args.repeats),
                   "--variants", args.variants, "--precisions", args.precisions, "--data-formats", args.data_formats,
                   "--batchnorms", args.batchnorms]
            if files:
                cmd += ["--files", files]
            try:
                out["backends"][backend] = run_worker("benchmarks.train_step", cmd, env={"KERAS_BACKEND": backend})
            except RuntimeError as exc:
                print(f"{backend}: skipped ({str(exc).splitlines()[-1]})", file=sys.stderr)
                print("\n".join(str(exc).splitlines()[-15:]), file=sys.stderr)  # the worker's traceback
    rows = []
    for backend, res in out["backends"].items():
        for r in res["results"]:
            ms = median(r["ms"])
            gflops = res["flops_per_image"] * args.batch_size / (ms / 1000) / 1e9
            rows.append({"backend": backend, "variant": r["variant"], "ms": ms, "min": min(r["ms"]),
                         "max": max(r["ms"]), "img_s": args.batch_size / (ms / 1000), "gflops": gflops,
                         "peak_pct": 100 * gflops / peak, "warmup_s": r["warmup_s"]})
    out["table"] = rows
    gf = next(iter(out["backends"].values()))["flops_per_image"] / 1e9 if out["backends"] else 0
    print(f"\n{args.model}, {args.image_size}x{args.image_size}, batch {args.batch_size}, {args.steps} steps x "
          f"{args.repeats} repeats; {gf:.2f} GFLOP/image (fwd+bwd); matmul peak {peak:.0f} GFLOP/s")
    print("| backend | variant | ms/step median (min-max) | img/s | GFLOP/s | % of matmul peak | warm-up s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['backend']} | {r['variant']} | {r['ms']:.0f} ({r['min']:.0f}-{r['max']:.0f}) | {r['img_s']:.0f} | "
              f"{r['gflops']:.0f} | {r['peak_pct']:.0f}% | {r['warmup_s']:.1f} |")
    for backend, res in out["backends"].items():
        if res.get("device_peak"):
            dp = res["device_peak"]
            print(f"{backend}: device {dp['device']}, float32 4096x4096 matmul {dp['matmul_gflops']:.0f} GFLOP/s")
        for files in (r for r in rows if r["backend"] == backend and r["variant"].startswith("kmodels fit")):
            mem = _in_memory_twin(rows, files)
            if mem:
                print(f"{backend}: {files['variant'].split(' (')[1].split(')')[0]} / in-memory throughput = "
                      f"{mem['ms'] / files['ms']:.2f}x (target >= 0.9x)")
    out["summary"] = _summary(rows)
    for line in out["summary"]:
        print(line)
    write_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
