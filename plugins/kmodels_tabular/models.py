"""The Keras net of the bank_gender task, and the tabular task's default (`mlp`)."""

from __future__ import annotations

from typing import Any, Literal

import keras
import numpy as np

from kmodels.api import BroadcastDepthwiseConv1D, HashDropout, host_built, output_head, registry
from kmodels_tabular.tabm import EDGE_STRATEGIES

#: `piecewise_bins = "auto"` in a task run: this many bins per feature on a table of at least `AUTO_BINS_ROWS` rows, none below.
AUTO_BINS = 32
AUTO_BINS_ROWS = 2000

#: The name of `mlp`'s frozen depthwise layer that encodes each feature against its bins (`piecewise_weights`).
PIECEWISE_ENCODING = "piecewise_encoding"


def piecewise_weights(edges: Any) -> list[Any]:
    """The kernel and bias of `mlp`'s frozen `DepthwiseConv1D` that maps each feature to its bin fractions.

    Output `f * bins + b` is `(x_f - edges[f, b]) / width`, how far feature f has filled its bin b; the ReLU
    capped at 1 that follows makes it 0 below the bin and 1 above it. One weight per feature and bin, so the
    encoding grows linearly with the features. `edges` is (F, bins + 1), increasing per row
    (`kmodels_tabular.tabm.fit_bins`: fitted on the training split).

    Example:
        >>> import numpy as np
        >>> kernel, bias = piecewise_weights(np.array([[0.0, 1.0, 3.0]]))
        >>> kernel.shape, np.clip(2.0 * kernel[0].reshape(-1) + bias, 0, 1).tolist()
        ((1, 1, 2), [1.0, 0.5])
    """
    edges = np.asarray(edges, dtype="float64")
    width = np.maximum(np.diff(edges, axis=1), 1e-9)
    kernel = (1.0 / width)[None]  # (kernel_size 1, F, bins): depthwise, one multiplier per bin
    bias = (-edges[:, :-1] / width).reshape(-1)
    return [kernel.astype("float32"), bias.astype("float32")]


