"""Build and compile registered models.

Example:
    >>> import kmodels
    >>> model = kmodels.build("dog_cat_cnn")  # doctest: +SKIP
    >>> model.optimizer.__class__.__name__  # doctest: +SKIP
    'Adam'
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

import numpy as np

from kmodels import _config, registry
from kmodels.errors import ConfigError
from kmodels.options import CompileOptions
from kmodels.problems import Problem

logger = logging.getLogger("kmodels")


def compile_options(name: str, overrides: dict[str, Any] | None = None) -> CompileOptions:
    """Compile settings for model `name`: Keras defaults < the model's registered defaults < overrides."""
    base = {**registry.models.meta(name).get("compile", {}), **(overrides or {})}
    return CompileOptions(**_config.validate_kwargs(CompileOptions, base, where="[compile]"))


def learning_rate(options: CompileOptions, steps_per_epoch: int | None = None, epochs: int | None = None) -> Any:
    """The optimizer's learning rate: a number, or a Keras schedule over `epochs` x `steps_per_epoch` steps.

    `"cosine"` is Keras's `CosineDecay` (with its linear warm-up); `"linear"` is Keras's
    `PiecewiseConstantDecay` holding one rate per epoch, on the line from a tenth of the rate up to it
    over the warm-up epochs and from it down to 1% at the last epoch (Page's and airbench's shape). Both are
    Keras's own classes, so a saved model loads without kmodels, and both follow the optimizer's step
    count, so a resumed run continues them.

    Example:
        >>> lr = learning_rate(CompileOptions(learning_rate=0.01, schedule="cosine", warmup_epochs=1), 10, 5)
        >>> [round(float(lr(step)), 4) for step in (0, 10, 50)]
        [0.001, 0.01, 0.0001]
        >>> lr = learning_rate(CompileOptions(learning_rate=0.01, schedule="linear", warmup_epochs=1), 10, 5)
        >>> [round(float(lr(step)), 5) for step in (0, 9, 10, 20, 49)]
        [0.001, 0.001, 0.01, 0.0067, 0.0001]
    """
    import keras

    if options.schedule == "constant":
        return options.learning_rate
    if not steps_per_epoch or not epochs:
        raise ConfigError(f'[compile] schedule = "{options.schedule}" needs the number of epochs and of steps per '
                          "epoch; compile through a task run, or pass steps_per_epoch and epochs.")
    warmup_epochs = min(options.warmup_epochs, epochs // 4)  # a short run (`--set train.epochs=2`) still decays
    if warmup_epochs < options.warmup_epochs:
        logger.info("[compile] warmup_epochs=%d shortened to %d for a %d-epoch run", options.warmup_epochs,
                    warmup_epochs, epochs)
    peak = options.learning_rate
    if options.schedule == "linear":
        rates = [peak / 10 + (peak - peak / 10) * e / warmup_epochs for e in range(warmup_epochs)]
        decay = epochs - warmup_epochs
        rates += [peak - (peak - peak / 100) * e / max(decay - 1, 1) for e in range(decay)]
        if len(rates) == 1:
            return peak
        return keras.optimizers.schedules.PiecewiseConstantDecay(
            boundaries=[e * steps_per_epoch - 1 for e in range(1, epochs)], values=[float(r) for r in rates])
    warmup = warmup_epochs * steps_per_epoch
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=peak / 10 if warmup else peak,
        decay_steps=epochs * steps_per_epoch - warmup, alpha=0.01,
        warmup_target=peak if warmup else None, warmup_steps=warmup)


#: The Keras losses that take `label_smoothing`, by the names `keras.losses.get` knows them by.
_SMOOTHABLE = {"binary_crossentropy": "BinaryCrossentropy", "categorical_crossentropy": "CategoricalCrossentropy",
               "binary_focal_crossentropy": "BinaryFocalCrossentropy",
               "categorical_focal_crossentropy": "CategoricalFocalCrossentropy"}


def smoothed_loss(loss: str, label_smoothing: float) -> Any:
    """The Keras loss object `loss` with `label_smoothing` (a plain Keras class: `model.keras` loads anywhere).

    Example:
        >>> smoothed_loss("binary_crossentropy", 0.1).label_smoothing
        0.1
    """
    import keras

    name = _SMOOTHABLE.get(loss) or next((k for k in _SMOOTHABLE.values() if k == loss), None)
    if name is None:
        raise ConfigError(
            f"[compile] label_smoothing={label_smoothing} with loss {loss!r}: Keras smooths only "
            f"{', '.join(sorted(_SMOOTHABLE))} (a multiclass task's sparse labels cannot be smoothed). "
            "Set label_smoothing = 0 or use one of those losses.")
    return getattr(keras.losses, name)(label_smoothing=label_smoothing)


