"""Items registered by the tests themselves: a tiny model, dataset, preprocessor and task."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from kmodels import registry
from kmodels.data import Table
from kmodels.problems import output_head
from kmodels.task import Task


@registry.models.register("toy_mlp")
def toy_mlp(input_shape: tuple[int, ...] = (4,), units: int = 8, dropout: float = 0.0,
            num_classes: int = 2) -> keras.Model:
    """A one-hidden-layer MLP for tests.

    Example:
        >>> import kmodels
        >>> kmodels.build("toy_mlp").count_params()
        49
    """
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Dense(units, activation="relu")(inputs)
    if dropout:
        x = keras.layers.Dropout(dropout)(x)
    return keras.Model(inputs, output_head(x, num_classes), name="toy_mlp")


@registry.datasets.register("toy_blobs")
def toy_blobs(rows: int = 300, seed: int = 0, noise: float = 0.5) -> Table:
    """Two Gaussian blobs in 4 features, a customer id column, labels 'a'/'b'.

    Example:
        >>> toy_blobs(rows=10).frame.shape
        (10, 6)
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, rows)
    x = rng.normal(size=(rows, 4)) * noise + y[:, None]
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(4)])
    frame["customer"] = [f"C{i // 2}" for i in range(rows)]
    frame["label"] = np.where(y == 1, "b", "a")
    return Table(frame, target="label", group="customer", source=f"toy_blobs(rows={rows})")


@registry.preprocessors.register("toy_drop")
class ToyDrop(TransformerMixin, BaseEstimator):
    """Drop the named columns (a minimal sklearn-style transformer for tests).

    Example:
        >>> import pandas as pd
        >>> ToyDrop(["a"]).fit(pd.DataFrame({"a": [1], "b": [2]})).transform(pd.DataFrame({"a": [1], "b": [2]})).columns.tolist()
        ['b']
    """

    def __init__(self, columns: list[str] = ()) -> None:  # noqa: B006
        self.columns = columns

    def fit(self, x, y=None) -> ToyDrop:
        self.columns_ = [c for c in self.columns if c in x.columns]
        return self

    def transform(self, x):
        check_is_fitted(self)
        return x.drop(columns=self.columns_)

    def to_graph(self, columns):
        """What an export runs (`kmodels.graph`): the columns but the dropped ones."""
        return {c: v for c, v in columns.items() if c not in self.columns_}


@registry.tasks.register("toy_task")
class ToyTask(Task):
    """Toy task: two blobs, a tiny MLP, early stopping (for tests).

    Example: `kmodels run toy_task` (with the test items imported).
    """

    spec_text = """
task = "toy_task"
description = "test task"

[data]
name = "toy_blobs"
rows = 300

[split]
group = "customer"

[[preprocess]]
name = "toy_drop"
columns = ["customer"]

[model]
name = "toy_mlp"

[compile]
learning_rate = 0.05

[train]
epochs = 3
batch_size = 32
verbose = 0

[[callbacks]]
name = "early_stopping"
monitor = "val_loss"
patience = 2
restore_best_weights = true
"""


@registry.callbacks.register("interrupt_after_epoch")
class InterruptAfterEpoch:
    """Test-only: raise KeyboardInterrupt at the end of epoch `epoch` (0-based), as Ctrl-C would.

    Example:
        >>> InterruptAfterEpoch(epoch=1).epoch
        1
    """

    def __new__(cls, epoch: int = 1):
        import keras

        class _Stop(keras.callbacks.Callback):
            def on_epoch_end(self, e, logs=None):
                if e == epoch:
                    raise KeyboardInterrupt

        obj = _Stop()
        obj.epoch = epoch
        return obj
