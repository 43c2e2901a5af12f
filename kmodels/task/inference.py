"""Using a finished run: load its model and state, predict, re-evaluate.

What a run saves is read back here: `model.keras` (with `safe_mode`), the
fitted preprocessing, the problem with its classes and the decision threshold.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kmodels import registry
from kmodels.backend import compilation_cache, set_seed, tensorflow_unimported
from kmodels.errors import ConfigError, RunError
from kmodels.initializers import host_initialized
from kmodels.problems import Problem
from kmodels.runs import MAX_MODEL_BYTES, MAX_STATE_BYTES, RunDir, atomic_target, check_zip, regular_file
from kmodels.saving import METADATA, METRICS, MODEL, SPEC, STATE, STATE_META
from kmodels.spec import TaskSpec, load_spec

logger = logging.getLogger("kmodels")


def save_model(model: Any, path: Path) -> Path:
    """Save a Keras model atomically: a failed save leaves no `model.keras` behind.

    What is saved is the model the task's `finish_model` returned, whose speed-only layers
    (`HashDropout`, the vision plugin's fused BatchNorm) the default `finish_model` has already
    swapped for Keras's own (`kmodels.layers.portable_model`); this function saves what it is given.
    """
    with atomic_target(path, suffix=".keras") as tmp, tensorflow_unimported():
        model.save(tmp)
    return path


def saved_problem(run_dir: RunDir | None, model: Any) -> tuple[Problem, Any]:
    """The problem and decision threshold a run was trained for, or what a bare model's output implies.

    What `metrics.json` says is checked before it is used: the threshold must be a probability
    strictly between 0 and 1, and the problem must match the model's output width (a run directory
    is data that anyone may have edited).
    """
    if run_dir is not None and run_dir.exists(METRICS):
        metrics = run_dir.read_json(METRICS)
        where = str(run_dir.file(METRICS))
        if not isinstance(metrics, dict):
            raise RunError(f"{where!r} does not hold a JSON object; is this a kmodels run directory?")
        try:
            problem = (Problem.from_json(metrics["problem"]) if "problem" in metrics
                       else Problem("binary", tuple(metrics.get("classes", ("0", "1")))))
        except (KeyError, TypeError, ValueError) as exc:
            raise RunError(f"{where!r}: its 'problem' entry is not one kmodels wrote ({exc}).") from None
        try:
            threshold = problem.check_threshold(metrics.get("threshold", 0.5))
        except ValueError as exc:
            raise RunError(f"{where!r}: {exc} (strictly between 0 and 1); the file was edited or damaged. Re-run "
                           "the task, or fix the value.") from None
        _check_output_width(problem, model, where)
        return problem, threshold
    units = int(model.output_shape[-1])
    activation = getattr(model.layers[-1], "activation", None)
    if units == 1 and getattr(activation, "__name__", "") != "sigmoid":
        return Problem.from_num_classes(1), 0.5
    if units > 1 and getattr(activation, "__name__", "") == "sigmoid":  # independent labels
        return Problem("multilabel", tuple(str(i) for i in range(units)), "sigmoid units"), 0.5
    return Problem.from_num_classes(max(units, 2)), 0.5


def _check_output_width(problem: Problem, model: Any, where: str) -> None:
    """Refuse a saved problem that the model's output cannot answer (e.g. a 3-class model read as a regression)."""
    shape = getattr(model, "output_shape", None)
    if not isinstance(shape, tuple) or not shape or not isinstance(shape[-1], int):
        return  # a model with several outputs: the task that made it checks its own
    expected = problem.output_width
    if shape[-1] != expected:
        raise RunError(f"{where!r} says the run is a {problem.kind} problem with {len(problem.classes)} classes, "
                       f"which needs {expected} model output(s), but model.keras has {shape[-1]}. The run "
                       "directory's files do not belong together; re-run the task.")


def prediction_frame(problem: Problem, output: np.ndarray, threshold: Any = 0.5,
                     index: Any = None) -> pd.DataFrame:
    """Predictions as a DataFrame, as the problem writes them (`Problem.prediction_frame`).

    Classification: `label`, its `probability`, and one `probability_<class>` column per class
    (binary too, so the positive class is named); multi-label: `label` (the labels joined by the
    problem's `sep`) and a `probability_<label>` per label; regression: `prediction`.
    """
    return problem.prediction_frame(output, threshold, index)


