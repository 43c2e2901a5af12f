"""Initial weights drawn with NumPy on the host, so that building a model compiles nothing.

On JAX every weight shape a Keras initializer draws is one XLA compilation of the random
generator (`jit(_uniform)`, 0.1-0.2 s each on a CPU), and of a copy into the variable: a two-layer
table network spent about a third of its first `fit` there. `host_built(layer, x)` calls a layer with NumPy draws of the same
distributions (Keras's `VarianceScaling` family, `RandomNormal`, `RandomUniform`,
`TruncatedNormal`, `Zeros`, `Ones`, `Constant`), and leaves the layer's own initializers in its
config, so `model.keras` stays plain Keras. `HostInitializer` serves custom layers' `add_weight`.

Seeds: an initializer's own `seed` draws the same values every call (as in Keras); without one,
each call takes a seed from NumPy's global generator, which `kmodels.set_seed` (and
`keras.utils.set_random_seed`) seeds, so a seeded run builds the same weights every time.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

#: dtypes NumPy draws in; any other (bfloat16, integers) is left to Keras.
_HOST_DTYPES = ("float16", "float32", "float64")
#: Keras's truncated normal cuts at two standard deviations; this is the std of N(0, 1) cut there.
_TRUNCATED_STD = 0.87962566103423978


def _fans(shape: tuple[int, ...], input_axes: Any = None, output_axes: Any = None) -> tuple[int, int]:
    """Fan-in and fan-out of a weight shape, as Keras counts them (kernels: (..., inputs, outputs))."""
    if input_axes is not None and output_axes is not None:
        return (int(np.prod([shape[a] for a in input_axes])), int(np.prod([shape[a] for a in output_axes])))
    if not shape:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


def _truncated_normal(rng: np.random.Generator, shape: tuple[int, ...], mean: float, stddev: float) -> np.ndarray:
    """Normal draws, each one outside two standard deviations drawn again."""
    z = rng.standard_normal(shape)
    outside = np.abs(z) > 2.0
    while outside.any():
        z[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(z) > 2.0
    return mean + stddev * z


class HostInitializer:
    """A Keras initializer that draws with NumPy: no compiled program per weight shape on JAX.

    Args:
        kind: `"uniform"`, `"normal"`, `"truncated_normal"`, `"variance_scaling"` or `"constant"`.
        seed: the same values every call when set; otherwise a seed from NumPy's global generator.
        **params: the distribution's parameters: `minval`/`maxval`, `mean`/`stddev`, `value`, or
            Keras's `VarianceScaling` ones (`scale`, `mode`, `distribution`, `input_axes`, `output_axes`).

    Example:
        >>> import numpy as np
        >>> init = HostInitializer("variance_scaling", scale=1.0, mode="fan_avg", distribution="uniform", seed=0)
        >>> w = init((64, 32), dtype="float32")
        >>> w.dtype, bool(np.abs(w).max() <= (6 / (64 + 32)) ** 0.5)
        (dtype('float32'), True)
        >>> HostInitializer.like("zeros")((2,), dtype="float32").tolist()
        [0.0, 0.0]
    """

    KINDS = ("uniform", "normal", "truncated_normal", "variance_scaling", "constant")

    def __init__(self, kind: str, seed: int | None = None, **params: Any) -> None:
        if kind not in self.KINDS:
            raise ValueError(f"Received kind={kind!r}. Expected one of {', '.join(self.KINDS)}.")
        self.kind, self.seed, self.params = kind, seed, params

    @classmethod
    def like(cls, initializer: Any) -> Any:
        """The NumPy twin of a Keras initializer (an instance or a name such as `"glorot_uniform"`),
        or the initializer itself where there is none (`Orthogonal`, `Identity`, custom ones)."""
        import keras

        init = keras.initializers.get(initializer)
        seed = init.get_config().get("seed") if hasattr(init, "get_config") else None
        seed = seed if isinstance(seed, int) else None  # a SeedGenerator is Keras's own stream: draw ours
        if isinstance(init, keras.initializers.VarianceScaling):
            return cls("variance_scaling", seed, scale=init.scale, mode=init.mode, distribution=init.distribution,
                       input_axes=getattr(init, "input_axes", None), output_axes=getattr(init, "output_axes", None))
        kinds = {keras.initializers.RandomUniform: ("uniform", ("minval", "maxval")),
                 keras.initializers.RandomNormal: ("normal", ("mean", "stddev")),
                 keras.initializers.TruncatedNormal: ("truncated_normal", ("mean", "stddev")),
                 keras.initializers.Constant: ("constant", ("value",))}
        if type(init) in kinds:
            kind, names = kinds[type(init)]
            config = init.get_config()
            if kind == "constant" and not isinstance(config["value"], (int, float)):
                return init  # an array of values (keras.applications' normalisation constants): Keras's own
            return cls(kind, seed, **{name: config[name] for name in names})
        if type(init) in (keras.initializers.Zeros, keras.initializers.Ones):
            return cls("constant", value=float(type(init) is keras.initializers.Ones))
        return init

    def __call__(self, shape: Any, dtype: Any = None) -> Any:
        import keras

        shape = tuple(int(d) for d in shape)
        dtype = keras.backend.standardize_dtype(dtype or keras.config.floatx())
        if dtype not in _HOST_DTYPES:
            raise ValueError(f"Received dtype={dtype!r}. HostInitializer draws {', '.join(_HOST_DTYPES)}; "
                             "use the Keras initializer for other dtypes.")
        p = self.params
        if self.kind == "constant":
            return _placed(np.full(shape, p.get("value", 0.0), dtype=dtype))
        seed = self.seed if self.seed is not None else int(np.random.randint(0, 2**31 - 1))
        rng = np.random.default_rng(seed)
        if self.kind == "uniform":
            values = rng.uniform(p.get("minval", -0.05), p.get("maxval", 0.05), shape)
        elif self.kind == "normal":
            values = rng.normal(p.get("mean", 0.0), p.get("stddev", 0.05), shape)
        elif self.kind == "truncated_normal":
            values = _truncated_normal(rng, shape, p.get("mean", 0.0), p.get("stddev", 0.05))
        else:
            fan_in, fan_out = _fans(shape, p.get("input_axes"), p.get("output_axes"))
            fan = {"fan_in": fan_in, "fan_out": fan_out}.get(p.get("mode", "fan_in"), (fan_in + fan_out) / 2.0)
            scale = p.get("scale", 1.0) / max(1.0, fan)
            distribution = p.get("distribution", "truncated_normal")
            if distribution == "uniform":
                limit = math.sqrt(3.0 * scale)
                values = rng.uniform(-limit, limit, shape)
            elif distribution == "untruncated_normal":
                values = rng.normal(0.0, math.sqrt(scale), shape)
            else:
                values = _truncated_normal(rng, shape, 0.0, math.sqrt(scale) / _TRUNCATED_STD)
        return _placed(values.astype(dtype))


def _placed(values: np.ndarray) -> Any:
    """On JAX, the array moved to the device (a transfer: the variable's `jnp.asarray` would compile a copy
    program per shape); elsewhere the NumPy array, which the variable converts."""
    import keras

    if keras.backend.backend() != "jax":
        return values
    import jax

    return jax.device_put(values)


#: The initializer attributes of Keras's built-in layers (Dense, EinsumDense, convolutions, embeddings, ...).
_INITIALIZER_ATTRS = ("kernel_initializer", "bias_initializer", "depthwise_initializer", "pointwise_initializer",
                      "embeddings_initializer", "gamma_initializer", "beta_initializer",
                      "moving_mean_initializer", "moving_variance_initializer")


def host_built(layer: Any, *inputs: Any, **kwargs: Any) -> Any:
    """Call `layer` on `inputs`, its initial weights drawn with NumPy (`HostInitializer.like` of each
    of its initializers); its config keeps its own initializers, so a saved model is plain Keras.

    Example:
        >>> import keras
        >>> dense = keras.layers.Dense(3)
        >>> host_built(dense, keras.Input((4,))).shape
        (None, 3)
        >>> dense.get_config()["kernel_initializer"]["class_name"]
        'GlorotUniform'
    """
    if layer.built:
        return layer(*inputs, **kwargs)
    own = {name: getattr(layer, name) for name in _INITIALIZER_ATTRS if getattr(layer, name, None) is not None}
    try:
        for name, init in own.items():
            twin = HostInitializer.like(init)
            if isinstance(twin, HostInitializer) and _variable_dtype(layer) not in _HOST_DTYPES:
                twin = init
            setattr(layer, name, twin)
        return layer(*inputs, **kwargs)
    finally:
        for name, init in own.items():
            setattr(layer, name, init)


def _variable_dtype(layer: Any) -> str:
    import keras

    return keras.backend.standardize_dtype(getattr(layer, "variable_dtype", None) or keras.config.floatx())


@contextlib.contextmanager
def host_initialized() -> Iterator[None]:
    """On JAX, every Keras variable made inside this scope draws its initial value with NumPy
    (`HostInitializer.like` of its initializer; an initializer without a NumPy twin, or a dtype NumPy does
    not draw, is left to Keras). Elsewhere it does nothing.

    `host_built` does this for one layer through its initializer attributes; this scope covers any model a
    builder makes (convolutions, Keras's applications, custom layers' `add_weight`). Building the
    `dog_cat_cnn` network compiled four random programs (`jit(_uniform)`, 2.3 s together on 2 CPU cores, a
    photo run beside it) before its first step. The layers' configs keep their own initializers; the drawn
    values are the same distributions from NumPy's stream, which `kmodels.set_seed` seeds.

    Example:
        >>> import keras
        >>> with host_initialized():
        ...     layer = keras.layers.Conv2D(4, 3)
        ...     layer.build((None, 8, 8, 3))
        >>> tuple(layer.kernel.shape), layer.get_config()["kernel_initializer"]["class_name"]
        ((3, 3, 3, 4), 'GlorotUniform')
    """
    import keras

    try:
        from keras.src.backend.common.variables import Variable
    except ImportError:  # another Keras layout: Keras draws, as outside the scope
        Variable = None
    if keras.backend.backend() != "jax" or Variable is None or not hasattr(Variable, "_initialize_with_initializer"):
        yield
        return
    original = Variable._initialize_with_initializer

    def on_host(variable: Any, initializer: Any) -> Any:
        twin = HostInitializer.like(initializer) if callable(initializer) else initializer
        dtype = keras.backend.standardize_dtype(getattr(variable, "_dtype", None) or keras.config.floatx())
        use = twin if isinstance(twin, HostInitializer) and dtype in _HOST_DTYPES else initializer
        return original(variable, use)

    Variable._initialize_with_initializer = on_host
    try:
        yield
    finally:
        Variable._initialize_with_initializer = original
