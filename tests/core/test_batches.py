"""`kmodels.data.batches`: full training batches, per-item weights, a resumed epoch's order; and the batch size
in-memory evaluation and prediction use."""

from __future__ import annotations

import numpy as np
import pytest

from kmodels.data.batches import ArrayBatches


def _epochs(batches: ArrayBatches, count: int) -> list[list[np.ndarray]]:
    seen = []
    for _ in range(count):
        seen.append([batches[i][0][:, 0].astype(int) for i in range(len(batches))])
        batches.on_epoch_end()
    return seen


def test_full_batches_leave_out_a_different_remainder_each_epoch():
    x = np.arange(10.0)[:, None]
    batches = ArrayBatches(x, np.arange(10) % 2, batch_size=4, shuffle=True, seed=3, full_batches=True)
    epochs = _epochs(batches, 6)
    assert all([len(b) for b in epoch] == [4, 4] for epoch in epochs)  # one shape: compiled once
    left_out = [frozenset(range(10)) - frozenset(np.concatenate(epoch).tolist()) for epoch in epochs]
    assert all(len(s) == 2 for s in left_out) and len(set(left_out)) > 1  # other items wait each epoch
    assert set().union(*[np.concatenate(e).tolist() for e in epochs]) == set(range(10))
    plain = ArrayBatches(x, np.arange(10) % 2, batch_size=4, shuffle=True, seed=3)
    assert [len(plain[i][0]) for i in range(len(plain))] == [4, 4, 2]


def test_full_batches_keep_everything_when_the_set_is_smaller_than_a_batch_or_ordered():
    x = np.arange(3.0)[:, None]
    small = ArrayBatches(x, [0, 1, 0], batch_size=8, shuffle=True, full_batches=True)
    assert len(small) == 1 and sorted(small[0][0][:, 0].tolist()) == [0.0, 1.0, 2.0]
    ordered = ArrayBatches(np.arange(10.0)[:, None], None, batch_size=4, full_batches=True)
    assert np.concatenate([ordered[i][0] for i in range(len(ordered))])[:, 0].tolist() == list(range(10))


def test_a_resumed_epoch_continues_the_shuffled_order():
    x = np.arange(20.0)[:, None]
    run = ArrayBatches(x, np.zeros(20), batch_size=8, shuffle=True, seed=5, full_batches=True)
    for _ in range(3):
        run.on_epoch_end()
    resumed = ArrayBatches(x, np.zeros(20), batch_size=8, shuffle=True, seed=5, full_batches=True, epoch=3)
    np.testing.assert_array_equal(run.order, resumed.order)


def test_weights_travel_with_their_items_and_padding_zeroes_them():
    x = np.arange(5.0)[:, None]
    weights = np.array([[1.0], [2.0], [3.0], [4.0], [5.0]])
    shuffled = ArrayBatches(x, np.zeros(5), batch_size=2, shuffle=True, seed=1, weights=weights)
    for i in range(len(shuffled)):
        items, _, w = shuffled[i]
        np.testing.assert_array_equal(w, items + 1)
    padded = ArrayBatches(x, np.zeros(5), batch_size=2, multiple=2, weights=weights)
    assert padded[2][2].tolist() == [[5.0], [0.0]]  # the copy of the last item that pads the batch weighs nothing
    with pytest.raises(ValueError, match="weights has 2 rows for 5 items"):
        ArrayBatches(x, np.zeros(5), weights=np.ones(2))


def test_evaluation_takes_a_small_array_in_one_batch():
    from kmodels.task import Task

    task = Task.__new__(Task)
    assert task.eval_batch_size(np.zeros((1000, 15), np.float32), 256) == 1000
    assert task.eval_batch_size(np.zeros((50_000, 15), np.float32), 256) == Task.WHOLE_BATCH_ROWS
    wide = np.zeros((5000, 20_000), np.float32)  # 80 KB a row: the byte cap, not the row cap, binds
    assert task.eval_batch_size(wide, 32) == Task.WHOLE_BATCH_BYTES // (20_000 * 4)
    assert task.eval_batch_size(wide, 1024) == 1024  # never below the size asked for
    assert task.eval_batch_size(np.zeros((100, 8, 8, 3), np.float32), 32) == 32  # images: as asked
    assert task.eval_batch_size([np.zeros((10, 2))], 4) == 4  # several inputs: as asked


@pytest.mark.skipif(__import__("keras").backend.backend() != "tensorflow", reason="TensorFlow's input pipeline")
@pytest.mark.parametrize("rows", [10, 3])  # batches of 4 (two left out each epoch), and one batch of the 3 rows
def test_the_tensorflow_dataset_yields_the_same_batches_as_the_epochs_do(rows):
    x = np.arange(rows, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)
    weights = np.arange(rows, dtype=np.float32) / 10
    make = lambda epoch: ArrayBatches(x, np.arange(rows) % 2, batch_size=4, shuffle=True, seed=5,  # noqa: E731
                                      full_batches=True, epoch=epoch, weights=weights)
    expected = []
    batches = make(1)  # a resumed fit: its second epoch on
    for _ in range(3):
        expected += [batches[i] for i in range(len(batches))]
        batches.on_epoch_end()
    got = [tuple(t.numpy() for t in batch) for batch in make(1).tf_dataset(epochs=4)]
    assert len(got) == len(expected) == 3 * len(batches)
    for (gx, gy, gw), (ex, ey, ew) in zip(got, expected, strict=True):
        np.testing.assert_array_equal(gx, ex)
        np.testing.assert_array_equal(gy, ey)
        np.testing.assert_array_equal(gw, ew)


def test_sets_without_a_dataset_twin_say_so():
    x, y = np.zeros((10, 2)), np.arange(10) % 2
    assert ArrayBatches(x, y, 4).tf_dataset(2) is None  # ordered: evaluation
    assert ArrayBatches(x, y, 4, shuffle=True).tf_dataset(2) is None  # a last batch of another size
    assert ArrayBatches(x, y, 4, shuffle=True, full_batches=True, shard=(0, 2), multiple=2).tf_dataset(2) is None
    assert ArrayBatches(x, y, 4, shuffle=True, full_batches=True, epoch=2).tf_dataset(2) is None  # nothing left