def resolved_loss(options: CompileOptions, problem: Problem) -> Any:
    """The loss `compile_model` uses: `[compile] loss` (`"auto"`: the problem's), checked, with its label smoothing.

    A task run calls it as soon as the problem is known, so a loss that cannot work stops the
    run before its directory is created.

    Example:
        >>> from kmodels.options import CompileOptions
        >>> resolved_loss(CompileOptions(), Problem.from_num_classes(3))
        'sparse_categorical_crossentropy'
    """
    import keras

    loss = problem.loss if options.loss == "auto" else options.loss
    try:
        keras.losses.get(loss)
    except ValueError:
        raise ConfigError(
            f"[compile] loss {loss!r} is not a Keras loss. Expected 'auto' or a name "
            "keras.losses.get accepts, e.g. 'binary_crossentropy'."
        ) from None
    return smoothed_loss(loss, options.label_smoothing) if options.label_smoothing else loss


def check_metrics(options: CompileOptions, problem: Problem) -> list[str]:
    """`[compile] metrics` as `compile_model` uses them, each tried on a few labels of `problem`'s shape.

    A task run calls it as soon as the problem is known, so a metric that cannot work on this
    problem (e.g. `auc` on sparse multiclass labels) stops with a `ConfigError` naming it, before
    the run directory or any baseline exists, not after the first training step.

    Example:
        >>> from kmodels.options import CompileOptions
        >>> check_metrics(CompileOptions(metrics=("auto", "auc")), Problem.from_num_classes(2))
        ['accuracy', 'auc']
    """
    import keras

    metrics = [m for name in options.metrics for m in (problem.metrics if name == "auto" else (name,))]
    n, k = 4, problem.num_classes
    if problem.per_label_threshold:  # 0/1 per label against one probability per label
        y_true, y_pred = (np.arange(n * k).reshape(n, k) % 2).astype("float32"), np.full((n, k), 0.5, "float32")
    elif problem.output_width > 1:  # sparse class indices against one probability per class
        y_true, y_pred = np.arange(n) % k, np.full((n, k), 1.0 / k, dtype="float32")
    else:
        y_true, y_pred = (np.arange(n) % 2).astype("float32")[:, None], np.full((n, 1), 0.5, dtype="float32")
    for metric in metrics:
        if metric in ("accuracy", "acc"):
            continue  # compile() picks the accuracy that matches the loss
        try:
            probe = keras.metrics.get(metric)
        except ValueError:
            raise ConfigError(
                f"[compile] metric {metric!r} is not a Keras metric. Expected a name "
                "keras.metrics.get accepts, e.g. 'accuracy', 'auc', 'precision'."
            ) from None
        try:
            if isinstance(probe, keras.metrics.Metric):
                probe.update_state(y_true, y_pred)
            else:
                probe(y_true, y_pred)
        except Exception as exc:  # noqa: BLE001 - any failure means the metric does not fit these labels
            raise ConfigError(
                f"[compile] metric {metric!r} does not work on this {problem.kind} problem's labels and outputs "
                f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]}). Remove it, or use one that does, e.g. "
                f"{', '.join(repr(m) for m in ('auto', *problem.known_metrics))}."
            ) from None
    return metrics


def _warn_short_average(ema: float, steps_per_epoch: int | None, epochs: int | None) -> None:
    """Logs a warning when a run trains too few steps for `[compile] ema`: Keras's average starts from the first
    step's weights with no warm-up, so their share at the end is `ema ** steps`."""
    if not steps_per_epoch or not epochs:
        return
    steps = steps_per_epoch * epochs
    share = ema ** steps
    if share > 0.05:
        logger.warning(
            "[compile] ema=%g averages over about %d steps, and this run trains %d: %.0f%% of the saved weights "
            "will still be the first steps'. Lower ema (e.g. %g) or train more steps.", ema, round(1 / (1 - ema)),
            steps, 100 * share, round(1 - 3 / steps, 4))


