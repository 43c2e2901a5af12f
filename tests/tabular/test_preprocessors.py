"""Contract + hypothesis properties for every registered preprocessor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kmodels_tabular.bank_data import CATEGORICAL, generate_bank_frame, read_bank_frame
from kmodels_tabular.preprocessors import BankFeatures, Impute
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

import kmodels
from kmodels import registry


def raw(n: int, seed: int) -> pd.DataFrame:
    return generate_bank_frame(n, seed)


def loaded(n: int, seed: int) -> pd.DataFrame:
    """As the bank loader reads it: dates, gender and city as categoricals."""
    import io

    return read_bank_frame(io.StringIO(generate_bank_frame(n, seed).to_csv(index=False)))[0]


def features(n: int, seed: int) -> pd.DataFrame:
    return BankFeatures().fit_transform(raw(n, seed))


def numeric(n: int, seed: int) -> pd.DataFrame:
    return features(n, seed).drop(columns=["CustLocation"])


def imputed(n: int, seed: int) -> pd.DataFrame:
    return Impute().fit_transform(numeric(n, seed))


def toy(n: int, seed: int) -> pd.DataFrame:
    return registry.datasets.get("toy_blobs")(rows=n, seed=seed).frame


# name -> (constructor kwargs, input maker, output may hold NaN)
EXAMPLES = {
    "drop_duplicates": ({}, raw, True),
    "drop_missing": ({"columns": ["CustomerDOB"]}, raw, True),
    "drop_columns": ({"columns": ["CustomerID"]}, raw, True),
    "bank_features": ({}, raw, True),
    "auto_features": ({"max_one_hot": 5}, raw, True),
    "frequency_encode": ({"columns": ["CustLocation"]}, features, True),
    "one_hot": ({"columns": ["CustLocation"], "max_categories": 3}, features, True),
    "impute": ({}, numeric, False),
    "standard_scale": ({}, imputed, False),
    "robust_scale": ({}, imputed, False),
    "smooth_clip": ({"bound": 2.5}, imputed, False),
    "toy_drop": ({"columns": ["customer"]}, toy, True),
}
NAMES = registry.preprocessors.list()
sizes = st.integers(min_value=2, max_value=60)
seeds = st.integers(min_value=0, max_value=2**16)


def test_every_preprocessor_has_an_example():
    assert set(NAMES) <= set(EXAMPLES), f"add examples for {set(NAMES) - set(EXAMPLES)}"


def make(name):
    kwargs, maker, nan_ok = EXAMPLES[name]
    return registry.preprocessors.create({"name": name, **kwargs}), maker, nan_ok


@pytest.mark.parametrize("name", NAMES)
@given(n=sizes, seed=seeds)
def test_fit_transform_matches_fit_then_transform_and_input_untouched(name, n, seed):
    est, maker, nan_ok = make(name)
    x = maker(n, seed)
    before = x.copy()
    a = clone(est).fit(x).transform(x)
    b = clone(est).fit_transform(x)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(x, before)
    assert isinstance(a, pd.DataFrame)
    if not getattr(est, "drops_rows", False):
        assert len(a) == len(x) and a.index.equals(x.index)
    if not nan_ok:
        assert not a.isna().to_numpy().any()
        assert all(pd.api.types.is_float_dtype(a[c]) for c in a.columns)


@pytest.mark.parametrize("name", NAMES)
@given(n=sizes, seed=seeds)
def test_params_round_trip_and_clone(name, n, seed):
    est, maker, _ = make(name)
    x = maker(n, seed)
    params = est.get_params()
    same = clone(est).set_params(**params)
    assert same.get_params() == params
    pd.testing.assert_frame_equal(est.fit_transform(x), same.fit_transform(x))


@pytest.mark.parametrize("name", NAMES)
def test_transform_before_fit_raises(name):
    est, maker, _ = make(name)
    with pytest.raises(NotFittedError):
        est.transform(maker(5, 0))


@pytest.mark.parametrize("name", ["frequency_encode", "one_hot", "auto_features"])
@given(n=sizes, seed=seeds)
def test_unseen_categories_at_transform_time(name, n, seed):
    est, maker, _ = make(name)
    x = maker(n, seed)
    est.fit(x)
    unseen = x.copy()
    unseen["CustLocation"] = "NEVER SEEN TOWN"
    out = est.transform(unseen)
    loc_cols = [c for c in out.columns if c.startswith("CustLocation")]
    assert loc_cols and (out[loc_cols].to_numpy() == 0).all()


@given(n=sizes, seed=seeds)
def test_drop_duplicates_is_idempotent(n, seed):
    est, maker, _ = make("drop_duplicates")
    x = maker(n, seed)
    once = est.fit_transform(x)
    assert not once.duplicated().any()
    pd.testing.assert_frame_equal(once, est.fit_transform(once))


@given(n=sizes, seed=seeds)
def test_standard_scale_uses_training_statistics(n, seed):
    x = imputed(n, seed)
    est = registry.preprocessors.create({"name": "standard_scale"}).fit(x)
    out = est.transform(x)
    varying = x.std(ddof=0) > 1e-9
    np.testing.assert_allclose(out.loc[:, varying].mean(), 0, atol=1e-6)
    np.testing.assert_allclose(out.loc[:, varying].std(ddof=0), 1, atol=1e-6)


def test_standard_scale_rejects_text_columns():
    from kmodels.errors import DataError

    with pytest.raises(DataError, match=r"\['c'\] are not numeric"):
        registry.preprocessors.create({"name": "standard_scale"}).fit(pd.DataFrame({"c": ["a"]}))


def test_bank_features_values():
    frame = pd.DataFrame({
        "CustomerDOB": ["4/4/57", "1/1/1800", None, "10/1/1994"], "TransactionDate": ["2/8/16"] * 4,
        "TransactionTime": [143207, 5317, 235959, 0], "TransactionAmount (INR)": [0.0, 99.0, 1.0, 5.0],
        "CustAccountBalance": [0.0, None, 10.0, 5.0], "CustLocation": ["A", "B", None, "A"],
    })
    out = BankFeatures().fit_transform(frame)
    assert out["age"].round(1).tolist()[0] == 59.3
    assert np.isnan(out["age"][1]) and np.isnan(out["age"][2])
    assert out["hour"].tolist() == [14, 0, 23, 0]
    assert out["zero_balance"].tolist()[0] == 1.0 and np.isnan(out["zero_balance"][1])
    assert out["weekday"].tolist() == [1.0] * 4  # 2 Aug 2016 was a Tuesday


ROW_FILTERS = [n for n in NAMES if getattr(registry.preprocessors.get(n), "keep_mask", None)]


@given(n=sizes, seed=seeds)
@pytest.mark.parametrize("name", ROW_FILTERS)
def test_keep_mask_is_what_transform_keeps(name, n, seed):
    est, maker, _ = make(name)
    x = maker(n, seed)
    keep = est.fit(x).keep_mask(x)
    assert keep.dtype == bool and keep.shape == (len(x),)
    pd.testing.assert_frame_equal(x[keep], est.transform(x))


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype({c: object for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)})


@given(n=sizes, seed=seeds)
@pytest.mark.parametrize("name", ["drop_duplicates", "drop_missing", "bank_features", "auto_features"])
def test_categorical_columns_give_what_text_columns_give(name, n, seed):
    est, _, _ = make(name)
    cat = loaded(n, seed)
    assert all(isinstance(cat[c].dtype, pd.CategoricalDtype) for c in CATEGORICAL)
    text = cat.astype({c: "str" for c in CATEGORICAL})
    assert (text.isna() == cat.isna()).all().all()
    pd.testing.assert_frame_equal(_plain(clone(est).fit_transform(cat)), _plain(clone(est).fit_transform(text)),
                                  check_dtype=False)
    enc = registry.preprocessors.get("frequency_encode")(["CustLocation"])
    a, b = BankFeatures().fit_transform(cat), BankFeatures().fit_transform(text)
    pd.testing.assert_frame_equal(clone(enc).fit_transform(a), clone(enc).fit_transform(b), check_dtype=False)


def test_impute_fills_infinite_values_like_missing_ones():
    from kmodels_tabular.preprocessors import Impute

    frame = pd.DataFrame({"a": [1.0, np.inf, 3.0, -np.inf, np.nan]})
    out = Impute().fit_transform(frame)
    assert out["a"].tolist() == [1.0, 2.0, 3.0, 2.0, 2.0]  # the median of the finite values
    assert out["a_missing"].tolist() == [0.0, 1.0, 0.0, 1.0, 1.0]
    assert np.isinf(frame["a"]).sum() == 2  # the input is left as it was


finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False)


@given(values=st.lists(finite, min_size=1, max_size=80))
def test_robust_scale_centres_on_the_median_and_scales_by_the_quartiles(values):
    x = pd.DataFrame({"a": values})
    out = registry.preprocessors.create({"name": "robust_scale"}).fit_transform(x)["a"].to_numpy()
    assert np.isfinite(out).all()
    q25, median, q75 = np.quantile(out, [0.25, 0.5, 0.75])
    assert abs(median) <= 1e-6 * max(1.0, np.abs(out).max())
    if np.quantile(values, 0.75) > np.quantile(values, 0.25):
        assert q75 - q25 == pytest.approx(1.0, rel=1e-6)
    assert (np.diff(out[np.argsort(values, kind="stable")]) >= 0).all()  # order kept


@given(values=st.lists(st.floats(allow_nan=True, allow_infinity=False, width=64), min_size=1, max_size=80),
       bound=st.floats(min_value=0.1, max_value=100))
def test_smooth_clip_is_bounded_monotone_and_near_the_identity_at_zero(values, bound):
    x = pd.DataFrame({"a": values})
    out = registry.preprocessors.create({"name": "smooth_clip", "bound": bound}).fit_transform(x)["a"].to_numpy()
    v = np.asarray(values, dtype=float)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(v))  # missing stays missing
    ok = ~np.isnan(v)
    assert (np.abs(out[ok]) <= bound).all() and (np.sign(out[ok]) == np.sign(v[ok])).all()
    order = np.argsort(v[ok], kind="stable")
    assert (np.diff(out[ok][order]) >= 0).all()
    small = ok & (np.abs(v) < bound / 100)
    np.testing.assert_allclose(out[small], v[small], rtol=1e-4)
    with pytest.raises(ValueError, match="bound=0"):
        registry.preprocessors.create({"name": "smooth_clip", "bound": 0}).fit(x)


def test_robust_scale_refuses_text_and_keeps_constant_and_flag_columns_finite():
    flags = pd.DataFrame({"flag": [0.0] * 9 + [1.0], "const": [5.0] * 10})
    out = registry.preprocessors.create({"name": "robust_scale"}).fit_transform(flags)
    assert out["flag"].tolist() == [0.0] * 9 + [2.0]  # quartiles equal: half the range (0.5) scales
    assert out["const"].tolist() == [0.0] * 10
    with pytest.raises(kmodels.DataError, match=r"robust_scale: columns \['c'\] are not numeric"):
        registry.preprocessors.create({"name": "robust_scale"}).fit(pd.DataFrame({"c": ["a"]}))


GRAPHED = [n for n in NAMES if hasattr(registry.preprocessors.get(n), "to_graph")]


def test_the_feature_steps_have_a_graph_form():
    """What a raw-rows export can hold: every bundled feature step (row filters do not run at predict time)."""
    assert {"drop_columns", "bank_features", "auto_features", "frequency_encode", "one_hot", "impute",
            "standard_scale", "robust_scale", "smooth_clip"} <= set(GRAPHED)


@pytest.mark.parametrize("name", GRAPHED)
@given(n=sizes, seed=seeds)
def test_graph_form_computes_what_transform_computes(name, n, seed):
    """`to_graph` (what an export runs) gives `transform`'s columns, in its order, with its values, on rows it
    was not fitted on (unseen categories, other missing values)."""
    from kmodels import graph

    est, maker, _ = make(name)
    frame = maker(n, seed)
    est.fit(frame.iloc[: n // 2])
    x = frame.iloc[n // 2:]
    want = est.transform(x)
    outputs = est.to_graph({c: graph.column(c) for c in x.columns})
    assert list(outputs) == list(want.columns)
    passed = [c for c, node in outputs.items() if node.kind == graph.RAW]  # columns it leaves as they are
    for column in passed:
        pd.testing.assert_series_equal(want[column], x[outputs[column].attrs["name"]], check_names=False)
    computed = {c: node for c, node in outputs.items() if c not in passed}
    got = graph.evaluate(computed, graph.raw_inputs(x, graph.input_kinds(computed.values())), rows=len(x))
    for column in computed:
        np.testing.assert_allclose(got[column], want[column].to_numpy(dtype=float), rtol=1e-12, atol=0,
                                   equal_nan=True, err_msg=f"{name}: column {column!r}")


def test_auto_features_drops_identifier_columns_and_keeps_repeated_categories():
    """A text column whose values are mostly distinct (a transaction id) gives no feature and no per-value map;
    a high-cardinality category that repeats is still frequency encoded."""
    from kmodels_tabular.auto_features import ID_RATIO, AutoFeatures

    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame({"tx": [f"T{i}" for i in range(n)], "city": rng.choice([f"c{i}" for i in range(60)], n),
                          "amount": rng.normal(size=n)})
    step = AutoFeatures().fit(frame)
    assert step.kinds_ == {"tx": "id", "city": "frequency", "amount": "numeric"}
    assert frame["tx"].nunique() > ID_RATIO * n and list(step.frequency_.frequencies_) == ["city"]
    out = step.transform(frame)
    assert list(out.columns) == ["amount", "city_freq"]


def test_a_preprocessing_file_saved_before_auto_features_moved_still_loads(tmp_path):
    """`AutoFeatures` moved from `kmodels_tabular.preprocessors` to `kmodels_tabular.auto_features`: a run's
    `preprocessor.skops` saved before names the old path, which must still resolve and be trusted."""
    import zipfile

    from kmodels_tabular.auto_features import AutoFeatures
    from sklearn.pipeline import Pipeline

    from kmodels.runs import RunDir
    from kmodels.task.inference import _load_state, save_state

    frame = pd.DataFrame({"n": [1.0, 2.0, 3.0, 4.0], "c": ["a", "b", "a", "b"]})
    run = RunDir(tmp_path)
    save_state(run, Pipeline([("auto_features", AutoFeatures())]).fit(frame), {"columns": ["n", "c"]})
    path = tmp_path / "preprocessor.skops"
    with zipfile.ZipFile(path) as z:
        files = {name: z.read(name) for name in z.namelist()}
    schema = files["schema.json"].decode()
    assert '"kmodels_tabular.auto_features"' in schema
    files["schema.json"] = schema.replace('"kmodels_tabular.auto_features"', '"kmodels_tabular.preprocessors"').encode()
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    state = _load_state(run)
    step = state["pipeline"].named_steps["auto_features"]
    assert type(step) is AutoFeatures and step.kinds_ == {"n": "numeric", "c": "one_hot"}
    assert state["columns"] == ["n", "c"]
    pd.testing.assert_frame_equal(state["pipeline"].transform(frame), Pipeline([("a", AutoFeatures())]).fit_transform(frame))
    # the old path is trusted because the class names it, not because any name under the plugin is
    files["schema.json"] = schema.replace('"kmodels_tabular.auto_features"', '"kmodels_tabular.elsewhere"').encode()
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    with pytest.raises(kmodels.errors.RunError, match="elsewhere"):
        _load_state(run)
