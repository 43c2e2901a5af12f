"""`kmodels export`: a finished run's model in the formats users deploy, each checked by loading it back.

Formats:

- `keras`: the run's `model.keras` (plain Keras layers only; loads without kmodels);
- `saved_model`: a TensorFlow SavedModel with a `serve` endpoint (Keras's `model.export`;
  from JAX through `jax2tf`), for TF Serving, TFLite converters and `tf.saved_model.load`;
- `onnx`: an ONNX graph, for onnxruntime (`pip install "kmodels[onnx]"`): on TensorFlow through
  Keras's `model.export(format="onnx")` (tf2onnx); on JAX written from the weights for the dense
  chains table models are (`export_onnx.onnx_network`).

The export is written next to its destination under a temporary name, loaded back,
run on a batch of sample inputs and compared with the Keras model; only an export
that predicts the same is moved into place. An existing destination is never
overwritten.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kmodels.errors import ConfigError, RunError
from kmodels.runs import MAX_MODEL_BYTES
from kmodels.saving import MODEL, STATE
from kmodels.task.export_formats import (
    add_onnx_metadata,
    onnx_network,
    run_checked,
    run_keras,
    run_onnx,
    run_saved_model,
    sample_inputs,
)

logger = logging.getLogger("kmodels")

FORMATS = ("keras", "saved_model", "onnx")
#: The largest difference from the Keras model's output an export may show (float32 round-off).
TOLERANCE = 1e-4


def export(source: str | Path, out: str | Path, format: str = "saved_model",
           rows: str | Path | pd.DataFrame | None = None) -> dict[str, Any]:
    """Export a finished run's model (or a `.keras` file) to `out`, checked before it is moved into place.

    A table run's `saved_model` and `onnx` exports take **raw rows** and return class names and
    probabilities (`kmodels.task.export_rows`): they are checked against `kmodels predict` on the
    run's test rows (or on `rows`). Other exports hold the network (features or pixels in, the
    model's output out) and are checked against the Keras model on a sample batch.

    Args:
        source: a completed run directory, or a `.keras` file.
        out: the new file (`keras`, `onnx`) or folder (`saved_model`); must not exist.
        format: one of `FORMATS`.
        rows: raw rows to check a raw-rows export on (a CSV path or DataFrame); default: the
            run's test split, re-read from its data (at most `CHECK_ROWS` rows).

    Returns:
        `{"format", "path", "max_abs_diff", "rows", "metadata"}`: the largest difference between
        the export's outputs and the reference's, and on how many rows it was measured.

    Example:
        >>> import kmodels
        >>> kmodels.export("runs/dog_cat/2026-11-25T10-00-00", "dog_cat_savedmodel")  # doctest: +SKIP
        {'format': 'saved_model', 'path': 'dog_cat_savedmodel', 'max_abs_diff': 0.0, 'rows': 8}
    """
    from kmodels.task.inference import _finished_run, _load_state, load_model

    if format not in FORMATS:
        raise ConfigError(f"--format {format!r}: expected one of {', '.join(FORMATS)}.")
    source, out = Path(source).expanduser(), Path(out).expanduser()
    if format == "keras" and out.suffix != ".keras":
        raise ConfigError(f"{str(out)!r}: a Keras model file must end in .keras (Keras loads no other name).")
    if os.path.lexists(out):
        raise ConfigError(f"{str(out)!r} exists; kmodels does not overwrite files. Choose a new path.")
    rd, state = None, None
    if source.is_dir():
        rd, spec = _finished_run(source)
        keras_file = rd.readable(MODEL, MAX_MODEL_BYTES)
        state = _load_state(rd) if format != "keras" else None
    else:
        keras_file = source
    model = _single_input(load_model(keras_file))
    meta = _metadata(rd, model)
    if state is not None:
        return _export_rows(rd, spec, state, model, out, format, meta, rows)
    if rd is not None and format == "saved_model" and len(model.input_shape) == 4 and model.input_shape[-1] == 3:
        return _export_images(rd, spec, model, out, meta, rows)
    x = sample_inputs(model)
    expected = np.asarray(model.predict(x, verbose=0), dtype=np.float64)

    def build(tmp: Path, scratch: Path) -> Any:
        if format == "keras":
            shutil.copyfile(keras_file, tmp)
            return run_keras(tmp, x)
        if format == "saved_model":
            model.export(str(tmp), format="tf_saved_model", verbose=False)
            _saved_model_metadata(tmp, meta)
            return run_saved_model(tmp, x)
        try:
            import onnx
        except ImportError:
            raise RunError('ONNX export needs packages that are not installed; install them with '
                           '`pip install "kmodels[onnx]"`.') from None
        onnx.save(onnx_network(model, tmp), str(tmp))
        add_onnx_metadata(tmp, meta)
        return run_onnx(tmp, x)

    def check(got: Any) -> float:
        diff = float(np.max(np.abs(np.asarray(got, dtype=np.float64).reshape(expected.shape) - expected)))
        if not diff <= TOLERANCE:
            raise RunError(f"The {format} export of {str(keras_file)!r} predicts differently from the Keras model "
                           f"(max abs difference {diff:.3g} > {TOLERANCE:g}); nothing was written.")
        return diff

    diff = _write_checked(out, build, check)
    logger.info("Exported %s as %s to %s (max abs difference %.3g on %d sample rows)",
                keras_file, format, out, diff, len(x))
    return {"format": format, "path": str(out), "max_abs_diff": diff, "rows": len(x), "metadata": meta}


def _scratch_name(out: Path) -> Path:
    return out.with_name(f".{out.stem}.tmp-{os.getpid()}{out.suffix}")  # ours: removed on any failure


def _remove(tmp: Path) -> None:
    if os.path.lexists(tmp):
        shutil.rmtree(tmp) if tmp.is_dir() and not tmp.is_symlink() else tmp.unlink()


#: A raw-rows export is checked on at most this many of the run's test rows.
CHECK_ROWS = 512
#: The largest difference from `kmodels predict` a raw-rows export may show (probabilities, or regression values
#: relative to their scale): float32 round-off of the network, the same preprocessing in float64.
ROWS_TOLERANCE = 1e-5


def _export_rows(rd: Any, spec: Any, state: dict[str, Any], model: Any, out: Path, format: str,
                 meta: dict[str, Any], rows: Any) -> dict[str, Any]:
    """A table run's raw-rows export (`kmodels.task.export_rows`), checked against `kmodels predict`."""

    from kmodels import graph, registry
    from kmodels.task import export_rows
    from kmodels.task.inference import saved_problem

    columns = state.get("feature_columns")
    if not columns:
        raise RunError(f"{str(rd.path)!r} was made by an older kmodels that did not record its feature columns, "
                       "which a raw-rows export is built on. Re-run the task, or export the network alone "
                       "(source: the run's model.keras).")
    kinds, outputs = graph.pipeline_graph(state["pipeline"], columns)
    problem, threshold = saved_problem(rd, model)
    frame = _check_rows(rd, spec, state, rows)
    expected = registry.tasks.get(spec.task).predict_files(rd, model, [frame], allow_missing=True)
    inputs = graph.raw_inputs(frame, kinds)
    slugs = export_rows.signature_names(kinds)
    meta["input"] = {"columns": [{"name": c, "dtype": "float64" if k == graph.NUMBER else "string",
                                  "signature_name": slugs[c]} for c, k in kinds.items()],
                     "missing": "NaN in a number column, the empty string in a text column"}
    meta["outputs"] = list(_outputs(problem))

    def build(tmp: Path, scratch: Path) -> Any:
        if format == "saved_model":
            network = scratch / "network"
            model.export(str(network), format="tf_saved_model", verbose=False)
            export_rows.saved_model(kinds, outputs, network, problem, threshold, tmp)
            _saved_model_metadata(tmp, meta)
            return export_rows.run_saved_model(tmp, inputs)
        import onnx

        from kmodels.task import export_onnx

        network = onnx_network(model, scratch / "network.onnx")
        onnx.save(export_onnx.onnx_model(kinds, outputs, network, problem, threshold), str(tmp))
        add_onnx_metadata(tmp, meta)
        return run_checked(lambda: export_onnx.run_onnx(tmp, inputs))

    diff = _write_checked(out, build, lambda got: _compare_rows(problem, expected, got, format))
    logger.info("Exported %s as a raw-rows %s to %s (max difference from `kmodels predict` %.3g on %d test rows)",
                rd.path, format, out, diff, len(frame))
    return {"format": format, "path": str(out), "max_abs_diff": diff, "rows": len(frame), "metadata": meta}


