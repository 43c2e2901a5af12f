"""The Keras net of the bank_gender task."""

from __future__ import annotations

import keras

from kmodels.api import HashDropout, host_built, output_head, registry


@registry.models.register("mlp", aliases=("bank_gender_mlp",))
def mlp(input_shape: tuple[int, ...] = (14,), units: tuple[int, ...] = (64, 32),
        dropout: float = 0.0, linear: bool = False, num_classes: int = 2) -> keras.Model:
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
    """
    if not units or any(u < 1 for u in units):
        raise ValueError(f"Received units={units}. Expected one or more positive layer sizes, e.g. (64, 32).")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"Received dropout={dropout}. Expected a rate in [0, 1).")
    inputs = keras.Input(shape=input_shape, name="features")
    x = inputs
    for i, size in enumerate(units):
        x = host_built(keras.layers.Dense(size, activation="relu", name=f"dense_{i}"), x)
        if dropout:
            x = HashDropout(dropout, name=f"dropout_{i}")(x)
    if linear:
        x = keras.layers.Concatenate(name="wide_and_deep")([x, inputs])
    return keras.Model(inputs, output_head(x, num_classes), name="mlp")
