"""`kmodels bench tta`: a finished image run's network re-scored on its rebuilt test split under each view set."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kmodels.cli import main


def test_tta_bench_rebuilds_the_test_split_and_scores_each_view_set(dog_cat_run, tmp_path, capsys):
    out = tmp_path / "tta.json"
    assert main(["bench", "tta", str(dog_cat_run.run_dir), "--views", "none,flip", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["results"]
    assert [r["tta"] for r in rows] == ["none", "flip"]
    keras_metrics = dog_cat_run.metrics["models"]["keras"]
    assert rows[0]["shipped"] == "none" and rows[0]["metric"] == "roc_auc"
    # the run shipped tta = "none": re-scoring it the same way on the rebuilt split gives the run's own numbers
    assert rows[0]["value"] == pytest.approx(keras_metrics["roc_auc"], abs=1e-6)
    assert rows[0]["accuracy"] == pytest.approx(keras_metrics["accuracy"], abs=1e-6)
    assert rows[0]["test_images"] == dog_cat_run.metrics["splits"]["test"]
    assert all(0.0 <= r["value"] <= 1.0 and r["ms_per_image"] > 0 for r in rows)
    assert "tta=flip" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["bench", "tta", str(dog_cat_run.run_dir), "--json", str(out)])  # never overwrites
    assert "exists" in capsys.readouterr().err


def test_tta_bench_refuses_other_data_table_runs_and_unknown_views(dog_cat_run, toy_run, tmp_path, capsys):
    from PIL import Image

    for label in ("cat", "dog"):
        (tmp_path / "other" / label).mkdir(parents=True)
        for i in range(6):
            colour = (40 * i, 200 if label == "dog" else 20, 90)
            Image.new("RGB", (60, 50), colour).save(tmp_path / "other" / label / f"{i}.png")
    with pytest.raises(SystemExit):
        main(["bench", "tta", str(dog_cat_run.run_dir), "--data", str(tmp_path / "other")])
    assert "not the data" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["bench", "tta", str(toy_run.run_dir)])
    assert "image runs" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["bench", "tta", str(dog_cat_run.run_dir), "--views", "flip,mirror"])
    assert "--views" in capsys.readouterr().err


def test_network_unwraps_a_test_time_augmentation_wrapper():
    from kmodels_vision.options import with_test_time_views

    import kmodels
    from benchmarks.photo_tta import network

    net = kmodels.build("simple_cnn", input_shape=(16, 16, 3), filters=(4,), dense_units=4)
    assert network(net) is net
    wrapped = with_test_time_views(net, "flip")
    assert network(wrapped) is net
    x = np.random.default_rng(0).uniform(0, 255, (3, 16, 16, 3)).astype("float32")
    expected = (np.asarray(net(x)) + np.asarray(net(x[:, :, ::-1]))) / 2
    np.testing.assert_allclose(np.asarray(wrapped(x)), expected, rtol=1e-5, atol=1e-6)
    assert with_test_time_views(net, "none") is net
    assert network(with_test_time_views(net, "flip_translate")) is net


def test_tta_bench_scores_other_test_sizes_with_the_same_weights(dog_cat_run, tmp_path, capsys):
    out = tmp_path / "sizes.json"
    assert main(["bench", "tta", str(dog_cat_run.run_dir), "--views", "none", "--sizes", "48,64",
                 "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["results"]
    assert [r["test_size"] for r in rows] == [[48, 48], [64, 64]]
    assert all(r["trained_size"] == [48, 48] for r in rows)
    # at the run's own size it is the run's own score; at 64 px the same split, decoded larger, is scored again
    assert rows[0]["value"] == pytest.approx(dog_cat_run.metrics["models"]["keras"]["roc_auc"], abs=1e-6)
    assert 0.0 <= rows[1]["value"] <= 1.0 and rows[1]["test_images"] == rows[0]["test_images"]
    assert " 64x64 " in capsys.readouterr().out
    for bad in ("8", "big", ""):
        with pytest.raises(SystemExit):
            main(["bench", "tta", str(dog_cat_run.run_dir), "--sizes", bad])
        assert "--sizes" in capsys.readouterr().err


def test_at_size_keeps_the_weights_and_refuses_a_size_bound_network():
    import keras

    import kmodels
    from benchmarks.photo_tta import at_size
    from kmodels.errors import ConfigError

    net = kmodels.build("simple_cnn", input_shape=(16, 16, 3), filters=(4,), dense_units=4)
    assert at_size(net, (16, 16)) is net
    bigger = at_size(net, (24, 32))
    assert bigger.input_shape == (None, 24, 32, 3)
    for a, b in zip(net.get_weights(), bigger.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(1).uniform(0, 255, (2, 24, 32, 3)).astype("float32")
    assert np.asarray(bigger(x)).shape == (2, 1)
    flat = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(1)])
    with pytest.raises(ConfigError, match="cannot be rebuilt"):
        at_size(flat, (16, 16))