#: The largest probability difference from `kmodels predict` an image export may show: TensorFlow's and Pillow's
#: antialiased resize round a pixel differently now and then (never by more than 1 of 255), and a patch-whitening
#: stem (`[model] whitening`) scales its weakest 2x2 patch directions up by up to ~45x: 0.0116 was seen in a test.
IMAGE_TOLERANCE = 2e-2
#: An image export is checked on at most this many of the run's test images.
CHECK_IMAGES = 32


def _export_images(rd: Any, spec: Any, model: Any, out: Path, meta: dict[str, Any], rows: Any) -> dict[str, Any]:
    """An image run's SavedModel that takes encoded image files, checked against `kmodels predict`."""

    from kmodels import registry
    from kmodels.task import export_rows
    from kmodels.task.inference import saved_problem

    try:
        size = tuple(int(v) for v in spec["images"]["image_size"])
    except (KeyError, TypeError):
        size = tuple(model.input_shape[1:3])
    problem, threshold = saved_problem(rd, model)
    files = _check_images(rd, spec, rows)
    expected = registry.tasks.get(spec.task).predict_files(rd, model, files)
    readable = (expected["error"] == "").to_numpy() if "error" in expected else np.ones(len(files), bool)
    files, expected = [f for f, ok in zip(files, readable, strict=True) if ok], expected[readable]
    meta["input"] = {"images": "encoded image files (JPEG, PNG, GIF, BMP) as a string tensor, any size",
                     "image_size": list(size)}
    meta["outputs"] = list(_outputs(problem))

    def build(tmp: Path, scratch: Path) -> Any:
        network = scratch / "network"
        model.export(str(network), format="tf_saved_model", verbose=False)
        export_rows.image_saved_model(network, size, problem, threshold, tmp)
        _saved_model_metadata(tmp, meta)
        return export_rows.run_image_saved_model(tmp, files)

    diff = _write_checked(out, build, lambda got: _compare_rows(problem, expected.reset_index(drop=True), got,
                                                                "saved_model", IMAGE_TOLERANCE, threshold))
    logger.info("Exported %s as an encoded-images saved_model to %s (max difference from `kmodels predict` %.3g on "
                "%d test images)", rd.path, out, diff, len(files))
    return {"format": "saved_model", "path": str(out), "max_abs_diff": diff, "rows": len(files), "metadata": meta}


