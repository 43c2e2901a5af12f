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
