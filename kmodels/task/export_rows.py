"""Exports that take raw table rows: the run's fitted preprocessing in front of the network, and the
decision after it, in one TensorFlow SavedModel or ONNX graph.

The preprocessing comes from each step's `to_graph` (`kmodels.graph` expressions); here the
expressions become TensorFlow ops or ONNX nodes. The exported model takes one input per raw
column, named as the column: float64 for numbers (NaN for missing) and strings for text
(`""` for missing), and returns

- classification: `label` (the class name; binary at the run's threshold), `probability`
  (of that label) and `probabilities` (one column per class, in `classes` order);
- multi-label: `label` (the labels at or above their thresholds, joined by the run's separator)
  and `probabilities` (one column per label);
- regression: `prediction`.

Nothing of kmodels is needed to load or run it: `tf.saved_model.load(path).serve({...})`, or
`onnxruntime.InferenceSession(path).run(None, {...})`.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from kmodels import graph
from kmodels.graph import NUMBER, STRING, Column, NotExportable

OUTPUTS_CLASSIFICATION = ("label", "probability", "probabilities")
OUTPUTS_MULTILABEL = ("label", "probabilities")
OUTPUTS_REGRESSION = ("prediction",)


def signature_names(kinds: Mapping[str, str]) -> dict[str, str]:
    """Column name -> a name TensorFlow accepts for a signature argument (letters, digits, `_`), unique."""
    out: dict[str, str] = {}
    for i, name in enumerate(kinds):
        slug = re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_") or f"column_{i}"
        slug = slug if slug[0].isalpha() else f"c_{slug}"
        while slug in out.values():
            slug = f"{slug}_{i}"
        out[name] = slug
    return out


@contextlib.contextmanager
def quiet_tensorflow() -> Iterator[None]:
    """Keep TensorFlow's save/load chatter (lookup-table initializers, jax2tf's unsaved gradients) out of the log."""
    from absl import logging as absl_logging  # TensorFlow's own logging library, installed with it

    loggers = [logging.getLogger(name) for name in ("tensorflow", "absl")]
    levels, verbosity = [lg.level for lg in loggers], absl_logging.get_verbosity()
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    absl_logging.set_verbosity(absl_logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
        absl_logging.set_verbosity(verbosity)


# ---- TensorFlow --------------------------------------------------------------------------------------
def _tf_days(y: Any, m: Any, d: Any) -> Any:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil), float64."""
    import tensorflow as tf

    y = y - tf.cast(m <= 2, tf.float64)
    era = tf.floor(y / 400.0)
    yoe = y - era * 400.0
    doy = tf.floor((153.0 * tf.where(m > 2, m - 3.0, m + 9.0) + 2.0) / 5.0) + d - 1.0
    doe = yoe * 365.0 + tf.floor(yoe / 4.0) - tf.floor(yoe / 100.0) + doy
    return era * 146097.0 + doe - 719468.0


def _tf_year(days: Any) -> Any:
    """The year of a day number (H. Hinnant's civil_from_days), float64."""
    import tensorflow as tf

    z = days + 719468.0
    era = tf.floor(z / 146097.0)
    doe = z - era * 146097.0
    yoe = tf.floor((doe - tf.floor(doe / 1460.0) + tf.floor(doe / 36524.0) - tf.floor(doe / 146096.0)) / 365.0)
    doy = doe - (365.0 * yoe + tf.floor(yoe / 4.0) - tf.floor(yoe / 100.0))
    mp = tf.floor((5.0 * doy + 2.0) / 153.0)
    return yoe + era * 400.0 + tf.cast(mp >= 10, tf.float64)


def _tf_dates(text: Any, month_first: bool, today: int, reference: Any = None) -> list[Any]:
    """`graph.date_parts` in TensorFlow ops: year, month, weekday, days (float64, NaN where not a date)."""
    import tensorflow as tf

    f64 = tf.float64
    s = tf.strings.strip(text)
    is_dmy = tf.strings.regex_full_match(s, graph.DATE_DMY)
    is_iso = tf.strings.regex_full_match(s, graph.DATE_ISO) & ~is_dmy

    def part(pattern: str, group: int, ok: Any) -> Any:
        digits = tf.strings.regex_replace(s, f"^{pattern}$", f"\\{group}")
        return tf.strings.to_number(tf.where(ok, digits, "0"), f64)

    a, b, c = (part(graph.DATE_DMY, g, is_dmy) for g in (1, 2, 3))
    day, month = (b, a) if month_first else (a, b)
    two = is_dmy & (tf.strings.length(tf.strings.regex_replace(s, f"^{graph.DATE_DMY}$", "\\3")) == 2)
    year = tf.where(is_iso, part(graph.DATE_ISO, 1, is_iso), c)
    month = tf.where(is_iso, part(graph.DATE_ISO, 2, is_iso), month)
    day = tf.where(is_iso, part(graph.DATE_ISO, 3, is_iso), day)
    month_ok = (month >= 1) & (month <= 12)
    m = tf.where(month_ok, month, tf.ones_like(month))
    ref = tf.fill(tf.shape(year), tf.constant(float(today), f64))
    if reference is not None:
        ref = tf.where(tf.math.is_finite(reference), reference, ref)
    century = tf.floor(_tf_year(ref) / 100.0) * 100.0
    this = tf.where(two, century + year, year)
    too_late = two & (_tf_days(this, m, day) > ref)
    year = tf.where(too_late, this - 100.0, this)
    nxt = tf.where(m == 12, tf.ones_like(m), m + 1.0)
    length = _tf_days(year + tf.cast(m == 12, f64), nxt, tf.ones_like(m)) - _tf_days(year, m, tf.ones_like(m))
    ok = (is_dmy | is_iso) & month_ok & (day >= 1) & (day <= length) & (year >= graph.MIN_YEAR) & (year <= 9999)
    days = _tf_days(year, m, day)
    nan = tf.fill(tf.shape(days), tf.constant(np.nan, f64))
    return [tf.where(ok, v, nan) for v in (year, month, tf.math.floormod(days + 3.0, 7.0), days)]