#: The fitted preprocessing (skops format: data, loaded without running code) and what goes with it (JSON).
STATE_FILE = STATE


def save_state(run_dir: RunDir, pipeline: Any, meta: dict[str, Any]) -> None:
    """Write the fitted preprocessing as data (`skops.io`, no pickle) and its metadata as JSON."""
    import skops.io as sio

    with atomic_target(run_dir.file(STATE_FILE), suffix=".skops") as tmp:
        sio.dump(pipeline, tmp)
    run_dir.write_json(STATE_META, meta)


def trusted_types() -> set[str]:
    """The only classes a run's preprocessing file may hold beyond scikit-learn's and NumPy's own.

    The registered preprocessors (installed code the user chose to install), under their import path and
    any path a class names in `former_paths` (where it lived when older runs were saved), and
    scikit-learn's `Pipeline`; `skops` itself trusts NumPy arrays and builtins.
    """
    names = {"sklearn.pipeline.Pipeline"}
    for name in registry.preprocessors.list():
        obj = registry.preprocessors.get(name)
        if isinstance(obj, type):
            names.add(f"{obj.__module__}.{obj.__qualname__}")
            names.update(getattr(obj, "former_paths", ()))
    return names


def _load_state(run_dir: RunDir) -> dict[str, Any] | None:
    """The fitted preprocessing of a run, loaded as data: a file holding any other type is refused."""
    if run_dir.exists("preprocessor.pkl"):
        raise RunError(f"{str(run_dir.path)!r} holds preprocessor.pkl, a pickle (from kmodels 0.1, or crafted): "
                       "kmodels never unpickles a run directory, since that can run code. Re-run the task.")
    if not run_dir.exists(STATE_FILE):
        return None
    import skops.io as sio

    path = run_dir.readable(STATE_FILE, limit=MAX_STATE_BYTES)
    check_zip(path, MAX_STATE_BYTES, "preprocessing file")
    try:
        found = set(sio.get_untrusted_types(file=path))
        nodes = _foreign_nodes(path)
    except Exception as exc:  # noqa: BLE001 - any failure to read it means: not a state file we wrote
        raise RunError(f"{str(path)!r} is not a readable kmodels state file ({type(exc).__name__}: {exc}).") from None
    foreign = sorted((found - trusted_types()) | nodes)
    if foreign:
        raise RunError(f"{str(path)!r} holds types that are not registered preprocessors: {foreign[:5]}; "
                       "refusing to load it. Is this run directory from a source you trust, made with the same plugins?")
    return {"pipeline": sio.load(path, trusted=sorted(found)), **run_dir.read_json(STATE_META)}


#: What a kmodels state file may hold besides registered preprocessors: containers, arrays and types of these
#: modules, each as skops stores it. A function (`numpy.negative`) or any other object is refused.
_STATE_LOADERS = {"DictNode", "JsonNode", "ListNode", "TupleNode", "SetNode", "NdArrayNode", "DTypeNode",
                  "TypeNode", "ObjectNode", "ReduceNode", "SliceNode", "BytesNode", "BytearrayNode",
                  "RandomStateNode", "RandomGeneratorNode"}
_STATE_MODULES = ("builtins", "numpy")


def _foreign_nodes(path: Path) -> set[str]:
    """What in a skops file's schema is neither data nor a registered preprocessor.

    `skops` itself trusts scikit-learn's classes and NumPy's functions, so a crafted file could
    hold `FunctionTransformer(numpy.negative)` and have it applied to the rows; kmodels only
    ever saves its registered preprocessors in a `Pipeline`, so that is all it loads.
    """
    import json
    import zipfile

    with zipfile.ZipFile(path) as archive:
        schema = json.loads(archive.read("schema.json"))
    allowed = trusted_types()
    foreign: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        stack.extend(node.values())
        if "__class__" not in node:
            continue
        loader, module, name = node.get("__loader__"), str(node.get("__module__")), str(node["__class__"])
        qualified = f"{module}.{name}"
        if loader not in _STATE_LOADERS:
            foreign.add(f"{qualified} ({loader})")
        elif qualified not in allowed and module.split(".")[0] not in _STATE_MODULES:
            foreign.add(qualified)
    return foreign


