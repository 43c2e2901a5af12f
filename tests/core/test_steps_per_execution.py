"""`[train] steps_per_execution`: several training steps per call into the compiled step, same training."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import kmodels
from kmodels import registry
from kmodels.backend import set_seed
from kmodels.errors import ConfigError
from kmodels.problems import Problem


class _Calls(keras.callbacks.Callback):
    """Records each batch-level call's end step and the model's `steps_per_execution` at the time."""

    def __init__(self):
        super().__init__()
        self.ends: list[int] = []
        self.per_call: set[int] = set()

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(batch)
        self.per_call.add(self.model.steps_per_execution)


def _trained(option, epochs=3):
    task = registry.tasks.get("toy_task")(kmodels.load_spec("toy_task", {
        "train.steps_per_execution": option, "train.class_weight": "balanced", "callbacks": []}))
    prepared = task.prepare()
    set_seed(7)
    model = task.build_model(prepared)
    calls = _Calls()
    task.make_callbacks = lambda: [calls]  # noqa: E731 - only the recorder: no early stop, no files
    history = task.fit(model, prepared, epochs=epochs)
    return task, prepared, model, history, calls


@pytest.fixture(scope="module")
def one_step():
    return _trained(1)


def test_an_epoch_per_call_trains_the_same_weights(one_step):
    task, prepared, model, history, calls = one_step
    steps = len(calls.ends) // 3  # batches per epoch
    assert steps >= 4 and calls.per_call == {1}
    _, _, fast, fast_history, fast_calls = _trained("epoch")
    # one call per epoch, each reporting the epoch's last step, and the same batches trained on
    assert fast_calls.ends == [steps - 1] * 3 and fast_calls.per_call == {steps}
    np.testing.assert_allclose(fast_history["loss"], history["loss"], rtol=1e-4)
    np.testing.assert_allclose(fast_history["val_loss"], history["val_loss"], rtol=1e-4)
    for a, b in zip(fast.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    # afterwards the model predicts one batch per call again, with functions made for that
    assert fast.steps_per_execution == 1 and fast.predict_function is None
    x = prepared.data["test"].x
    np.testing.assert_allclose(fast.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-4, atol=1e-5)


def test_a_number_larger_than_an_epoch_is_an_epoch(one_step):
    steps = len(one_step[4].ends) // 3
    _, _, _, _, calls = _trained(10_000, epochs=1)
    assert calls.ends == [steps - 1] and calls.per_call == {steps}
    _, _, _, _, calls = _trained(2, epochs=1)
    # each call reports its last step (begin + 1), an odd epoch's last call too
    assert calls.ends == list(range(1, steps + 1, 2)) and calls.per_call == {2}


def test_class_weights_become_one_weight_per_row():
    task = registry.tasks.get("toy_task")(kmodels.load_spec("toy_task", {"train.class_weight": "balanced"}))
    weights = task.sample_weights(np.array([0, 0, 1, 0]), Problem("binary", ("a", "b")))
    assert weights.dtype == np.float32
    np.testing.assert_allclose(weights, [4 / 6, 4 / 6, 2.0, 4 / 6])
    assert task.sample_weights(np.array([0.5, 1.5]), Problem("regression")) is None


@pytest.mark.parametrize("value", [0, -2])
def test_steps_per_execution_below_one_is_refused(value):
    with pytest.raises(ConfigError, match=rf"\[train\] steps_per_execution={value}: expected an integer >= 1"):
        kmodels.load_spec("toy_task", {"train.steps_per_execution": value}).options("train")


def test_validation_rows_come_whole_and_in_order():
    task = registry.tasks.get("toy_task")(kmodels.load_spec("toy_task"))
    x = np.arange(40 * 3, dtype=np.float32).reshape(40, 3)
    y = np.arange(40) % 2
    data = task.training_batches(x[:30], y[:30], x[30:], y[30:], epochs=1)
    if keras.backend.backend() != "tensorflow":
        np.testing.assert_array_equal(data["validation_data"][0], x[30:])
        assert data["validation_batch_size"] == 10
        return
    # on TensorFlow: a dataset made once (Keras's own dataset of arrays costs ~17 ms an epoch to iterate)
    batches = [tuple(np.asarray(t) for t in batch) for batch in data["validation_data"]]
    assert len(batches) == 1 and "validation_batch_size" not in data
    np.testing.assert_array_equal(batches[0][0], x[30:])
    np.testing.assert_array_equal(batches[0][1], y[30:])
