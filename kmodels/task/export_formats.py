"""Each export format written and run back: what `kmodels.task.export` checks an export with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from kmodels.errors import RunError


def onnx_network(model: Any, scratch: Path) -> Any:
    """The network as ONNX: through Keras and tf2onnx on TensorFlow; written from the weights elsewhere (JAX),
    for the dense chains table models are (`export_onnx.onnx_network`)."""
    import keras
    import onnx

    from kmodels.task import export_onnx

    if keras.backend.backend() != "tensorflow":
        return export_onnx.onnx_network(model)
    write_onnx(model, scratch)
    return onnx.load(str(scratch))


def run_checked(run: Any) -> Any:
    try:
        return run()
    except ImportError:
        raise RunError('Checking an ONNX export needs onnxruntime: `pip install "kmodels[onnx]"`.') from None


def add_onnx_metadata(path: Path, meta: dict[str, Any]) -> None:
    import onnx

    proto = onnx.load(str(path))
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = f"kmodels.{key}", value if isinstance(value, str) else json.dumps(value)
    onnx.save(proto, str(path))


def sample_inputs(model: Any, rows: int = 8) -> np.ndarray:
    """A deterministic batch shaped like the model's input: pixels in [0, 255] for images, N(0, 1) for rows."""
    shape = tuple(model.input_shape[1:])
    rng = np.random.default_rng(0)
    if len(shape) == 3:
        return rng.uniform(0, 255, (rows, *shape)).astype(np.float32)
    return rng.normal(size=(rows, *shape)).astype(np.float32)


def run_keras(path: Path, x: np.ndarray) -> np.ndarray:
    """Predict `x` with the `.keras` file at `path`, loaded back the way every kmodels command loads one
    (`kmodels.task.inference.load_model`: `safe_mode=True`, placeholder weights drawn with NumPy)."""
    from kmodels.task.inference import load_model

    return load_model(path).predict(x, verbose=0)


def run_saved_model(path: Path, x: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))  # kept referenced: its variables die with it
    return loaded.serve(tf.constant(x)).numpy()


def write_onnx(model: Any, path: Path) -> None:

    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # Keras's tf2onnx shim probes np.object
            model.export(str(path), format="onnx", verbose=False)
    except ImportError as exc:
        raise RunError(f"ONNX export needs packages that are not installed ({exc}); "
                       'install them with `pip install "kmodels[onnx]"`.') from None


def run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    try:
        import onnxruntime
    except ImportError:
        raise RunError('Checking an ONNX export needs onnxruntime: `pip install "kmodels[onnx]"`.') from None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]
