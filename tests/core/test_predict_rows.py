"""`kmodels.task.inference.predict_rows`: predictions of any number of rows through a few input shapes on JAX."""

from __future__ import annotations

import logging

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kmodels import backend
from kmodels.task.inference import ROW_BUCKET, predict_rows, row_bucket


@given(st.integers(1, 100_000))
def test_a_bucket_holds_the_rows_with_little_to_spare(n):
    b = row_bucket(n)
    assert b >= n
    assert b < 2 * n if n <= ROW_BUCKET else b - n < ROW_BUCKET and b % ROW_BUCKET == 0


@pytest.fixture(scope="module")
def two_input_model():
    a, b = keras.Input((3,), name="a"), keras.Input((2,), name="b")
    out = keras.layers.Dense(2)(keras.layers.Concatenate()([a, b]))
    return keras.Model({"a": a, "b": b}, out)


@pytest.mark.parametrize("direct", [False, True])
def test_the_rows_predicted_are_the_rows_given(two_input_model, direct):
    rng = np.random.default_rng(0)
    for n in (1, 3, 17, 64, 70):
        xa, xb = rng.normal(size=(n, 3)).astype("float32"), rng.normal(size=(n, 2)).astype("float32")
        expected = two_input_model.predict({"a": xa, "b": xb}, verbose=0)
        got = predict_rows(two_input_model, {"a": xa, "b": xb}, batch_size=32, direct=direct)
        assert got.shape == (n, 2)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    single = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    x = rng.normal(size=(5, 4)).astype("float32")
    np.testing.assert_allclose(predict_rows(single, x), single.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(backend.name() != "jax", reason="one compiled program per input shape is JAX's")
def test_requests_of_33_to_64_rows_compile_one_program_on_jax(caplog):
    import jax

    model = keras.Sequential([keras.Input((29,)), keras.layers.Dense(3)])  # a shape no other test predicts
    x = np.random.default_rng(1).normal(size=(64, 29)).astype("float32")
    with jax.log_compiles(True), caplog.at_level(logging.DEBUG, logger="jax"):
        predict_rows(model, x[:33], direct=True)
        first = sum("Compiling" in r.getMessage() for r in caplog.records)
        caplog.clear()
        for n in range(34, 65):
            predict_rows(model, x[:n], direct=True)
        later = sum("Compiling" in r.getMessage() for r in caplog.records)
    assert first > 0 and later == 0