def compile_model(model: Any, options: CompileOptions, problem: Problem | None = None, *,
                  steps_per_epoch: int | None = None, epochs: int | None = None) -> Any:
    """Compile `model` with optimizer/loss/metrics resolved by Keras's own `get` functions.

    `"auto"` as the loss or a metric stands for the `problem`'s (binary when none is given).
    `steps_per_epoch` and `epochs` size a `schedule = "cosine"` or `"linear"` learning rate.
    """
    import keras

    problem = problem or Problem.from_num_classes(2)
    loss = resolved_loss(options, problem)
    config: dict[str, Any] = {"learning_rate": learning_rate(options, steps_per_epoch, epochs)}
    if options.weight_decay:
        config["weight_decay"] = options.weight_decay
    try:
        optimizer_class = type(keras.optimizers.get({"class_name": options.optimizer,
                                                     "config": {"learning_rate": 0.001}}))
    except ValueError:
        raise ConfigError(
            f"[compile] optimizer {options.optimizer!r} is not a Keras optimizer. "
            "Expected a name keras.optimizers.get accepts, e.g. 'adam', 'sgd', 'rmsprop', 'adamw'."
        ) from None
    if options.momentum:
        if "momentum" not in inspect.signature(optimizer_class).parameters:
            raise ConfigError(
                f"[compile] momentum={options.momentum}: optimizer {options.optimizer!r} has no momentum "
                "argument. Use it with 'sgd' or 'rmsprop', or leave it out."
            )
        config["momentum"] = options.momentum
    if options.nesterov:
        if "nesterov" not in inspect.signature(optimizer_class).parameters:
            raise ConfigError(
                f"[compile] nesterov=true: optimizer {options.optimizer!r} has no Nesterov variant. "
                "Use it with 'sgd' (and momentum = 0.9), or leave it out."
            )
        config["nesterov"] = True
    if options.ema:
        config.update(use_ema=True, ema_momentum=options.ema)
        _warn_short_average(options.ema, steps_per_epoch, epochs)
    optimizer = optimizer_class(**config)
    metrics = check_metrics(options, problem)
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    return model


def build(name: str, *, compile: dict[str, Any] | bool = True, precision: str = "float32", **kwargs: Any) -> Any:
    """Build the registered model `name` and compile it.

    Args:
        name: a registered model (`kmodels.list_models()` lists them).
        compile: `True` compiles with the model's registered defaults (adam, and the
            loss and metrics of the problem its `num_classes` sets: binary
            cross-entropy, sparse categorical cross-entropy or mean squared error), a dict
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
    from kmodels.initializers import host_initialized

    with precision_scope(precision), host_initialized():
        model = fn(**call)
    if compile is False:
        return model
    num_classes = call.get("num_classes", _config.defaults(fn).get("num_classes", 2))
    return compile_model(model, compile_options(name, compile if isinstance(compile, dict) else None),
                         Problem.from_num_classes(num_classes))


#: The layer name of a pretrained feature extractor inside a registered model.
BACKBONE = "backbone"


def all_layers(model: Any) -> list[Any]:
    """Every layer of `model`, those of nested models included, outermost first.

    Example:
        >>> import kmodels
        >>> len(all_layers(kmodels.build("mlp"))) >= len(kmodels.build("mlp").layers)
        True
    """
    out = []
    for layer in model.layers:
        out.append(layer)
        if hasattr(layer, "layers"):
            out += all_layers(layer)
    return out


def backbone_of(model: Any) -> Any | None:
    """The model's nested `backbone` model (also inside a nested model, e.g. behind training-only layers), or `None`."""
    for layer in getattr(model, "layers", []):
        if layer.name == BACKBONE:
            return layer
    for layer in getattr(model, "layers", []):
        found = backbone_of(layer) if hasattr(layer, "layers") else None
        if found is not None:
            return found
    return None


def unfreeze_top(model: Any, layers: int) -> int:
    """Make the top `layers` layers of `model`'s backbone trainable, BatchNorm excepted.

    Everything below them stays frozen. BatchNorm layers stay frozen (their
    statistics were learned on a much larger data set); the models call the
    backbone with `training=False`, so they also stay in inference mode.
    Returns how many layers hold trainable weights now. Recompile afterwards.

    Example:
        >>> import kmodels  # doctest: +SKIP
        >>> model = kmodels.build("mobilenet_v3_small", input_shape=(64, 64, 3), freeze_backbone=True)  # doctest: +SKIP
        >>> unfreeze_top(model, 10) > 0  # doctest: +SKIP
        True
    """
    import keras

    backbone = backbone_of(model)
    if backbone is None:
        raise ConfigError(
            f"[fine_tune] needs a model with a pretrained backbone (a nested model named {BACKBONE!r}); "
            f"model {model.name!r} has none. Set fine_tune.epochs = 0 or pick e.g. mobilenet_v3_small."
        )
    if layers < 1:
        raise ConfigError(f"[fine_tune] layers={layers}; expected at least 1 layer to unfreeze.")
    backbone.trainable = True
    cut = max(len(backbone.layers) - layers, 0)
    for i, layer in enumerate(backbone.layers):
        layer.trainable = i >= cut and not isinstance(layer, keras.layers.BatchNormalization)
    return sum(1 for layer in backbone.layers if layer.trainable and layer.trainable_weights)