def _write_checked(out: Path, build: Any, check: Any) -> float:
    """Write an export under a scratch name beside `out` (`build(tmp, scratch_dir)` writes it and returns its
    answers on the check rows), hold the answers to `kmodels predict` (`check(got)`: the largest difference, or
    an error past the tolerance), and only then move it to `out`: a failed export leaves nothing behind."""
    import tempfile

    from kmodels.task import export_rows

    tmp = _scratch_name(out)
    try:
        with tempfile.TemporaryDirectory(prefix="kmodels-export-") as scratch, export_rows.quiet_tensorflow():
            got = build(tmp, Path(scratch))
        diff = check(got)
        os.replace(tmp, out)
    finally:
        _remove(tmp)
    return diff


def _saved_model_metadata(path: Path, meta: dict[str, Any]) -> None:
    """`assets/kmodels.json` of a SavedModel export: what `kmodels serve` reads to feed and answer it."""
    (path / "assets").mkdir(exist_ok=True)
    (path / "assets" / METADATA_FILE).write_text(json.dumps(meta, indent=2) + "\n")


def _check_images(rd: Any, spec: Any, rows: Any) -> list[Path]:
    """Image files to check an export on: `rows` (files or folders), or the run's test images."""
    from kmodels import registry
    from kmodels.errors import DataError

    if rows is not None:
        given = [Path(p).expanduser() for p in ([rows] if isinstance(rows, str | Path) else rows)]
        files = [f for p in given for f in (sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p])]
    else:
        task = registry.tasks.get(spec.task)(spec)
        try:
            files = [Path(p) for p in task.split(task.load_data())["test"]["path"]]
        except (DataError, ConfigError, OSError, KeyError) as exc:
            raise RunError(f"The export is checked on the run's images, but its data could not be read again "
                           f"({exc}). Give images to check it on: --rows FOLDER (rows=...).") from None
    files = files[:CHECK_IMAGES]
    if not files:
        raise RunError("No images to check the export on; give some: --rows FOLDER.")
    return files


def _outputs(problem: Any) -> tuple[str, ...]:
    from kmodels.task import export_rows

    if problem.per_label_threshold:
        return export_rows.OUTPUTS_MULTILABEL
    return export_rows.OUTPUTS_CLASSIFICATION if problem.is_classification else export_rows.OUTPUTS_REGRESSION


