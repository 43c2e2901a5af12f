"""Benchmark: images/s of decode + resize (+ augment) from ~400x350 JPEGs, for the pipelines tried.

Variants: plain Pillow in one thread; a Pillow thread pool of 2; kmodels'
`ImageBatches` (a `keras.utils.PyDataset`, workers=1 and 2, with and without
augmentation) read through Keras's own worker enqueuer, as `fit` reads it; the
decoded-image cache (`kmodels_vision.cache`): building it (a run's first epoch)
and reading shuffled batches from it (every later epoch: the host's whole job
when augmentation runs on the device); `RandomAffineAugment` on batches (the
device-side augmentation, here on the CPU); and `tf.data` (read_file +
decode_jpeg + resize, parallel map, prefetch) when TensorFlow is installed.
Each variant reads every image once per repeat.

    python -m benchmarks.input_pipeline --images 512 --image-size 128 --repeats 3 \\
        --json benchmarks/results/input_pipeline.json
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks._harness import machine, median, write_json


def _keras_iter(ds):
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    adapter = PyDatasetAdapter(ds, shuffle=False)
    yield from adapter.get_numpy_iterator()
    adapter.on_epoch_end()


def variants(paths: list[str], size: int, batch: int, work: Path):
    from kmodels_vision.pipeline import Augment, ImageBatches, load_image

    labels = [i % 2 for i in range(len(paths))]

    def pil_single():
        for p in paths:
            load_image(p, (size, size))

    def pil_pool():
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda p: load_image(p, (size, size)), paths))

    out = {"PIL, 1 thread": pil_single, "PIL, thread pool of 2": pil_pool}
    for workers in (1, 2):
        for aug in (False, True):
            name = f"kmodels ImageBatches, workers={workers}" + (", augmented" if aug else "")

            def run(workers=workers, aug=aug):
                ds = ImageBatches(paths, labels, (size, size), batch, shuffle=True,
                                  augment=Augment() if aug else None, workers=workers)
                for _ in _keras_iter(ds):
                    pass

            out[name] = run
    from kmodels_vision.cache import DecodedImages

    root = work / "cache"
    store = DecodedImages.open(paths, paths, (size, size), root=root / "warm", workers=2, progress=False)
    builds = iter(range(10**6))

    def cache_build():  # the first epoch of a run: decode, resize and write every image once
        DecodedImages.open(paths, paths, (size, size), root=root / f"b{next(builds)}", workers=2, progress=False)

    def cache_read():  # every later epoch: shuffled slices of the memory-mapped file, as fit reads them
        ds = ImageBatches(paths, labels, (size, size), batch, shuffle=True, workers=2, store=store.array,
                          rows=store.rows(paths))
        for _ in _keras_iter(ds):
            pass

    def device_augment():  # the augmentation the dog_cat default runs inside the training step (here: CPU, eager)
        import keras
        from kmodels_vision.layers import RandomAffineAugment

        layer = RandomAffineAugment(flip=0.5, rotation=12, zoom=0.2, shift=0.1, seed=0)
        for i in range(0, len(paths), batch):
            keras.ops.convert_to_numpy(layer(store.array[i:i + batch].astype("float32"), training=True))

    out["decoded-image cache: first build (decode + resize + write), 2 threads"] = cache_build
    out["decoded-image cache: read + batch (shuffled memmap slices, Keras enqueuer)"] = cache_read
    out["augmentation on the device (RandomAffineAugment, eager, this CPU)"] = device_augment
    try:
        import tensorflow as tf
    except ImportError:
        return out

    def tf_data():
        def load(p):
            img = tf.io.decode_jpeg(tf.io.read_file(p), channels=3)
            return tf.image.resize(img, (size, size))

        ds = tf.data.Dataset.from_tensor_slices(paths).map(load, num_parallel_calls=tf.data.AUTOTUNE)
        for _ in ds.batch(batch).prefetch(tf.data.AUTOTUNE):
            pass

    out["tf.data (parallel map, prefetch)"] = tf_data
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="kmodels bench input-pipeline", description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=512)
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from benchmarks.train_step import write_jpegs

    with tempfile.TemporaryDirectory() as tmp:
        paths = write_jpegs(Path(tmp), args.images)
        mib = sum(Path(q).stat().st_size for q in paths) / 2**20
        runs = variants(paths, args.image_size, args.batch_size, Path(tmp))
        for fn in runs.values():  # warm caches and imports once
            fn()
        times = {name: [] for name in runs}
        for _ in range(args.repeats):  # interleaved repeats: drift hits every variant alike
            for name, fn in runs.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    rows = [{"variant": n, "img_s": args.images / median(t), "min_img_s": args.images / max(t),
             "max_img_s": args.images / min(t)} for n, t in times.items()]
    print(f"\ndecode + resize to {args.image_size}x{args.image_size} of {args.images} JPEGs (~400x350, "
          f"{mib:.0f} MiB), {args.repeats} repeats")
    print("| pipeline | img/s median (min-max) |")
    print("|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['img_s']:.0f} ({r['min_img_s']:.0f}-{r['max_img_s']:.0f}) |")
    write_json(args.json, {"benchmark": "input_pipeline", "images": args.images, "image_size": args.image_size,
                           "repeats": args.repeats, "machine": machine(), "results": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
