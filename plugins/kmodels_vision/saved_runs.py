"""What the saved-run commands do with an image run: `kmodels evaluate RUN --data FOLDER`, `kmodels explain RUN
IMAGE...` and `kmodels predict RUN IMAGE...` (`SavedImageRuns`, a part of `ImageClassification`, ahead of the table versions in `kmodels.task.saved_runs`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from kmodels.api import ConfigError, DataError, RunDir, load_spec, predict_rows, prediction_frame, saved_problem
from kmodels_vision import report as report_lib
from kmodels_vision.images import IMAGE_SUFFIXES, file_problem, file_problem_or_pixels, image_table
from kmodels_vision.pipeline import load_image

logger = logging.getLogger("kmodels")

#: How many images `predict` decodes and predicts at a time (bounded memory on any number of files).
PREDICT_CHUNK = 256


class SavedImageRuns:
    """The `Task` hooks of the saved-run commands for image runs (`score_saved`, `explain_saved`, `predict_files`);
    `ImageClassification` inherits them, ahead of `Task`'s table versions."""

    def score_saved(self, run_dir: RunDir, model: Any, data: Path | pd.DataFrame) -> dict[str, Any]:
        """`kmodels evaluate RUN --data FOLDER`: the model scored on every readable image of a labelled folder (or
        `path,label` CSV) in any layout `image_classification` reads, with the run's classes."""
        if isinstance(data, pd.DataFrame):
            raise ConfigError("An image run scores an image folder or a path,label CSV, not a DataFrame.")
        problem, threshold = saved_problem(run_dir, model)
        table = image_table(data, list(problem.class_names))
        pred = self.predict_files(run_dir, model, [Path(p) for p in table["path"]])
        ok = (pred["error"] == "").to_numpy()
        if not ok.any():
            raise DataError(f"{str(data)!r}: none of its {len(pred)} image(s) could be read: {pred['error'].iloc[0]}")
        columns = [f"probability_{c}" for c in problem.class_names]
        output = pred.loc[ok, columns].to_numpy(dtype=np.float64)
        output = problem.as_output(output)
        metrics = problem.score(problem.encode(table.loc[ok, "label"].reset_index(drop=True)), output, threshold)
        if (~ok).any():
            logger.warning("%s: %d unreadable image(s) left out.", data, int((~ok).sum()))
        return {**metrics, "problem": problem.to_json(), "rows": int(ok.sum()), "rows_without_label": int((~ok).sum()),
                "data": str(data)}

    #: The most images one `kmodels explain` draws maps for (each costs about 50 forward passes).
    MAX_EXPLAINED = 16

    def explain_saved(self, run_dir: RunDir, model: Any, inputs: Sequence[Path] = (),
                      plot: Path | None = None) -> pd.DataFrame:
        """Occlusion maps of image `inputs` (see `report.occlusion_maps`) drawn into `plot`; one row per image:
        the predicted label and its probability, and where covering the image lowers it most."""
        if not inputs or plot is None:
            raise ConfigError("Explaining an image run draws occlusion maps of the images you name: "
                              "`kmodels explain RUN_DIR img1.jpg img2.jpg --plot maps.png`.")
        files = [f for p in inputs for f in (sorted(x for x in p.rglob("*") if x.suffix.lower() in IMAGE_SUFFIXES)
                                             if p.is_dir() else [p])]
        if len(files) > self.MAX_EXPLAINED:
            logger.warning("Explaining the first %d of %d images.", self.MAX_EXPLAINED, len(files))
            files = files[:self.MAX_EXPLAINED]
        problem, threshold = saved_problem(run_dir, model)
        if not problem.is_classification or problem.per_label_threshold:
            raise ConfigError(f"Occlusion maps follow the predicted class's probability; this run is {problem.kind}, "
                              "which has none.")
        height, width = self.images.image_size
        images = []
        for f in files:
            unreadable = file_problem(str(f))
            if unreadable is not None:
                raise DataError(f"{str(f)!r}: {unreadable}.")
            images.append(load_image(str(f), (width, height)))
        batch = np.stack(images)
        output = np.asarray(model.predict(batch, verbose=0))
        labels = problem.decode(output, threshold)
        chosen = problem.chosen_probability(output, threshold)
        maps = report_lib.occlusion_maps(lambda b: np.asarray(model.predict(b, verbose=0)), batch, labels)
        names = problem.class_names
        titles = [f"{Path(f).name}: {names[c]} (p={p:.2f})" for f, c, p in zip(files, labels, chosen, strict=True)]
        report_lib.saliency_grid(batch, maps, titles, plot, title=f"{self.spec.task}: occlusion maps")
        peaks = [np.unravel_index(int(np.argmax(m)), m.shape) for m in maps]
        return pd.DataFrame({"path": [str(f) for f in files], "label": [names[c] for c in labels],
                             "probability": chosen, "most_relied_on_yx": [f"{y},{x}" for y, x in peaks],
                             "largest_drop": [float(m.max()) for m in maps]})

    @classmethod
    def predict_files(cls, run_dir: RunDir | None, model: Any, inputs: Sequence[Path],
                      allow_missing: bool = False) -> pd.DataFrame:
        """Predictions for image files and folders; an unreadable file is reported on its row (`error`),
        so `allow_missing` changes nothing here.

        Columns: `path`, then those of `kmodels.task.prediction_frame` (`label`, its
        `probability` and one `probability_<class>` per class; regression: `prediction`),
        then `error`. Images are decoded and predicted `PREDICT_CHUNK` at a time, so memory
        stays bounded however many files are given.
        """
        size = tuple(model.input_shape[1:3])
        if run_dir is not None:
            size = tuple(load_spec(run_dir.readable("spec.toml"))["images"]["image_size"])
        problem, threshold = saved_problem(run_dir, model)
        files: list[Path] = []
        for p in inputs:
            if p.is_dir():
                files += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and not f.is_dir())
            else:
                files.append(p)
        paths, errors, outputs = [], [], []
        for start in range(0, len(files), PREDICT_CHUNK):
            images = []
            for f in files[start:start + PREDICT_CHUNK]:
                paths.append(str(f))
                unreadable = file_problem_or_pixels(str(f))
                if unreadable is not None:
                    errors.append(unreadable)
                    continue
                try:
                    images.append(load_image(str(f), (size[1], size[0])))
                    errors.append("")
                except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
            if images:
                outputs.append(predict_rows(model, np.stack(images), batch_size=32))
        output = np.concatenate(outputs) if outputs else np.zeros((0, 1))
        pred = prediction_frame(problem, output, threshold)
        full = pd.DataFrame(index=range(len(paths)), columns=pred.columns)
        if len(pred):
            full.loc[np.flatnonzero(np.array([not e for e in errors], dtype=bool))] = pred.to_numpy()
        for column in full.columns:
            if column.startswith("probability") or column == "prediction":
                full[column] = full[column].astype(float)
        full["label"] = full["label"].fillna("") if "label" in full else ""
        full.insert(0, "path", paths)
        full["error"] = errors
        return full
