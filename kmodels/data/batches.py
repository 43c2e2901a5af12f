"""Batches of in-memory items for Keras `fit`/`predict`: a `keras.utils.PyDataset` base with seeded shuffling.

`Batches` is the same code on JAX, TensorFlow and torch; under data
parallelism (`multiple > 1`) every batch splits evenly over the devices.
`ArrayBatches` serves NumPy arrays; the vision plugin's `ImageBatches` serves
image files.

Example:
    >>> import numpy as np
    >>> b = ArrayBatches(np.arange(10.0)[:, None], np.arange(10) % 2, batch_size=4)
    >>> len(b), b[2][0].shape
    (3, (2, 1))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import keras
import numpy as np

if TYPE_CHECKING:
    import tensorflow as tf


class Batches(keras.utils.PyDataset):
    """Batches over `n` items with seeded per-epoch shuffling; subclasses say how items are read.

    With `multiple > 1` (data-parallel training over that many devices) every
    batch holds a multiple of `multiple` items, as sharding across devices
    needs: a shuffled (training) set leaves out its last `n % multiple` items
    each epoch (different ones every epoch); an ordered (evaluation) set is
    padded with copies of its last item that get sample weight 0, and their
    predictions are to be discarded (`Task.predict_output` does).

    When several processes train one model (`kmodels.cluster`), `batch_size` and
    `multiple` are global and every process builds the same set: item `i` of it
    is the same global batch everywhere (one seeded order), and each process
    reads only its contiguous slice of it, `shard = (index, count)` (default:
    this process's, `kmodels.cluster.shard()`). Across the processes every item
    is read once per epoch, and the batch the devices see is the one a single
    process would have read. `positions()` says which items this process's
    predictions are.

    With `full_batches` a shuffled set of at least `batch_size` items yields
    only full batches: the last `n % batch_size` items of each epoch's order
    wait for a later epoch (other ones every epoch, as PyTorch's `drop_last`).
    Every training step then has one shape, so JAX compiles it once instead of
    twice (on a 7,000-row table that halves the first epoch).
    """

    def __init__(self, n: int, labels: Sequence[int] | None, batch_size: int = 32, shuffle: bool = False,
                 seed: int = 0, multiple: int = 1, workers: int = 1, shard: tuple[int, int] | None = None,
                 full_batches: bool = False, epoch: int = 0) -> None:
        from kmodels.cluster import shard as this_shard

        if batch_size < 1 or multiple < 1 or batch_size % multiple:
            raise ValueError(f"batch_size={batch_size} must be a positive multiple of multiple={multiple}.")
        self.shard = this_shard() if shard is None else shard
        index, count = self.shard
        if not 0 <= index < count or multiple % count:
            raise ValueError(f"shard={self.shard}: need 0 <= index < count and count dividing multiple={multiple} "
                             "(every process holds the same number of devices).")
        super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=max(4, 2 * workers))
        self.n = n
        self.labels = None if labels is None else np.asarray(labels, dtype=np.float32)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.multiple = multiple
        self.full_batches = full_batches
        self.weights: np.ndarray | None = None  # per-item sample weights (`ArrayBatches(weights=...)`)
        self.epoch = epoch  # the first epoch's shuffle: a resumed fit continues the order it left
        self.order = self._order()

    @property
    def padded(self) -> bool:
        """Whether batches carry sample weights (an ordered set split over several devices)."""
        return self.multiple > 1 and not self.shuffle and self.labels is not None

    @staticmethod
    def kept(n: int, batch_size: int, multiple: int = 1, full_batches: bool = False) -> int:
        """How many of `n` items one epoch of a shuffled set reads (the rest wait for a later epoch).

        Example:
            >>> Batches.kept(10, 4), Batches.kept(10, 4, full_batches=True), Batches.kept(3, 4, full_batches=True)
            (10, 8, 3)
        """
        keep = n - n % multiple
        if full_batches and keep >= batch_size:
            keep -= keep % batch_size
        return keep

    def _order(self, epoch: int | None = None) -> np.ndarray:
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch if epoch is None else epoch]).permutation(self.n)
            return order[:self.kept(self.n, self.batch_size, self.multiple, self.full_batches)]
        order = np.arange(self.n)
        short = -self.n % self.multiple
        if short and self.n:
            order = np.concatenate([order, np.full(short, self.n - 1)])
        return order

    def __len__(self) -> int:
        return math.ceil(len(self.order) / self.batch_size)

    def items(self, idx: np.ndarray) -> np.ndarray:
        """The inputs of the items `idx` as one array."""
        raise NotImplementedError

    def _local(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """This process's slice of global batch `index`: its items and their positions in `order`."""
        start = index * self.batch_size
        stop = min(start + self.batch_size, len(self.order))
        mine, count = self.shard
        size = (stop - start) // count
        positions = np.arange(start + mine * size, start + (mine + 1) * size)
        return self.order[positions], positions

    def positions(self) -> np.ndarray:
        """Where in `order` the items this process reads stand, over all batches: for an ordered (evaluation)
        set, the items themselves, padding at `n` and past (see `kmodels.cluster.gather_rows`)."""
        return np.concatenate([self._local(i)[1] for i in range(len(self))] or [np.zeros(0, np.int64)])

    def __getitem__(self, index: int):
        idx, positions = self._local(index)
        x = self.items(idx)
        if self.labels is None:
            return (x,)
        weights = None if self.weights is None else self.weights[idx]
        if self.padded:
            mask = (positions < self.n).astype(np.float32)
            weights = mask if weights is None else weights * mask.reshape(-1, *[1] * (weights.ndim - 1))
        return (x, self.labels[idx]) if weights is None else (x, self.labels[idx], weights)

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = self._order()


class ArrayBatches(Batches):
    """Batches of rows of an in-memory array (what `fit` does with arrays, plus `multiple`).

    Example:
        >>> import numpy as np
        >>> ds = ArrayBatches(np.zeros((5, 2)), [0, 1, 0, 1, 0], batch_size=2, multiple=2)
        >>> [len(ds[i][0]) for i in range(len(ds))], ds[2][2].tolist()
        ([2, 2, 2], [1.0, 0.0])
    """

    def __init__(self, x: np.ndarray, labels: Sequence[int] | None, batch_size: int = 32, shuffle: bool = False,
                 seed: int = 0, multiple: int = 1, shard: tuple[int, int] | None = None, full_batches: bool = False,
                 epoch: int = 0, weights: np.ndarray | None = None) -> None:
        self.x = np.asarray(x)
        super().__init__(len(self.x), labels, batch_size, shuffle, seed, multiple, shard=shard,
                         full_batches=full_batches, epoch=epoch)
        if weights is not None:
            weights = np.asarray(weights, dtype=np.float32)
            if len(weights) != len(self.x):
                raise ValueError(f"weights has {len(weights)} rows for {len(self.x)} items.")
            self.weights = weights

    def items(self, idx: np.ndarray) -> np.ndarray:
        return self.x[idx]

    def tf_dataset(self, epochs: int) -> tf.data.Dataset | None:
        """TensorFlow: this set's batches from its epoch up to `epochs` as one `tf.data.Dataset`, the same
        batches in the same order as indexing it epoch by epoch; `None` where there is no such twin (an
        ordered or padded set, batches of two sizes, or one process's shard of a multi-process run).

        Keras's TensorFlow trainer reads a `PyDataset` through a Python generator, one call per batch; this
        gathers the rows inside TensorFlow (about 1.5x faster `fit` for a table network on a CPU, see
        benchmarks/README.md). Pass `steps_per_epoch=len(self)` to `fit`, so that one iterator runs on
        through the epochs.

        Example:
            >>> import numpy as np
            >>> b = ArrayBatches(np.arange(10.0)[:, None], np.arange(10) % 2, 4, shuffle=True, full_batches=True)
            >>> ds = b.tf_dataset(epochs=2)  # doctest: +SKIP
            >>> [x.shape[0] for x, y in ds]  # doctest: +SKIP
            [4, 4, 4, 4]
        """
        size = min(self.batch_size, len(self.order))
        if (not (self.shuffle and self.full_batches) or self.labels is None or self.shard[1] != 1 or not size
                or len(self.order) % size or epochs <= self.epoch):
            return None
        import tensorflow as tf

        def epoch_order(epoch: np.ndarray) -> np.ndarray:
            return self._order(int(epoch)).astype(np.int64)

        tensors = [tf.constant(self.x), tf.constant(self.labels)]
        if self.weights is not None:
            tensors.append(tf.constant(self.weights))

        def batches(epoch: tf.Tensor) -> tf.data.Dataset:
            idx = tf.numpy_function(epoch_order, [epoch], tf.int64, stateful=False)
            return tf.data.Dataset.from_tensor_slices(tf.reshape(idx, (-1, size)))

        return (tf.data.Dataset.range(self.epoch, epochs).flat_map(batches)
                .map(lambda idx: tuple(tf.gather(t, idx) for t in tensors), num_parallel_calls=tf.data.AUTOTUNE)
                .prefetch(tf.data.AUTOTUNE))