def load_model(path: Path) -> Any:
    """Load a `.keras` file with `safe_mode=True` (no arbitrary code).

    Keras builds every layer before it reads the file's weights, drawing initial values that the file then
    replaces; on JAX each weight shape is one compiled random program (`efficientnet_b0`: 210 compilations,
    30 s on 2 CPU cores). `host_initialized` draws them with NumPy instead (1.9 s).
    """
    import keras

    if not os.path.lexists(path):
        raise RunError(f"{str(path)!r} not found; the run may have failed before saving its model.")
    regular_file(path, MAX_MODEL_BYTES, what="model file")
    check_zip(Path(path), MAX_MODEL_BYTES, "model file")
    compilation_cache()  # JAX: predicting with the same shapes again loads the compiled step
    import kmodels.layers  # noqa: F401 - registers kmodels' own layers with Keras's loader
    try:
        with tensorflow_unimported(), host_initialized():
            return keras.saving.load_model(path, safe_mode=True)
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign file: say so, whatever Keras raised
        if "safe_mode" not in str(exc):
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
            raise RunError(f"{str(path)!r} could not be loaded as a Keras model ({type(exc).__name__}: {first}). It is "
                           "damaged, from an incompatible Keras version, or not a model kmodels saved; re-run the "
                           "task to make a new one.") from None
        raise RunError(f"{str(path)!r} holds Python code (a Lambda layer or another deserialized function), which "
                       "kmodels never loads: a model from a run directory must not run code on your machine. If "
                       "you wrote it yourself and trust it, load it with keras.saving.load_model(path, "
                       "safe_mode=False).") from None


def _finished_run(path: str | Path) -> tuple[RunDir, TaskSpec]:
    rd = RunDir(path)
    meta = rd.read_json(METADATA)
    if meta.get("status") != "completed":
        raise RunError(
            f"Run {str(rd.path)!r} has status {meta.get('status')!r}, not 'completed'"
            + (f" ({meta['error']})" if meta.get("error") else "") + "; its artifacts may be incomplete."
        )
    return rd, load_spec(rd.readable(SPEC))


def evaluate_run(path: str | Path, data: str | Path | pd.DataFrame | None = None) -> dict[str, Any]:
    """Re-evaluate a finished run's model on its test split (same data, seed and preprocessing), or score it
    on new labelled `data` (every row: a CSV or DataFrame holding the target column, or an image folder).

    Example:
        >>> import kmodels
        >>> kmodels.evaluate("runs/tabular/20261203T120000Z", data="new_labelled.csv")  # doctest: +SKIP
    """
    rd, spec = _finished_run(path)
    task = registry.tasks.get(spec.task)(spec)
    set_seed(task.train_options.seed)
    if data is None:
        return task.evaluate_saved(rd)
    model = load_model(rd.readable(MODEL, MAX_MODEL_BYTES))
    return task.score_saved(rd, model, data if isinstance(data, pd.DataFrame) else Path(data).expanduser())


def explain_run(path: str | Path, inputs: Any = (), plot: str | Path | None = None) -> pd.DataFrame:
    """What a finished run's model relies on (read-only): for tables, permutation importance of each column
    on its test split or on labelled CSV `inputs`; for images, occlusion maps of the image `inputs`.

    `plot`: a new PNG file for the chart or the maps; an existing file is never overwritten.

    Example:
        >>> import kmodels
        >>> kmodels.explain("runs/tabular/20261203T120000Z").head(3)  # doctest: +SKIP
    """
    rd, spec = _finished_run(path)
    if plot is not None and os.path.lexists(plot):
        raise ConfigError(f"--plot {str(plot)!r} exists; kmodels does not overwrite files. Choose a new path.")
    task = registry.tasks.get(spec.task)(spec)
    set_seed(task.train_options.seed)
    model = load_model(rd.readable(MODEL, MAX_MODEL_BYTES))
    if isinstance(inputs, str | Path):
        inputs = [inputs]
    return task.explain_saved(rd, model, [Path(p) for p in inputs], None if plot is None else Path(plot))