def tf_features(outputs: Mapping[str, Column], columns: Mapping[str, Any], tables: Mapping[int, Any]) -> Any:
    """The preprocessed features (n, F) float32 of raw input tensors, per the expressions."""
    import tensorflow as tf

    rows = tf.shape(next(iter(columns.values())))[0]
    values: dict[Any, Any] = {}
    arith = {"add": tf.add, "sub": tf.subtract, "mul": tf.multiply, "div": tf.divide, "floor": tf.floor,
             "log1p": tf.math.log1p, "sqrt": tf.sqrt, "identity": tf.identity, "maximum": _tf_maximum, "lt": tf.less,
             "gt": tf.greater, "eq": tf.equal, "or": tf.logical_or}
    for node in graph.walk(outputs.values()):
        a = [values[id(arg)] for arg in node.args]
        op = node.op
        if op == "input":
            v = columns[node.attrs["name"]]
        elif op == "const":
            v = tf.constant(node.attrs["value"], tf.float64)
        elif op == "is_missing":
            v = tf.equal(a[0], graph.MISSING_STRING) if node.args[0].kind == STRING else ~tf.math.is_finite(a[0])
        elif op == "where":
            v = tf.where(a[0], a[1], a[2])
        elif op == "to_float":
            v = tf.cast(a[0], tf.float64)
        elif op == "lookup":
            v = tables[id(node)].lookup(a[0])
        elif op == "date_part":
            key = (*(id(arg) for arg in node.args), node.attrs["month_first"])
            if key not in values:
                values[key] = _tf_dates(a[0], node.attrs["month_first"], node.attrs["today"], *a[1:])
            v = values[key][graph.DATE_FIELDS.index(node.attrs["field"])]
        elif op in arith:
            v = arith[op](*a)
        else:
            raise NotExportable(f"Unknown graph operation {op!r}.")
        values[id(node)] = v
    stacked = [tf.broadcast_to(tf.cast(values[id(n)], tf.float64), [rows]) for n in outputs.values()]
    return tf.cast(tf.stack(stacked, axis=1), tf.float32)


def _tf_maximum(x: Any, value: Any) -> Any:
    """`np.maximum`: NaN stays NaN (`tf.maximum` would give the other value)."""
    import tensorflow as tf

    return tf.where(tf.math.is_nan(x), x, tf.maximum(x, value))


def tf_decision(problem: Any, threshold: float, output: Any) -> dict[str, Any]:
    """The exported outputs of the network's output tensor (see the module docstring)."""
    import tensorflow as tf

    out = tf.cast(tf.reshape(output, [tf.shape(output)[0], -1]), tf.float64)
    if not problem.is_classification:
        return {"prediction": out[:, 0]}
    names = tf.constant(list(problem.class_names), tf.string)
    if problem.per_label_threshold:  # the labels at or above their thresholds, joined by the problem's sep
        chosen = out >= tf.constant(np.broadcast_to(np.asarray(threshold, np.float64), (len(problem.classes),)))
        joined = tf.strings.reduce_join(tf.where(chosen, tf.broadcast_to(names + problem.sep, tf.shape(out)), ""),
                                        axis=1)
        return {"label": tf.strings.regex_replace(joined, re.escape(problem.sep) + "$", ""), "probabilities": out}
    if problem.uses_threshold:
        positive = out[:, 0]
        probabilities = tf.stack([1.0 - positive, positive], axis=1)
        index = tf.cast(positive >= threshold, tf.int64)
    else:
        probabilities = out
        index = tf.argmax(out, axis=1, output_type=tf.int64)
    return {"label": tf.gather(names, index), "probability": tf.gather(probabilities, index, batch_dims=1),
            "probabilities": probabilities}


