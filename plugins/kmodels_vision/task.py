"""The dog_cat task: cat-vs-dog CNN from image files."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kmodels import registry
from kmodels.data import Table
from kmodels.data.images import IMAGE_SUFFIXES, scan_images
from kmodels.data.pipeline import Augment, ImageBatches, load_image
from kmodels.errors import ConfigError, DataError
from kmodels.runs import RunDir
from kmodels.task import Features, Task
from kmodels_vision import report as report_lib

logger = logging.getLogger("kmodels")


@dataclass(frozen=True)
class ImageOptions:
    """The image input pipeline.

    Args:
        image_size: (height, width) images are resized to; the model input.
        augment: flip/rotate/zoom the training images (seeded by `train.seed`).
        flip: probability of a horizontal flip.
        rotation: maximum rotation in degrees.
        zoom: maximum zoom fraction.
        workers: decoding threads feeding training.
        cache_mb: keep the decoded training and validation images in memory,
            up to this many MiB (128x128 images: 48 KiB each, so the 25,000
            Kaggle photos take 1.2 GiB), so that epochs after the first only
            augment; a split that does not fit is read from disk every epoch
            (logged). 0 turns caching off.
    """

    image_size: tuple[int, int] = (128, 128)
    augment: bool = True
    flip: float = 0.5
    rotation: float = 10.0
    zoom: float = 0.1
    workers: int = 2
    cache_mb: int = 2048

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigError(f"[images] workers={self.workers}: expected at least 1 decoding thread.")
        if self.cache_mb < 0:
            raise ConfigError(f"[images] cache_mb={self.cache_mb}: expected a size in MiB >= 0 (0 turns caching off).")


@registry.tasks.register("dog_cat")
class DogCat(Task):
    """Classify cat vs dog photos with a CNN (integrity scan, streaming pipeline, early stopping).

    `--data PATH` takes a folder (Kaggle flat `cat.0.jpg`, `PetImages/Cat`,
    split folders `train/val/test`) or a `path,label` CSV.

    Example: `kmodels run dog_cat` (embedded data) or `kmodels run dog_cat --data ~/PetImages`.
    """

    spec_file = resources.files("kmodels_vision") / "dog_cat.toml"
    sections = {"images": ImageOptions}

    @classmethod
    def with_data(cls, raw: dict[str, Any], path: Path) -> dict[str, Any]:
        return {**raw, "data": {"name": "image_folder", "path": str(path)}}

    @property
    def images(self) -> ImageOptions:
        return self.spec.options("images")

    def clean(self, table: Table, steps: Sequence[Any]) -> Table:
        """Decode every file once; drop unusable ones (never touching them) and report."""
        scan = scan_images(table.frame["path"].tolist())
        ok = scan.set_index("path")["ok"].astype(bool)
        frame = table.frame[table.frame["path"].map(ok).to_numpy()].reset_index(drop=True)
        rep = report_lib.data_report(table.frame, scan)
        for item in rep["skipped"]:
            logger.warning("Skipped %s: %s", item["path"], item["reason"])
        if rep["converted_to_rgb"]:
            logger.info("%d image(s) in other modes (%s) will be converted to RGB", len(rep["converted_to_rgb"]),
                        ", ".join(sorted({c["mode"] for c in rep["converted_to_rgb"]})))
        for group in rep["duplicates"]:
            logger.info("Identical files (kept): %s", ", ".join(group))
        logger.info("Images: %d usable of %d; per class: %s", rep["usable"], rep["files"], rep["counts"])
        self.cleaning = {"rows_in": len(table.frame), "skipped": len(rep["skipped"]), "rows_out": len(frame)}
        if self.run_dir is not None:
            self.run_dir.write_json("data_report.json", rep)
            report_lib.plot_sizes(table.frame, scan, self.run_dir.file("image_sizes.png"))
            sample = frame.sample(min(16, len(frame)), random_state=self.train_options.seed) if len(frame) else frame
            report_lib.image_grid(sample["path"].tolist(), sample["label"].tolist(),
                                  self.run_dir.file("sample_images.png"), "Sample images")
        if frame["label"].nunique() < 2:
            raise DataError(f"{table.source}: usable images of only {frame['label'].unique().tolist()}; need both classes.")
        return Table(frame, table.target, table.classes, table.group, table.source, table.notes)

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
            sub = Table(parts["train"], table.target, table.classes, None, table.source)
            from kmodels.data.split import split_indices

            tr, va, te = split_indices(sub.labels(), test=opts.test if "test" in missing else 0.0,
                                       val=opts.val if "val" in missing else 0.0, seed=self.train_options.seed,
                                       stratify=opts.stratify)
            train = parts["train"]
            parts["train"] = train.iloc[tr].reset_index(drop=True)
            if "val" in missing:
                parts["val"] = train.iloc[va].reset_index(drop=True)
            if "test" in missing:
                parts["test"] = train.iloc[te].reset_index(drop=True)
            logger.info("No %s folder: took %s from train/", " or ".join(missing), ", ".join(missing))
        return parts

    def features(self, table: Table, frames: Mapping[str, pd.DataFrame], steps: Sequence[Any],
                 fitted: Any = None) -> dict[str, Features]:
        opts = self.images
        augment = Augment(opts.flip, opts.rotation, opts.zoom) if opts.augment else None
        out = {}
        budget = opts.cache_mb * 2**20
        for name in ("train", "val", "test"):
            frame = frames[name]
            y = table.labels(frame)
            train = name == "train"
            need = ImageBatches.cache_bytes(len(frame), opts.image_size)
            cache = name != "test" and 0 < need <= budget  # the test split is read once
            if cache:
                budget -= need
            elif name != "test" and opts.cache_mb and need:
                logger.info("images.cache_mb=%d: the %s split (%d MiB decoded) is read from disk every epoch",
                            opts.cache_mb, name, math.ceil(need / 2**20))
            x = ImageBatches(frame["path"].tolist(), y, opts.image_size, self.train_options.batch_size,
                             shuffle=train, augment=augment if train else None, seed=self.train_options.seed,
                             workers=opts.workers, multiple=self.batch_multiple, cache=cache)
            out[name] = Features(x, y, frame)
        self.pipeline = None
        return out

    def input_shape(self, data: Mapping[str, Features]) -> tuple[int, ...]:
        return (*self.images.image_size, 3)

    def fit(self, model: Any, data: Mapping[str, Features], *, epochs: int | None = None,
            initial_epoch: int = 0) -> dict[str, list[float]]:
        t = self.train_options
        history = model.fit(data["train"].x, validation_data=data["val"].x if len(data["val"].y) else None,
                            epochs=t.epochs if epochs is None else epochs, initial_epoch=initial_epoch,
                            callbacks=self.make_callbacks(),
                            class_weight=self.class_weight(data["train"].y), verbose=t.verbose)
        return {k: [float(v) for v in vals] for k, vals in history.history.items()}

    def evaluate(self, model: Any, data: Mapping[str, Features]) -> dict[str, Any]:
        test = data["test"]
        proba = self.predict_proba(model, test.x)
        from kmodels.evaluation import binary_metrics

        metrics = binary_metrics(test.y, proba, self.spec.options("evaluate").threshold, self.class_names)
        if self.run_dir is not None:
            pred = (proba >= metrics["threshold"]).astype(int)
            wrong = np.flatnonzero(pred != test.y)
            names = self.class_names
            report_lib.image_grid([test.frame["path"].iloc[i] for i in wrong[:16]],
                                  [f"true {names[test.y[i]]}, p(dog)={proba[i]:.2f}" for i in wrong[:16]],
                                  self.run_dir.file("misclassified.png"),
                                  f"Misclassified test images ({len(wrong)} of {len(test.y)})")
        return metrics

    def report(self, metrics: Mapping[str, Any], table_text: str) -> str:
        return super().report(metrics, table_text) + (
            "\n![misclassified](misclassified.png)\n\n![sample images](sample_images.png)\n\n"
            "![image sizes](image_sizes.png)\n\nData report: [data_report.json](data_report.json)\n")

    @classmethod
    def predict_files(cls, run_dir: RunDir | None, model: Any, inputs: Sequence[Path]) -> pd.DataFrame:
        """Probabilities for image files and folders; an unreadable file is reported on its row."""
        spec = None
        if run_dir is not None:
            from kmodels.spec import load_spec

            spec = load_spec(run_dir.file("spec.toml"))
        size = tuple(spec["images"]["image_size"]) if spec else tuple(model.input_shape[1:3])
        classes = ["cat", "dog"]
        if run_dir is not None and run_dir.exists("metrics.json"):
            classes = run_dir.read_json("metrics.json").get("classes", classes)
        files: list[Path] = []
        for p in inputs:
            if p.is_dir():
                files += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
            else:
                files.append(p)
        rows, images = [], []
        for f in files:
            try:
                images.append(load_image(str(f), (size[1], size[0])))
                rows.append({"path": str(f), "error": ""})
            except (OSError, ValueError, SyntaxError) as exc:
                rows.append({"path": str(f), "error": f"{type(exc).__name__}: {exc}"})
        proba = iter(np.asarray(model.predict(np.stack(images), verbose=0)).ravel() if images else [])
        out = []
        for row in rows:
            if row["error"]:
                out.append({**row, "probability": np.nan, "label": ""})
            else:
                p = float(next(proba))
                out.append({**row, "probability": p, "label": classes[int(p >= 0.5)]})
        return pd.DataFrame(out, columns=["path", "probability", "label", "error"])
