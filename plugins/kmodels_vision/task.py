"""The dog_cat task: cat-vs-dog CNN from image files."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from kmodels.api import (
    Artifacts,
    ConfigError,
    DataError,
    Features,
    Prepared,
    Problem,
    Table,
    Task,
    all_layers,
    registry,
    split_indices,
    writer_first,
)
from kmodels_vision import report as report_lib
from kmodels_vision.cache import DecodedImages
from kmodels_vision.images import scan_images
from kmodels_vision.layers import portable_model
from kmodels_vision.options import ImageOptions, auto_image_size, with_test_time_views
from kmodels_vision.pipeline import ImageBatches
from kmodels_vision.saved_runs import SavedImageRuns

logger = logging.getLogger("kmodels")


@registry.tasks.register("image_classification")
class ImageClassification(SavedImageRuns, Task):
    """Classify images into any number of classes (integrity scan, streaming augmented pipeline, CNN).

    `--data PATH` takes a folder (class sub-folders, optionally under split
    folders `train/val/test`, or the Kaggle flat layout `cat.0.jpg`) or a
    `path,label` CSV; the class names are read from the data.

    Example: `kmodels run image_classification --data ~/flowers` (embedded: synthetic cats and dogs).
    """

    spec_file = resources.files("kmodels_vision") / "image_classification.toml"
    sections = {"images": ImageOptions}
    unused_sections = ("preprocess",)
    feeds_batches = True

    @classmethod
    def with_data(cls, raw: dict[str, Any], path: Path) -> dict[str, Any]:
        data = raw.get("data", {})
        keep = {k: data[k] for k in ("classes",) if k in data and data.get("name") == "image_folder"}
        return {**raw, "data": {"name": "image_folder", "path": str(path), **keep}}

    @classmethod
    def handles(cls, model: Any) -> bool:
        """A bare `.keras` file whose input is a batch of (height, width, 3) images."""
        return len(model.inputs[0].shape) == 4

    @property
    def images(self) -> ImageOptions:
        return self.spec.options("images")

    def check_size(self, table: Table, problem: Problem) -> None:
        """`Task.check_size`, and refuse `[images] mixup` or `cutmix` unless the problem is binary (before the run
        exists)."""
        super().check_size(table, problem)
        for name in ("mixup", "cutmix"):
            value = getattr(self.images, name)
            if value and problem.kind != "binary":
                raise ConfigError(f"[images] {name}={value} blends labels, which needs a binary problem; this one is "
                                  f"{problem.kind} ({problem.num_classes} classes). Set images.{name} = 0.")

    def resolve_auto(self, table: Table, problem: Problem) -> None:
        """`Task.resolve_auto`, and `[images] image_size = "auto"` from the data (the scan is cached, so `analyse`
        and `clean` read it back)."""
        super().resolve_auto(table, problem)
        if self.images.image_size == "auto":
            scan = self._scan(table)
            usable = scan[scan["ok"].astype(bool)]
            sides = np.minimum(usable["width"].to_numpy(float), usable["height"].to_numpy(float)) if len(usable) else []
            size = auto_image_size(sides)
            logger.info("[images] image_size = \"auto\": %s (median shorter side of %d images: %s px)", list(size),
                        len(usable), f"{np.median(sides):.0f}" if len(sides) else "-")
            self.spec = self.spec.replaced("images.image_size", list(size))

    def _scan(self, table: Table) -> pd.DataFrame:
        with writer_first("kmodels:image-scan"):  # several processes: the others read process 0's scan cache
            return scan_images(table.frame["path"].tolist())

    def analyse(self, table: Table) -> Artifacts:
        """The data report (`data_report.json`: usable, skipped, converted and identical files, counts per class),
        the image sizes and a sample of the usable images, for the runner to write. The scan it runs is cached,
        so `clean` reads it back instead of decoding again."""
        scan = self._scan(table)
        usable = table.frame[table.frame["path"].map(scan.set_index("path")["ok"].astype(bool)).to_numpy()]
        sample = usable.sample(min(16, len(usable)), random_state=self.train_options.seed) if len(usable) else usable
        return Artifacts({"data_report.json": report_lib.data_report(table.frame, scan),
                          "image_sizes.png": report_lib.plot_sizes(table.frame, scan),
                          "sample_images.png": report_lib.image_grid(sample["path"].tolist(),
                                                                     sample["label"].astype(str).tolist(), None,
                                                                     "Sample images")})

    def clean(self, table: Table, steps: Sequence[Any]) -> tuple[Table, dict[str, Any]]:
        """Decode every file once; drop unusable ones (never touching them) and report."""
        scan = self._scan(table)
        ok = scan.set_index("path")["ok"].astype(bool)
        frame = table.frame[table.frame["path"].map(ok).to_numpy()].reset_index(drop=True)
        # the content digest travels with each row: it keys the decoded-image cache (`features`)
        frame["sha256"] = frame["path"].map(dict(zip(scan["path"], scan["sha256"], strict=True)))
        rep = report_lib.data_report(table.frame, scan)
        for item in rep["skipped"]:
            logger.warning("Skipped %s: %s", item["path"], item["reason"])
        if rep["converted_to_rgb"]:
            logger.info("%d image(s) in other modes (%s) will be converted to RGB", len(rep["converted_to_rgb"]),
                        ", ".join(sorted({c["mode"] for c in rep["converted_to_rgb"]})))
        for group in rep["duplicates"]:
            logger.info("Identical files (kept): %s", ", ".join(group))
        logger.info("Images: %d usable of %d; per class: %s", rep["usable"], rep["files"], rep["counts"])
        cleaning = {"rows_in": len(table.frame), "skipped": len(rep["skipped"]), "rows_out": len(frame)}
        problem = table.problem_type()
        counts = problem.label_counts(frame["label"])
        missing = sorted((c for c in problem.classes if not counts.get(str(c))), key=str)
        if missing:
            raise DataError(f"{table.source}: no usable images of class(es) {missing}; every class needs images "
                            "(see the skipped files above).")
        return table.subset(frame), cleaning

    def split(self, table: Table) -> dict[str, pd.DataFrame]:
        """Respect split folders when the data has them; otherwise a stratified, seeded split."""
        frame = table.frame
        if "split" not in frame.columns:
            return super().split(table)
        parts = {name: frame[frame["split"] == name].reset_index(drop=True) for name in ("train", "val", "test")}
        if parts["train"].empty:
            raise DataError(f"{table.source}: split folders found but no train/ images.")
        missing = [name for name in ("val", "test") if parts[name].empty]
        if missing:  # carve what is missing out of train, stratified and seeded
            opts = self.spec.options("split")
            stratify = opts.stratify and table.problem_type().stratified
            labels = table.labels(parts["train"]) if stratify else np.zeros(len(parts["train"]), dtype=np.int64)
            tr, va, te = split_indices(labels, test=opts.test if "test" in missing else 0.0,
                                       val=opts.val if "val" in missing else 0.0, seed=self.train_options.seed,
                                       stratify=stratify)
            train = parts["train"]
            parts["train"] = train.iloc[tr].reset_index(drop=True)
            if "val" in missing:
                parts["val"] = train.iloc[va].reset_index(drop=True)
            if "test" in missing:
                parts["test"] = train.iloc[te].reset_index(drop=True)
            logger.info("No %s folder: took %s from train/", " or ".join(missing), ", ".join(missing))
        return parts

    def features(self, table: Table, frames: Mapping[str, pd.DataFrame], steps: Sequence[Any],
                 fitted: Any = None) -> tuple[dict[str, Features], Any]:
        opts = self.images
        augment = opts.augmentation if opts.augment else None
        host_augment = augment if opts.augment and self.augment_on(log=True) == "host" else None
        digests = {name: self._digests(frames[name]) for name in ("train", "val", "test")} if opts.disk_cache else {}
        store = self.decoded_images(frames, digests) if opts.disk_cache else None
        out = {}
        budget = 0 if store is not None else opts.cache_mb * 2**20
        for name in ("train", "val", "test"):
            frame = frames[name]
            y = table.labels(frame)
            train = name == "train"
            need = ImageBatches.cache_bytes(len(frame), opts.image_size)
            cache = name != "test" and 0 < need <= budget  # the test split is read once
            if cache:
                budget -= need
            elif store is None and name != "test" and opts.cache_mb and need:
                logger.info("images.cache_mb=%d: the %s split (%d MiB decoded) is read from disk every epoch",
                            opts.cache_mb, name, math.ceil(need / 2**20))
            rows = None if store is None else store.rows(digests[name])
            x = ImageBatches(frame["path"].tolist(), y, opts.image_size, self.train_options.batch_size,
                             shuffle=train, augment=host_augment if train else None, seed=self.train_options.seed,
                             workers=opts.workers, multiple=self.context.devices, cache=cache,
                             store=None if store is None else store.array, rows=rows,
                             mixup=opts.mixup if train else 0.0, cutmix=opts.cutmix if train else 0.0)
            out[name] = Features(x, y, frame)
        return out, None

    @staticmethod
    def _digests(frame: pd.DataFrame) -> list[str]:
        """The content digest of each image of `frame`: the scan's `sha256` column (see `clean`), else hashed now."""
        import hashlib

        known = frame["sha256"] if "sha256" in frame else [None] * len(frame)
        out = []
        for path, digest in zip(frame["path"], known, strict=True):
            if not isinstance(digest, str):
                with open(path, "rb") as fh:
                    digest = hashlib.sha256(fh.read()).hexdigest()
            out.append(digest)
        return out

    def decoded_images(self, frames: Mapping[str, pd.DataFrame], digests: Mapping[str, list[str]]) -> DecodedImages:
        """Every image of the splits decoded once at `image_size`, memory-mapped from the on-disk cache.

        `digests`: each split's content digests (`_digests`), which key the cache.
        """
        names = ("train", "val", "test")
        with writer_first("kmodels:image-cache"):  # several processes: process 0 decodes, the others map its file
            return DecodedImages.open([p for n in names for p in frames[n]["path"]],
                                      [d for n in names for d in digests[n]], self.images.image_size,
                                      workers=self.images.workers)

    def augment_on(self, log: bool = False) -> str:
        """`[images] augment_on`, with `"auto"` resolved: `"host"` for JAX on a CPU, else `"device"`."""
        where = self.images.augment_on
        if where == "auto":
            import keras

            where = "device"
            if keras.backend.backend() == "jax":
                import jax

                where = "host" if jax.devices()[0].platform == "cpu" else "device"
            if log:
                logger.info("Augmentation on the %s (images.augment_on = \"auto\", %s backend)", where,
                            keras.backend.backend())
        return where

    def training_model(self, model: Any) -> Any:
        """With augmentation on the device: `RandomAffineAugment` in front of the model, for training only."""
        opts = self.images
        if not (opts.augment and self.augment_on() == "device"):
            return model
        import keras

        from kmodels_vision.layers import RandomAffineAugment

        inputs = keras.Input(model.input_shape[1:], name="image")
        augment = RandomAffineAugment(**dataclasses.asdict(opts.augmentation), seed=self.train_options.seed,
                                      name="augmentation")
        return keras.Model(inputs, model(augment(inputs)), name=f"{model.name}_augmented")

    def input_shape(self, prepared: Prepared) -> tuple[int, ...]:
        return (*self.images.image_size, 3)

    def build_model(self, prepared: Prepared) -> Any:
        """The spec's model; a `patch_whitening` layer in it (`[model] whitening = true`) is fitted on up to
        `WHITENING_IMAGES` training images first (`kmodels_vision.layers.whitening_weights`)."""
        from kmodels_vision.layers import WHITENING, whitening_weights

        model = super().build_model(prepared)
        layer = next((la for la in all_layers(model) if la.name == WHITENING), None)
        if layer is not None:
            batches = prepared.data["train"].x
            rng = np.random.default_rng(self.train_options.seed)
            take = np.sort(rng.choice(len(batches.paths), min(self.WHITENING_IMAGES, len(batches.paths)),
                                      replace=False))
            images = batches.decoded(take)  # from the decoded-image store when the run has one
            layer.set_weights(list(whitening_weights(images, seed=self.train_options.seed)))
            logger.info("Patch whitening fitted on %d training images", len(images))
        return model

    #: Training images the patch-whitening layer is fitted on (airbench: 5,000 CIFAR images; 512 photos
    #: give over 10 million 2x2 patches, of which 200,000 are drawn).
    WHITENING_IMAGES: ClassVar[int] = 512

    def fit(self, model: Any, prepared: Prepared, *, epochs: int | None = None,
            initial_epoch: int = 0) -> dict[str, list[float]]:
        data, validation = prepared.data, len(prepared.data["val"].y) > 0
        with self.executions(model, len(data["train"].x)):
            history = model.fit(data["train"].x, validation_data=data["val"].x if validation else None,
                                epochs=self.epochs(prepared) if epochs is None else epochs,
                                initial_epoch=initial_epoch, callbacks=self.fit_callbacks(validation),
                                class_weight=self.class_weight(data["train"].y, prepared.problem),
                                verbose=self.verbose)
        return {k: [float(v) for v in vals] for k, vals in history.history.items()}

    def finish_model(self, model: Any) -> Any:
        """The trained model without its training-only augmentation; with `[images] tta = "flip"`,
        averaged with itself on mirrored images; its speed-only layers (fused BatchNorm) rebuilt as
        Keras's own (`layers.portable_model`), so the saved file loads in plain Keras."""
        if any(layer.name == "augmentation" for layer in model.layers):  # see `training_model`
            model = model.layers[-1]
        return portable_model(with_test_time_views(model, self.images.tta))

    def explain(self, model: Any, prepared: Prepared, threshold: float | None = None) -> dict[str, Any] | None:
        """No table columns to permute: images are explained by `kmodels explain RUN IMAGE...` (occlusion maps)."""
        return None

    def evaluate(self, model: Any, prepared: Prepared, threshold: float | None = None) -> dict[str, Any]:
        """Test metrics, and under `misclassified` the first 16 test images predicted wrong (path, truth, prediction)."""
        test = prepared.data["test"]
        problem = prepared.problem
        threshold = self.threshold if threshold is None else threshold
        output = self.predict_output(model, test.x)
        metrics = problem.score(test.y, output, threshold)
        if not problem.is_classification:
            return metrics
        pred = problem.decode(output, threshold)
        wrong = np.flatnonzero((pred != test.y).reshape(len(pred), -1).any(axis=1))
        said, truth = problem.prediction_frame(output, threshold), problem.label_text(test.y)
        metrics["misclassified"] = [
            {"path": str(test.frame["path"].iloc[i]), "true": truth[i], "predicted": said["label"].iloc[i],
             **({"probability": float(said["probability"].iloc[i])} if "probability" in said else {})}
            for i in wrong[:16]]
        metrics["misclassified_count"] = int(len(wrong))
        return metrics

    def plot_results(self, prepared: Prepared, metrics: Mapping[str, Any], model: Any) -> Artifacts:
        """The core's test-split plots and a grid of the misclassified test images (`evaluate`'s list)."""
        made = super().plot_results(prepared, metrics, model)
        wrong = metrics.get("misclassified", [])
        made["misclassified.png"] = report_lib.image_grid(
            [w["path"] for w in wrong],
            [f"true {w['true']}, pred {w['predicted']}" + (f"\np={w['probability']:.2f}" if "probability" in w else "")
             for w in wrong], None,
            f"Misclassified test images ({metrics.get('misclassified_count', len(wrong))} of {metrics.get('n', '?')})")
        return made

    def report(self, metrics: Mapping[str, Any], table_text: str, plots: Sequence[str] = ()) -> str:
        return super().report(metrics, table_text, plots) + (
            "\n![misclassified](misclassified.png)\n\n![sample images](sample_images.png)\n\n"
            "![image sizes](image_sizes.png)\n\nData report: [data_report.json](data_report.json)\n")


@registry.tasks.register("dog_cat")
class DogCat(ImageClassification):
    """Classify cat vs dog photos: the reference preset of `image_classification`.

    `--data PATH` takes a folder (Kaggle flat `cat.0.jpg`, `PetImages/Cat`,
    split folders `train/val/test`) or a `path,label` CSV.

    Example: `kmodels run dog_cat` (embedded data) or `kmodels run dog_cat --data ~/PetImages`.
    """

    spec_file = resources.files("kmodels_vision") / "dog_cat.toml"
    #: `make run`: the same recipe, smaller, on the 300 embedded synthetic photos (about a minute)
    demo_overrides: ClassVar[dict[str, Any]] = {"images.image_size": [96, 96], "train.epochs": 30}

    @classmethod
    def with_data(cls, raw: dict[str, Any], path: Path) -> dict[str, Any]:
        return {**raw, "data": {"name": "image_folder", "path": str(path), "classes": ["cat", "dog"]}}