def saved_model(kinds: Mapping[str, str], outputs: Mapping[str, Column], network_dir: Path, problem: Any,
                threshold: float, path: Path) -> None:
    """Write the raw-rows SavedModel to `path`: `serve(dict of columns)` and a flat `serving_default`
    signature (argument names from `signature_names`) for TF Serving."""
    import tensorflow as tf

    module = tf.Module()
    module.network = tf.saved_model.load(str(network_dir))
    tables: dict[int, Any] = {}
    for node in graph.walk(outputs.values()):
        if node.op == "lookup":
            init = tf.lookup.KeyValueTensorInitializer(tf.constant(node.attrs["keys"], tf.string),
                                                       tf.constant(node.attrs["values"], tf.float64))
            tables[id(node)] = tf.lookup.StaticHashTable(init, default_value=tf.constant(node.attrs["default"],
                                                                                         tf.float64))
    module.tables = list(tables.values())
    dtypes = {name: tf.float64 if kind == NUMBER else tf.string for name, kind in kinds.items()}
    slugs = signature_names(kinds)

    @tf.function(input_signature=[{name: tf.TensorSpec([None], dtype) for name, dtype in dtypes.items()}])
    def serve(columns: dict[str, Any]) -> dict[str, Any]:
        return tf_decision(problem, threshold, module.network.serve(tf_features(outputs, columns, tables)))

    @tf.function(input_signature=[tf.TensorSpec([None], dtypes[name], name=slugs[name]) for name in kinds])
    def flat(*args: Any) -> dict[str, Any]:
        return serve(dict(zip(kinds, args, strict=True)))

    module.serve = serve
    # No gradients are saved: a network from JAX (jax2tf) carries custom ones that cannot be saved again.
    tf.saved_model.save(module, str(path), signatures={"serving_default": flat.get_concrete_function()},
                        options=tf.saved_model.SaveOptions(experimental_custom_gradients=False))


def run_saved_model(path: Path, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    got = loaded.serve({k: tf.constant(v.astype(str) if v.dtype == object else v) for k, v in inputs.items()})
    return {k: v.numpy() for k, v in got.items()}


# ---- encoded images (SavedModel) -----------------------------------------------------------------------
def _tf_image(data: Any, size: tuple[int, int]) -> Any:
    """One encoded image (JPEG, PNG, GIF, BMP) as `kmodels predict` reads it: RGB, transparency over white,
    resized to `size` (height, width) with an antialiased bilinear filter, float32 in [0, 255]: the same
    pixels but for an occasional rounding difference of 1.

    A JPEG much larger than `size` is decoded at 1/2, 1/4 or 1/8 scale by the JPEG decoder itself,
    as Pillow's draft mode does in `predict`.
    """
    import tensorflow as tf

    h, w = size

    def jpeg() -> Any:
        shape = tf.image.extract_jpeg_shape(data)
        scale = tf.minimum(shape[1] // w, shape[0] // h)
        branch = tf.cast(scale >= 2, tf.int32) + tf.cast(scale >= 4, tf.int32) + tf.cast(scale >= 8, tf.int32)
        return tf.switch_case(branch, [
            lambda r=r: tf.io.decode_jpeg(data, channels=3, ratio=r, dct_method="INTEGER_ACCURATE")
            for r in (1, 2, 4, 8)])

    def other() -> Any:  # PNG, GIF, BMP: grey or colour, with or without transparency
        image = tf.cast(tf.io.decode_image(data, channels=0, expand_animations=False), tf.float32)
        channels = tf.shape(image)[-1]
        rgb = tf.cond(channels >= 3, lambda: image[..., :3], lambda: tf.tile(image[..., :1], [1, 1, 3]))
        alpha = tf.cond(channels % 2 == 0, lambda: image[..., -1:] / 255.0, lambda: tf.ones_like(image[..., :1]))
        return tf.round(rgb * alpha + 255.0 * (1.0 - alpha))

    image = tf.cond(tf.io.is_jpeg(data), lambda: tf.cast(jpeg(), tf.float32), other)
    image.set_shape([None, None, 3])
    # Pillow resizes in two passes, width then height, rounding to 8 bits in between: so do we.
    wide = tf.image.resize(image, [tf.shape(image)[0], w], method="bilinear", antialias=True)
    wide = tf.clip_by_value(tf.round(wide), 0.0, 255.0)
    return tf.clip_by_value(tf.round(tf.image.resize(wide, [h, w], method="bilinear", antialias=True)), 0.0, 255.0)


def image_saved_model(network_dir: Path, size: tuple[int, int], problem: Any, threshold: float, path: Path) -> None:
    """Write an image SavedModel that takes encoded files (`images`: a string tensor of file bytes) and returns
    `label`, `probability` and `probabilities` (regression: `prediction`)."""
    import tensorflow as tf

    module = tf.Module()
    module.network = tf.saved_model.load(str(network_dir))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="images")])
    def serve(images: Any) -> dict[str, Any]:
        pixels = tf.map_fn(lambda data: _tf_image(data, size), images,
                           fn_output_signature=tf.TensorSpec([size[0], size[1], 3], tf.float32))
        return tf_decision(problem, threshold, module.network.serve(pixels))

    module.serve = serve
    tf.saved_model.save(module, str(path), signatures={"serving_default": serve.get_concrete_function()},
                        options=tf.saved_model.SaveOptions(experimental_custom_gradients=False))


def run_image_saved_model(path: Path, files: list[Path]) -> dict[str, np.ndarray]:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    got = loaded.serve(tf.constant([Path(f).read_bytes() for f in files]))
    return {k: v.numpy() for k, v in got.items()}