def _check_rows(rd: Any, spec: Any, state: dict[str, Any], rows: Any) -> pd.DataFrame:
    """Raw feature rows to check an export on: `rows`, or the run's test split re-read from its data."""
    from kmodels import registry
    from kmodels.backend import set_seed
    from kmodels.data.csv import read_csv
    from kmodels.errors import DataError

    if rows is not None:
        frame = rows if isinstance(rows, pd.DataFrame) else read_csv(Path(rows).expanduser())
    else:
        task = registry.tasks.get(spec.task)(spec)
        set_seed(task.train_options.seed)
        try:
            frame = task.prepare(fitted=state["pipeline"]).data["test"].frame
        except (DataError, ConfigError, OSError) as exc:
            raise RunError(f"The export is checked on the run's test rows, but its data could not be read again "
                           f"({exc}). Give rows to check it on: --rows FILE.csv (rows=...).") from None
    frame = frame.drop(columns=[state.get("target"), *state.get("exclude", [])], errors="ignore").head(CHECK_ROWS)
    if frame.empty:
        raise RunError("No rows to check the export on (the test split is empty); give some: --rows FILE.csv.")
    return frame


def _compare_rows(problem: Any, expected: pd.DataFrame, got: dict[str, np.ndarray], format: str,
                  tolerance: float = ROWS_TOLERANCE, threshold: float = 0.5) -> float:
    """The largest difference between an export's outputs and `kmodels predict`'s; labels must agree too
    (but where the probabilities are within `tolerance` of the decision)."""
    if not problem.is_classification:
        want = expected["prediction"].to_numpy(dtype=np.float64)
        scale = max(1.0, float(np.max(np.abs(want))) if len(want) else 1.0)
        diff = float(np.max(np.abs(np.asarray(got["prediction"], np.float64) - want))) / scale
    else:
        want = expected[[f"probability_{c}" for c in problem.class_names]].to_numpy(dtype=np.float64)
        diff = float(np.max(np.abs(np.asarray(got["probabilities"], np.float64).reshape(want.shape) - want)))
        labels = np.array([v.decode() if isinstance(v, bytes) else str(v) for v in got["label"]], dtype=object)
        differ = labels != expected["label"].astype(str).to_numpy(dtype=object)
        if tolerance > ROWS_TOLERANCE:  # a close call may go either way within the tolerance
            close = (np.abs(want - np.asarray(threshold)).min(axis=1) <= tolerance
                     if problem.uses_threshold or problem.per_label_threshold else
                     np.sort(want, axis=1)[:, -1] - np.sort(want, axis=1)[:, -2] <= 2 * tolerance)
            differ &= ~close
        if differ.any():
            raise RunError(f"The {format} export labels {int(differ.sum())} of {len(labels)} check rows differently "
                           f"from `kmodels predict` (e.g. {labels[differ][0]!r} for {expected['label'][differ].iloc[0]!r}); "
                           "nothing was written.")
    if not diff <= tolerance:
        raise RunError(f"The {format} export predicts differently from `kmodels predict` on the run's rows (max "
                       f"difference {diff:.3g} > {tolerance:g}); nothing was written.")
    return diff


#: The file a SavedModel export carries in `assets/` (and an ONNX export as metadata_props): what its output means.
METADATA_FILE = "kmodels.json"


def _metadata(run_dir: Any, model: Any) -> dict[str, Any]:
    """What the exported output means: problem, classes in output order, the decision threshold (binary)."""
    from kmodels import __version__
    from kmodels.task.inference import saved_problem

    problem, threshold = saved_problem(run_dir, model)
    meta: dict[str, Any] = {"kmodels": __version__, "problem": problem.kind, "classes": list(problem.class_names),
                            "output": problem.describe_output()}
    if problem.uses_threshold:
        meta.update(threshold=threshold, positive_class=problem.class_names[1])
    if problem.per_label_threshold:
        meta.update(threshold=list(threshold) if isinstance(threshold, tuple) else threshold, label_sep=problem.sep)
    meta["input"] = ("the run's features after its preprocessing (kmodels predict applies it)" if run_dir is not None
                     and run_dir.exists(STATE) else f"shape {list(model.input_shape)}")
    return meta


def _single_input(model: Any) -> Any:
    """`model` with its one input as a tensor, not a list of one (regression runs before 2026-12 saved it so,
    and an export of such a model takes a list of one array, which no user expects)."""
    import keras

    if isinstance(model.input, list | tuple) and len(model.inputs) == 1 and len(model.outputs) == 1:
        return keras.Model(model.inputs[0], model.outputs[0], name=model.name)
    return model
