"""TabM (Gorishniy et al., ICLR 2025) in plain Keras: an MLP that is an ensemble of k members sharing their weights.

TabM-mini: the features (after periodic numeric embeddings, "PLR" from Gorishniy et al. 2022) are
copied k times and each copy is scaled by its member's own vector `r_i` (initialised with random
signs); one MLP body, shared by all members, runs on the k copies; each member has its own
output layer. The saved model averages the members' probabilities (or values). Training
minimises the mean of the members' losses, not the loss of their mean: the tabular task trains
`members(model)` (the k outputs) on the labels repeated k times, and saves the averaging model,
which shares its weights.

Every layer here is registered (`package="kmodels"`), so `model.keras` loads with Keras's
`safe_mode` on any backend once this module is imported (`import kmodels` does it): unlike the
other registered models, a `tabm` file does not load in a Python that has only Keras.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import keras
from keras import ops

from kmodels.api import HashDropout, HostInitializer, host_built, output_head, registry

#: The name of the layer whose output is the members' predictions, (n, k, units).
MEMBERS = "tabm_members"
#: The name of the piecewise-linear embedding layer, whose bin edges a task run fits (`fit_bins`).
PIECEWISE = "piecewise"


@keras.saving.register_keras_serializable(package="kmodels")
class PeriodicEmbedding(keras.layers.Layer):
    """Periodic embeddings of numeric features (PLR): per feature, sin/cos of learned frequencies, a linear
    map and a ReLU; (n, F) → (n, F · dim).

    Args:
        frequencies: learned frequencies per feature.
        dim: the embedding size per feature.
        sigma: the standard deviation the frequencies start from (rtdl-num-embeddings' 0.01 to 1; features
            are standardised first).
    """

    def __init__(self, frequencies: int = 16, dim: int = 16, sigma: float = 0.1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.frequencies, self.dim, self.sigma = frequencies, dim, sigma

    def build(self, input_shape: tuple[int, ...]) -> None:
        features = int(input_shape[-1])
        self.coefficients = self.add_weight(shape=(features, self.frequencies), name="frequencies",
                                            initializer=HostInitializer("normal", stddev=self.sigma))
        self.kernel = self.add_weight(shape=(features, 2 * self.frequencies, self.dim), name="kernel",
                                      initializer=HostInitializer.like("glorot_uniform"))
        self.bias = self.add_weight(shape=(features, self.dim), name="bias", initializer=HostInitializer.like("zeros"))

    def call(self, x: Any) -> Any:
        angles = 2 * math.pi * ops.expand_dims(x, -1) * self.coefficients  # (n, F, m)
        periodic = ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)  # (n, F, 2m)
        out = ops.relu(ops.einsum("nfm,fmd->nfd", periodic, self.kernel) + self.bias)
        return ops.reshape(out, (-1, out.shape[1] * self.dim))

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int | None, ...]:
        return (input_shape[0], int(input_shape[-1]) * self.dim)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "frequencies": self.frequencies, "dim": self.dim, "sigma": self.sigma}


@keras.saving.register_keras_serializable(package="kmodels")
class PiecewiseLinearEmbedding(keras.layers.Layer):
    """Piecewise-linear embeddings of numeric features (PLE, Gorishniy et al. 2022): (n, F) → (n, F · dim).

    Per feature, x is encoded against `bins` bins by how far it has filled each: 1 for the bins
    below it, its fraction of the bin it falls in, 0 above (the first and last bins extend past
    the training range); then a linear map per feature and a ReLU. The bin edges are weights that
    do not train (`edges`, (F, bins + 1)): a task run sets them to the training split's quantiles
    (`fit_bins`), so they are saved in `model.keras`; until then they split [-2, 2] evenly (the
    range of standardized features).

    Args:
        bins: bins per feature.
        dim: the embedding size per feature.
    """

    def __init__(self, bins: int = 16, dim: int = 16, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bins, self.dim = bins, dim

    def build(self, input_shape: tuple[int, ...]) -> None:
        import numpy as np

        features = int(input_shape[-1])
        even = np.tile(np.linspace(-2.0, 2.0, self.bins + 1, dtype="float32"), (features, 1))
        self.edges = self.add_weight(shape=(features, self.bins + 1), name="edges", trainable=False,
                                     initializer=HostInitializer("constant", value=even))
        self.kernel = self.add_weight(shape=(features, self.bins, self.dim), name="kernel",
                                      initializer=HostInitializer.like("glorot_uniform"))
        self.bias = self.add_weight(shape=(features, self.dim), name="bias", initializer=HostInitializer.like("zeros"))

    def call(self, x: Any) -> Any:
        left = self.edges[:, :-1]
        width = ops.maximum(self.edges[:, 1:] - left, 1e-9)
        t = (ops.expand_dims(x, -1) - left) / width  # (n, F, bins): how far x has filled each bin
        first = ops.arange(self.bins) == 0
        last = ops.arange(self.bins) == self.bins - 1
        t = ops.where(first, ops.minimum(t, 1.0), ops.where(last, ops.maximum(t, 0.0), ops.clip(t, 0.0, 1.0)))
        out = ops.relu(ops.einsum("nfb,fbd->nfd", t, self.kernel) + self.bias)
        return ops.reshape(out, (-1, out.shape[1] * self.dim))

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int | None, ...]:
        return (input_shape[0], int(input_shape[-1]) * self.dim)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "bins": self.bins, "dim": self.dim}


#: How `fit_bins` places a feature's bin edges (`[model] piecewise_edges` of `mlp`).
EDGE_STRATEGIES = ("quantile", "tree", "quantile+tree")
#: At most this many training rows (a fixed random draw) fit the trees of `fit_bins`' target-aware edges.
TREE_ROWS = 200_000


def fit_bins(x: Any, bins: int, y: Any = None, *, strategy: str = "quantile", classification: bool = True) -> Any:
    """Bin edges per feature of `x` (n, F), (F, bins + 1) and increasing per row.

    `strategy`: `"quantile"`, the feature's quantiles; `"tree"`, the thresholds of a decision tree with `bins`
    leaves (at least 64 rows each) fitted on the feature alone to predict `y` (Gorishniy et al. 2022's
    target-aware bins: edges where the target changes, which quantiles can miss); `"quantile+tree"`, both
    kinds, half the bins each. Repeated edges are dropped; a feature with fewer distinct edges gets fewer real
    bins, and the spare ones are put past its maximum, where only unseen values reach. `classification`: the
    tree is a classifier of `y`'s labels (or label matrix), else a regressor.

    Example:
        >>> import numpy as np
        >>> fit_bins(np.array([[0.0], [1.0], [1.0], [3.0]]), 2).tolist()
        [[0.0, 1.0, 3.0]]
        >>> fit_bins(np.array([[0.0], [1.0], [0.0], [1.0]]), 3).tolist()
        [[0.0, 1.0, 2.0, 3.0]]
        >>> x = np.arange(200.0).reshape(-1, 1)  # the label changes at 130: a tree puts an edge there
        >>> fit_bins(x, 2, (x[:, 0] >= 130).astype(int), strategy="tree").tolist()
        [[0.0, 129.5, 199.0]]
    """
    import numpy as np

    if strategy not in EDGE_STRATEGIES:
        raise ValueError(f"Received strategy={strategy!r}. Expected one of {', '.join(map(repr, EDGE_STRATEGIES))}.")
    if strategy != "quantile" and y is None:
        raise ValueError(f"strategy={strategy!r} places edges where the target changes: pass the target as y.")
    x = np.asarray(x, dtype="float64")
    quantiles = {"quantile": bins, "tree": 0, "quantile+tree": bins // 2}[strategy]
    leaves = bins - quantiles
    if leaves:
        rows = np.random.default_rng(0).permutation(len(x))[:TREE_ROWS] if len(x) > TREE_ROWS else slice(None)
        x_tree, y_tree = x[rows], np.asarray(y)[rows]
    out = np.empty((x.shape[1], bins + 1))
    for j in range(x.shape[1]):
        finite = np.isfinite(x[:, j])
        column = x[finite, j]
        if not len(column):
            edges = np.array([0.0])
        else:
            edges = [column.min(), column.max()]
            if quantiles:
                edges.extend(np.quantile(column, np.linspace(0, 1, quantiles + 1)))
            if leaves:
                edges.extend(_tree_cuts(x_tree[:, j], y_tree, leaves, classification))
            edges = np.unique(np.asarray(edges, dtype="float64"))
        step = max(float(edges[-1] - edges[0]), 1.0)
        spare = bins + 1 - len(edges)
        out[j] = np.concatenate([edges, edges[-1] + step * np.arange(1, spare + 1)])
    return out.astype("float32")


def _tree_cuts(column: Any, y: Any, leaves: int, classification: bool) -> Any:
    """The split thresholds of a decision tree with at most `leaves` leaves that predicts `y` from `column` alone."""
    import numpy as np
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    finite = np.isfinite(column)
    if leaves < 2 or finite.sum() < 2:
        return np.empty(0)
    kind = DecisionTreeClassifier if classification else DecisionTreeRegressor
    tree = kind(max_leaf_nodes=leaves, min_samples_leaf=64, random_state=0)
    tree.fit(column[finite].reshape(-1, 1), y[finite])
    return tree.tree_.threshold[tree.tree_.feature >= 0]


@keras.saving.register_keras_serializable(package="kmodels")
class EnsembleAdapter(keras.layers.Layer):
    """(n, D) → (n, k, D): k copies of the input, copy i scaled by the member's vector r_i (random ±1 at start)."""

    def __init__(self, members: int = 32, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.members = members

    def build(self, input_shape: tuple[int, ...]) -> None:
        self.scale = self.add_weight(shape=(self.members, int(input_shape[-1])), name="scale",
                                     initializer=HostInitializer("uniform", minval=-1.0, maxval=1.0))
        self.scale.assign(ops.where(self.scale >= 0, 1.0, -1.0))

    def call(self, x: Any) -> Any:
        return ops.expand_dims(x, 1) * self.scale

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int | None, ...]:
        return (input_shape[0], self.members, input_shape[-1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "members": self.members}


@keras.saving.register_keras_serializable(package="kmodels")
class EnsembleDense(keras.layers.Layer):
    """(n, k, D) → (n, k, units): a separate linear layer per member, then `activation`."""

    def __init__(self, units: int, activation: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units, self.activation = units, keras.activations.get(activation)

    def build(self, input_shape: tuple[int, ...]) -> None:
        members, width = int(input_shape[1]), int(input_shape[2])
        self.kernel = self.add_weight(shape=(members, width, self.units), name="kernel", initializer=HostInitializer.like("glorot_uniform"))
        self.bias = self.add_weight(shape=(members, self.units), name="bias", initializer=HostInitializer.like("zeros"))

    def call(self, x: Any) -> Any:
        return self.activation(ops.einsum("nkd,kdu->nku", x, self.kernel) + self.bias)

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int | None, ...]:
        return (input_shape[0], input_shape[1], self.units)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units,
                "activation": keras.activations.serialize(self.activation)}