@registry.models.register("mlp", aliases=("bank_gender_mlp",))
def mlp(input_shape: tuple[int, ...] = (14,), units: tuple[int, ...] = (64, 32),
        dropout: float = 0.0, linear: bool = False, piecewise_bins: int | Literal["auto"] = 0, raw_features: bool = True,
        piecewise_edges: Literal["quantile", "tree", "quantile+tree"] = "quantile+tree", piecewise_embedding: int = 0,
        num_classes: int = 2) -> keras.Model:
    """A multilayer perceptron for table rows: Dense(relu) × len(units) → the problem's head.

    With the defaults it is the bank_gender reference notebook's net, Dense(relu) → Dense(relu) →
    Dense(1, sigmoid); `bank_gender_mlp`, its first name, still builds it.

    Compiled by `kmodels.build` with adam and the loss and metrics of its
    problem (binary cross-entropy and accuracy for the reference).

    Args:
        input_shape: number of features (inferred from the data in a task run).
        units: sizes of the hidden ReLU layers (two in the reference).
        dropout: dropout rate after each hidden layer (0 disables it).
        linear: wide and deep (Cheng et al. 2016): the output layer sees the features as well as the
            last hidden layer, so the net holds a linear (logistic) model of the features plus what
            the hidden layers add.
        piecewise_bins: piecewise-linear encoding of each feature (Gorishniy et al. 2022) against this many bins
            (0: off): the hidden layers see, per feature and bin, how far the value has filled the bin
            (0 below it, 1 above). The tabular task fits the bin edges on the training split
            (`piecewise_edges`); the encoding is a frozen `DepthwiseConv1D` and a `ReLU(max_value=1)`, so
            `model.keras` stays plain Keras. Values outside the training range count as its ends. `"auto"` (the
            `tabular` task's default) is resolved by the task from the table: `AUTO_BINS` bins on a table of at
            least `AUTO_BINS_ROWS` rows, 0 on a smaller one, where bins of a few hundred rows are noise.
        raw_features: with `piecewise_bins`, the hidden layers see the features themselves beside their encoding
            (measured better than the encoding alone: benchmarks/README.md).
        piecewise_edges: where a task run puts the bin edges (`kmodels_tabular.tabm.fit_bins`): `"quantile"`, the
            training split's quantiles; `"tree"`, where a per-feature decision tree finds the target changing;
            `"quantile+tree"` (default), half the bins each (measured best on six real tables: benchmarks/README.md).
            Built outside a task, the edges split [-2, 2] evenly until set (`piecewise_weights`).
        piecewise_embedding: with `piecewise_bins`, each feature's bins pass through a learned linear map of their
            own to this many units and a ReLU before the hidden layers (rtdl's MLP-PLE: an `EinsumDense`, one
            weight matrix per feature; 0, the default, feeds the bins straight in). Measured on six real tables
            (benchmarks/README.md): diamonds +0.005 (above HistGradientBoosting), level on the other five, for
            epochs up to 1.6 times as long.
        num_classes: 2 (one sigmoid unit), N >= 3 (softmax) or 1 (regression, linear).

    Example:
        >>> import kmodels
        >>> model = kmodels.build("mlp", units=(16, 8))
        >>> [layer.units for layer in model.layers if hasattr(layer, "units")]
        [16, 8, 1]
        >>> kmodels.build("mlp", num_classes=3).loss
        'sparse_categorical_crossentropy'
        >>> kmodels.build("mlp", input_shape=(5,), units=(8,), linear=True).get_layer("wide_and_deep").output.shape
        (None, 13)
        >>> kmodels.build("mlp", input_shape=(5,), units=(8,), piecewise_bins=4).get_layer("features_and_bins").output.shape
        (None, 25)
        >>> kmodels.build("mlp", input_shape=(5,), units=(8,), piecewise_bins=4,
        ...               piecewise_embedding=3).get_layer("features_and_bins").output.shape
        (None, 20)
    """
    if not units or any(u < 1 for u in units):
        raise ValueError(f"Received units={units}. Expected one or more positive layer sizes, e.g. (64, 32).")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"Received dropout={dropout}. Expected a rate in [0, 1).")
    if piecewise_bins == "auto":
        raise ValueError("Received piecewise_bins='auto', which a task run resolves from the table's rows. Outside a "
                         f"task pass a number: 0 (no piecewise encoding) or, e.g., piecewise_bins={AUTO_BINS}.")
    if piecewise_edges not in EDGE_STRATEGIES:
        raise ValueError(f"Received piecewise_edges={piecewise_edges!r}. Expected one of "
                         f"{', '.join(map(repr, EDGE_STRATEGIES))}.")
    if not isinstance(piecewise_bins, int) or piecewise_bins < 0 or piecewise_bins == 1:
        raise ValueError(f"Received piecewise_bins={piecewise_bins!r}. Expected 0 (no piecewise encoding) or at least 2 "
                         "bins per feature.")
    if not isinstance(piecewise_embedding, int) or piecewise_embedding < 0:
        raise ValueError(f"Received piecewise_embedding={piecewise_embedding!r}. Expected 0 (the bins go straight in) or "
                         "a number of units per feature, e.g. 16.")
    inputs = keras.Input(shape=input_shape, name="features")
    x = inputs
    if piecewise_bins:
        features = int(input_shape[-1])
        even = np.tile(np.linspace(-2.0, 2.0, piecewise_bins + 1), (features, 1))  # standardized features' range
        x = keras.layers.Reshape((1, features), name="piecewise_features")(x)  # features as channels
        encode = BroadcastDepthwiseConv1D(1, depth_multiplier=piecewise_bins, trainable=False, name=PIECEWISE_ENCODING)
        x = host_built(encode, x)
        encode.set_weights(piecewise_weights(even))
        x = keras.layers.Reshape((features * piecewise_bins,), name="piecewise_bins")(x)
        x = keras.layers.ReLU(max_value=1.0, name="piecewise_clip")(x)
        if piecewise_embedding:  # each feature's bins -> its own linear map (F, bins, units) and a ReLU
            x = keras.layers.Reshape((features, piecewise_bins), name="bins_by_feature")(x)
            x = host_built(keras.layers.EinsumDense("bfk,fku->bfu", output_shape=(features, piecewise_embedding),
                                                    bias_axes="fu", activation="relu", name="piecewise_embedding"), x)
            x = keras.layers.Reshape((features * piecewise_embedding,), name="feature_embeddings")(x)
        if raw_features:
            x = keras.layers.Concatenate(name="features_and_bins")([inputs, x])
    for i, size in enumerate(units):
        x = host_built(keras.layers.Dense(size, activation="relu", name=f"dense_{i}"), x)
        if dropout:
            x = HashDropout(dropout, name=f"dropout_{i}")(x)
    if linear:
        x = keras.layers.Concatenate(name="wide_and_deep")([x, inputs])
    return keras.Model(inputs, output_head(x, num_classes), name="mlp")