def predict(source: str | Path, inputs: Any, allow_missing: bool = False) -> pd.DataFrame:
    """Predict with a finished run directory (its task reads `inputs`) or a bare `.keras` file.

    `inputs` is a path, a pandas DataFrame (table tasks), or a list of them; the result is a DataFrame.
    Table rows with text in a numeric column or every feature missing are refused unless
    `allow_missing=True` (they are then predicted with imputed values).
    """
    source = Path(source)
    if isinstance(inputs, pd.DataFrame | str | Path):
        inputs = [inputs]
    paths = [p if isinstance(p, pd.DataFrame) else Path(p) for p in inputs]
    if source.is_dir():
        rd, spec = _finished_run(source)
        model = load_model(rd.readable(MODEL, MAX_MODEL_BYTES))
        return registry.tasks.get(spec.task).predict_files(rd, model, paths, allow_missing=allow_missing)
    model = load_model(source)
    for name in registry.tasks.list():
        task = registry.tasks.get(name)
        if task.handles(model):
            return task.predict_files(None, model, paths, allow_missing=allow_missing)
    raise RunError(f"No registered task predicts with {str(source)!r} (input shape {model.input_shape}); "
                   "predict with its run directory instead.")


def _as_matrix(x: Any) -> np.ndarray:
    if isinstance(x, pd.DataFrame):
        numeric = x.select_dtypes("number")
        holes = [c for c in numeric.columns if not np.isfinite(numeric[c].to_numpy(dtype=float)).all()]
        if holes:
            raise ConfigError(f"After preprocessing, columns {holes[:10]} still hold NaN or infinite values. Put an "
                              "`impute` step (it fills both) in [[preprocess]] after every step that can produce them.")
        bad = [c for c in x.columns if not pd.api.types.is_numeric_dtype(x[c]) and not pd.api.types.is_bool_dtype(x[c])]
        if bad:
            raise ConfigError(
                f"After preprocessing, columns {bad} are not numeric. Add an encoding step to [[preprocess]] "
                "(e.g. one_hot or frequency_encode) or drop them (drop_columns)."
            )
        x = x.to_numpy(dtype=np.float32)
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[:, None]
    if not np.isfinite(x).all():
        raise ConfigError("After preprocessing the features still hold NaN or infinite values; put an `impute` step "
                          "(it fills both) in [[preprocess]] after every step that can produce them.")
    return x


#: `predict_rows` pads up to powers of two until this many rows, then to multiples of it.
ROW_BUCKET = 64


def row_bucket(n: int) -> int:
    """The number of rows `predict_rows` pads `n` rows to: the next power of two up to `ROW_BUCKET`, then the
    next multiple of it (at most twice the work for a few rows, a sixty-fourth more for many).

    Example:
        >>> [row_bucket(n) for n in (1, 3, 33, 64, 65, 1000)]
        [1, 4, 64, 64, 128, 1024]
    """
    if n <= ROW_BUCKET:
        return 1 << max(0, n - 1).bit_length()
    return -(-n // ROW_BUCKET) * ROW_BUCKET


def predict_rows(model: Any, x: Any, batch_size: int = 1024, direct: bool = False) -> np.ndarray:
    """`model`'s output for the rows of `x` (an array, or several in a list or dict), one row per row.

    On JAX every new number of rows compiles the model again (0.1-1 s; a server answering requests of
    1-64 rows met 41 sizes in 60 requests), so there the rows are padded with copies of the last one
    to `row_bucket(n)` (at most 11 sizes up to 1,024 rows) and the padding's outputs dropped. Other
    backends predict the rows as they are. `direct` predicts them as one batch with
    `model.predict_on_batch` instead of `model.predict` (8 rows of a table network: 0.2 ms against
    1.1 ms on JAX, 0.6 against 43 ms on TensorFlow; calling the model eagerly took 1.7 ms on both).

    Example:
        >>> import keras, numpy as np
        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        >>> predict_rows(model, np.ones((5, 3), "float32"), direct=True).shape  # padded to 8 rows on JAX
        (5, 2)
    """
    import keras

    n = len(keras.tree.flatten(x)[0])
    if keras.backend.backend() == "jax" and n and row_bucket(n) != n:
        take = np.minimum(np.arange(row_bucket(n)), n - 1)
        x = keras.tree.map_structure(lambda a: np.asarray(a)[take], x)
    if direct:
        out = model.predict_on_batch(x)
    else:
        out = np.asarray(model.predict(x, batch_size=batch_size, verbose=0))
    return np.asarray(out)[:n]