@keras.saving.register_keras_serializable(package="kmodels")
class MemberMean(keras.layers.Layer):
    """(n, k, units) → (n, units): the mean over the members (of probabilities, or of values)."""

    def call(self, x: Any) -> Any:
        return ops.mean(x, axis=1)

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int | None, ...]:
        return (input_shape[0], input_shape[2])


def _head(num_classes: int) -> tuple[int, str]:
    """The members' output units and activation: those `output_head` gives for `num_classes` (so a multi-label
    problem's `building()` context gives N sigmoids here too)."""
    layer = output_head(keras.Input((1,)), num_classes)._keras_history.operation
    return int(layer.units), keras.activations.serialize(layer.activation)


#: Its `model.keras` holds the registered layers of this module: loading it needs `kmodels_tabular` installed.
@registry.models.register("tabm", layers_from="kmodels_tabular.tabm")
def tabm(input_shape: tuple[int, ...] = (14,), members: int = 32, units: tuple[int, ...] = (256, 256),
         dropout: float = 0.1, embedding_dim: int = 16, frequencies: int = 16, sigma: float = 0.1,
         embedding: Literal["periodic", "piecewise"] = "periodic", bins: int = 16, num_classes: int = 2) -> keras.Model:
    """TabM-mini with periodic numeric embeddings: k weight-sharing MLP members, their predictions averaged.

    Train it through a kmodels task (the tabular task trains the members on their mean loss; see
    `kmodels_tabular.tabm`); `kmodels.build("tabm")` gives the averaging model.

    Args:
        input_shape: number of features (inferred from the data in a task run).
        members: k, the ensemble size (TabM's 32).
        units: sizes of the shared hidden ReLU layers.
        dropout: dropout after each hidden layer.
        embedding_dim: periodic embedding size per feature (0: no embeddings, the features go in as they are).
        frequencies: learned frequencies per feature.
        sigma: the frequencies' initial standard deviation.
        embedding: `"periodic"` (PLR) or `"piecewise"` (PLE, `PiecewiseLinearEmbedding`: its bins are the
            training split's quantiles, fitted by the tabular task).
        bins: bins per feature of the piecewise embeddings.
        num_classes: 2 (sigmoid), N >= 3 (softmax) or 1 (regression); a multi-label problem gives N sigmoids.

    Example:
        >>> import kmodels
        >>> model = kmodels.build("tabm", input_shape=(5,), members=4, units=(16,), num_classes=3)
        >>> model.output_shape, model.get_layer("tabm_members").output.shape
        ((None, 3), (None, 4, 3))
    """
    if members < 1 or not units or any(u < 1 for u in units):
        raise ValueError(f"Received members={members}, units={units}. Expected members >= 1 and positive layer sizes.")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"Received dropout={dropout}. Expected a rate in [0, 1).")
    inputs = keras.Input(shape=input_shape, name="features")
    if embedding not in ("periodic", "piecewise") or bins < 1:
        raise ValueError(f"Received embedding={embedding!r}, bins={bins}. Expected 'periodic' or 'piecewise', "
                         "and bins >= 1.")
    x = inputs
    if embedding_dim and embedding == "piecewise":
        x = PiecewiseLinearEmbedding(bins, embedding_dim, name=PIECEWISE)(inputs)
    elif embedding_dim:
        x = PeriodicEmbedding(frequencies, embedding_dim, sigma, name="periodic")(inputs)
    x = EnsembleAdapter(members, name="adapter")(x)
    for i, size in enumerate(units):
        x = host_built(keras.layers.Dense(size, activation="relu", name=f"dense_{i}"), x)
        if dropout:
            x = HashDropout(dropout, name=f"dropout_{i}")(x)
    width, activation = _head(num_classes)
    x = EnsembleDense(width, activation, dtype="float32", name=MEMBERS)(x)
    return keras.Model(inputs, MemberMean(dtype="float32", name="output")(x), name="tabm")
