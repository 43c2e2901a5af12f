"""Build and compile registered models.

Example:
    >>> import kmodels
    >>> model = kmodels.build("dog_cat_cnn")  # doctest: +SKIP
    >>> model.optimizer.__class__.__name__  # doctest: +SKIP
    'Adam'
"""

from __future__ import annotations

from typing import Any

from kmodels import _config, registry
from kmodels.errors import ConfigError
from kmodels.spec import CompileOptions


def compile_options(name: str, overrides: dict[str, Any] | None = None) -> CompileOptions:
    """Compile settings for model `name`: Keras defaults < the model's registered defaults < overrides."""
    base = {**registry.models.meta(name).get("compile", {}), **(overrides or {})}
    return CompileOptions(**_config.validate_kwargs(CompileOptions, base, where="[compile]"))


def compile_model(model: Any, options: CompileOptions) -> Any:
    """Compile `model` with optimizer/loss/metrics resolved by Keras's own `get` functions."""
    import keras

    try:
        optimizer = keras.optimizers.get(
            {"class_name": options.optimizer, "config": {"learning_rate": options.learning_rate}}
        )
    except ValueError:
        raise ConfigError(
            f"[compile] optimizer {options.optimizer!r} is not a Keras optimizer. "
            "Expected a name keras.optimizers.get accepts, e.g. 'adam', 'sgd', 'rmsprop', 'adamw'."
        ) from None
    try:
        keras.losses.get(options.loss)
    except ValueError:
        raise ConfigError(
            f"[compile] loss {options.loss!r} is not a Keras loss. Expected a name "
            "keras.losses.get accepts, e.g. 'binary_crossentropy'."
        ) from None
    for metric in options.metrics:
        if metric in ("accuracy", "acc"):
            continue  # compile() picks the accuracy that matches the loss
        try:
            keras.metrics.get(metric)
        except ValueError:
            raise ConfigError(
                f"[compile] metric {metric!r} is not a Keras metric. Expected a name "
                "keras.metrics.get accepts, e.g. 'accuracy', 'auc', 'precision'."
            ) from None
    model.compile(optimizer=optimizer, loss=options.loss, metrics=list(options.metrics))
    return model


def build(name: str, *, compile: dict[str, Any] | bool = True, precision: str = "float32", **kwargs: Any) -> Any:
    """Build the registered model `name` and compile it.

    Args:
        name: a registered model (`kmodels.list_models()` lists them).
        compile: `True` compiles with the model's registered defaults (adam,
            binary cross-entropy, accuracy unless the model says otherwise), a dict
            overrides some of them (`{"learning_rate": 1e-4}`), `False` skips it.
        precision: `"float32"` or a Keras mixed-precision policy (`"mixed_bfloat16"`).
        **kwargs: builder arguments, checked against its signature first.

    Returns:
        A `keras.Model`.

    Example:
        >>> import kmodels
        >>> kmodels.build("bank_gender_mlp", units=(16, 8)).count_params() > 0  # doctest: +SKIP
        True
    """
    fn = registry.models.get(name)
    call = _config.validate_kwargs(fn, kwargs, where=f"model {name!r}")
    from kmodels.backend import precision as precision_scope

    with precision_scope(precision):
        model = fn(**call)
    if compile is False:
        return model
    return compile_model(model, compile_options(name, compile if isinstance(compile, dict) else None))




