"""`tabular` on real multiclass and regression tables that packages ship (scikit-learn, palmerpenguins)."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pandas as pd
import pytest

import kmodels
from kmodels.cli import main


@pytest.fixture(scope="session")
def real_tables(tmp_path_factory):
    """wine (3 cultivars), diabetes (a number), penguins (3 species): the real data, as users' CSVs."""
    from sklearn.datasets import load_diabetes, load_wine

    root = tmp_path_factory.mktemp("tables")
    wine = load_wine(as_frame=True)
    frame = wine.frame.drop(columns=["target"])
    frame["cultivar"] = np.asarray(wine.target_names)[wine.target]
    frame.to_csv(root / "wine.csv", index=False)
    load_diabetes(as_frame=True, scaled=False).frame.to_csv(root / "diabetes.csv", index=False)
    palmerpenguins = pytest.importorskip("palmerpenguins")
    palmerpenguins.load_penguins().to_csv(root / "penguins.csv", index=False)
    return root


@pytest.fixture(scope="session")
def penguins_run(real_tables, tmp_path_factory):
    return kmodels.run("tabular", data=real_tables / "penguins.csv", overrides={"data.target": "species"},
                       out=tmp_path_factory.mktemp("penguins") / "run")


@pytest.mark.slow
def test_penguin_species_multiclass(penguins_run):
    m = penguins_run.metrics
    assert m["problem"]["kind"] == "multiclass" and m["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    models = m["models"]
    assert set(models) == {"majority", "logistic_regression", "hist_gradient_boosting", "sklearn_mlp", "keras"}
    assert models["keras"]["accuracy"] >= 0.97  # LogisticRegression reaches 0.997 in 5-fold CV
    assert np.array(models["keras"]["confusion_matrix"]).shape == (3, 3)
    assert set(models["keras"]["per_class"]) == {"Adelie", "Chinstrap", "Gentoo"}
    assert "f1_macro" in penguins_run.table.columns and "Problem: multiclass" in (penguins_run.run_dir / "report.md").read_text()
    assert (penguins_run.run_dir / "confusion_matrix.png").is_file()


@pytest.mark.slow
def test_multiclass_predict_names_every_class(penguins_run, real_tables, tmp_path):
    rows = pd.read_csv(real_tables / "penguins.csv").dropna().head(5).drop(columns=["species"])
    rows.to_csv(tmp_path / "new.csv", index=False)
    out = tmp_path / "pred.csv"
    assert main(["predict", str(penguins_run.run_dir), str(tmp_path / "new.csv"), "--output", str(out)]) == 0
    pred = pd.read_csv(out)
    assert list(pred.columns) == ["source", "row", "label", "probability", "probability_Adelie",
                                  "probability_Chinstrap", "probability_Gentoo"]
    np.testing.assert_allclose(pred.filter(like="probability_").sum(axis=1), 1.0, rtol=1e-4)
    assert set(pred["label"]) <= {"Adelie", "Chinstrap", "Gentoo"}
    assert main(["evaluate", str(penguins_run.run_dir)]) == 0


@pytest.mark.slow
def test_wine_multiclass(real_tables, tmp_path):
    result = kmodels.run("tabular", data=real_tables / "wine.csv", overrides={"data.target": "cultivar"},
                         out=tmp_path / "run")
    assert result.metrics["problem"]["kind"] == "multiclass"
    assert result.metrics["models"]["keras"]["accuracy"] >= 0.95


@pytest.mark.slow
def test_diabetes_regression_is_on_par_with_ridge(real_tables, tmp_path):
    result = kmodels.run("tabular", data=real_tables / "diabetes.csv", overrides={"data.target": "target"},
                         out=tmp_path / "run")
    m = result.metrics
    assert m["problem"]["kind"] == "regression" and "numeric target" in m["problem"]["reason"]
    models = m["models"]
    assert set(models) == {"mean", "ridge", "hist_gradient_boosting", "sklearn_mlp", "keras"}
    assert models["keras"]["r2"] >= models["ridge"]["r2"] - 0.05
    assert "| r2" in result.markdown and result.table.loc["keras", "r2"] == result.metrics["models"]["keras"]["r2"] and (result.run_dir / "regression.png").is_file()
    eda = json.loads((result.run_dir / "eda.json").read_text())
    assert eda["target"]["problem"] == "regression" and eda["target"]["summary"]["count"] == 442
    # a saved regression model predicts in the target's own units
    pred = kmodels.task.predict(result.run_dir, [real_tables / "diabetes.csv"])
    assert list(pred.columns) == ["source", "row", "prediction"] and 50 < pred["prediction"].mean() < 250
    # and exports: the SavedModel takes one array (a list of one failed to bind before)
    out = tmp_path / "diabetes_saved_model"
    assert main(["export", str(result.run_dir), str(out)]) == 0 and (out / "saved_model.pb").is_file()


def test_problem_can_be_forced(real_tables):
    spec = kmodels.load_spec("tabular", {"data.target": "cultivar", "data.problem": "regression"},
                             data=real_tables / "wine.csv")
    assert spec["data"]["problem"] == "regression"
    with pytest.raises(kmodels.ConfigError, match=r"key 'problem'.*'auto' \| 'binary'"):
        kmodels.load_spec("tabular", {"data.target": "cultivar", "data.problem": "ranking"},
                          data=real_tables / "wine.csv")


@pytest.mark.parametrize("column,values,problem,match", [
    ("y", ["a"] * 30, "auto", "only one class"),
    ("y", [None] * 30, "auto", "no values"),
    ("y", ["x", "y", "z"] * 10, "regression", "holds text"),
])
def test_bad_targets_exit_2_before_any_run_directory(tmp_path, capsys, column, values, problem, match):
    path = tmp_path / "t.csv"
    pd.DataFrame({"x": np.arange(len(values)), column: values}).to_csv(path, index=False)
    out = tmp_path / "run"
    argv = ["run", "tabular", "--data", str(path), "--set", f"data.target={column}", "--out", str(out)]
    assert main([*argv, "--set", f"data.problem={problem}"]) == 2
    err = capsys.readouterr().err
    assert match in err and f"'{column}'" in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(("labels", "match"), [
    (["a", "b", "a"], r"has 3 rows: too few to train, validate and test .*that takes 25 rows"),
    (["a", "b"] * 20 + ["c"], r"class\(es\) 'c' \(1\) have fewer than 2 rows"),
])
def test_too_little_data_exits_2_before_any_run_directory(tmp_path, capsys, labels, match):
    """A 3-row CSV or a one-row class would train and test on a row or two: refused up front."""
    path = tmp_path / "t.csv"
    pd.DataFrame({"x": np.arange(len(labels)), "y": labels}).to_csv(path, index=False)
    before = path.read_bytes()
    out = tmp_path / "run"
    assert main(["run", "tabular", "--data", str(path), "--set", "data.target=y", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert re.search(match, err) and "Traceback" not in err
    assert not out.exists() and path.read_bytes() == before


def test_hundred_thousand_distinct_labels_is_a_data_error(tmp_path, capsys):
    path = tmp_path / "ids.csv"
    n = 100_000
    pd.DataFrame({"x": np.arange(n) % 7, "label": [f"L{i}" for i in range(n)]}).to_csv(path, index=False)
    out = tmp_path / "run"
    assert main(["run", "tabular", "--data", str(path), "--set", "data.target=label", "--out", str(out)]) == 2
    assert "looks like an identifier" in capsys.readouterr().err and not out.exists()


def test_data_flag_keeps_the_spec_files_target(real_tables, tmp_path):
    spec = kmodels.load_spec("tabular", {"data.target": "cultivar"}, data=real_tables / "wine.csv")
    path = tmp_path / "mine.toml"
    path.write_text(spec.to_toml())
    again = kmodels.load_spec(path, data=real_tables / "penguins.csv")  # --data replaces the path only
    assert again["data"]["target"] == "cultivar" and again["data"]["path"] == str(real_tables / "penguins.csv")


def test_the_shown_spec_edited_keeps_its_target_and_stores_an_absolute_data_path(real_tables, tmp_path,
                                                                                  monkeypatch):
    """README workflow: `kmodels show tabular > my.toml`, set the target, `kmodels run my.toml --data x.csv`."""
    shown = kmodels.load_spec("tabular").to_toml()  # names the embedded bank_synthetic, target CustGender
    path = tmp_path / "my_task.toml"
    path.write_text(shown.replace('target = "CustGender"', 'target = "species"', 1))
    monkeypatch.chdir(real_tables)
    spec = kmodels.load_spec(path, data="penguins.csv")  # a relative --data, as typed
    assert spec["data"]["target"] == "species" and spec["data"]["name"] == "csv"
    assert "classes" not in spec["data"] or spec["data"]["classes"] in (None, [])  # the bank default is dropped
    assert spec["data"]["path"] == str(real_tables / "penguins.csv")  # absolute: evaluate works from anywhere
    untouched = tmp_path / "untouched.toml"
    untouched.write_text(shown)
    with pytest.raises(kmodels.ConfigError, match="target"):  # no target given for the user's file: asked for
        kmodels.load_spec(untouched, data="penguins.csv")


def test_a_binary_only_metric_on_a_multiclass_table_exits_2_before_the_baselines(real_tables, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "tabular", "--data", str(real_tables / "penguins.csv"), "--set", "data.target=species",
                 "--set", 'compile.metrics=["accuracy", "auc"]', "--out", str(out)]) == 2
    assert "metric 'auc' does not work on this multiclass problem" in capsys.readouterr().err
    assert not out.exists()


def test_the_small_table_batch_size_is_logged_once(caplog):
    task = kmodels.registry.tasks.get("tabular")(kmodels.load_spec("tabular"))
    with caplog.at_level("INFO", logger="kmodels"):
        sizes = {task.batch_size(240) for _ in range(4)}
    assert sizes == {15} and caplog.text.count("Batch size 15 for 240 training rows") == 1


def test_dataframes_in_and_out(real_tables, tmp_path):
    """A notebook user's habit: run on a DataFrame, predict a DataFrame, get a DataFrame."""
    frame = pd.read_csv(real_tables / "penguins.csv")
    result = kmodels.run("tabular", data=frame, overrides={"data.target": "species", "train.epochs": 3,
                                                           "train.verbose": 0}, out=tmp_path / "run")
    assert result.metrics["problem"]["kind"] == "multiclass"
    spec = kmodels.load_spec(result.run_dir / "spec.toml")
    assert pd.read_csv(spec["data"]["path"]).shape == frame.shape  # the spec names real data: repeatable
    rows = frame.dropna().drop(columns=["species"]).head(4)
    pred = kmodels.predict(result.run_dir, rows)
    assert len(pred) == 4 and pred["source"].eq("<DataFrame 0>").all() and "probability_Gentoo" in pred
    assert kmodels.evaluate(result.run_dir)["accuracy"] == result.metrics["models"]["keras"]["accuracy"]


def test_label_smoothing_on_sparse_multiclass_labels_stops_before_the_run_exists(real_tables, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(kmodels.ConfigError, match="sparse labels cannot be smoothed"):
        kmodels.run("tabular", data=real_tables / "wine.csv", out=out,
                    overrides={"data.target": "cultivar", "compile.label_smoothing": 0.1})
    assert not out.exists()


def test_evaluate_says_when_the_data_changed_since_the_run(real_tables, tmp_path, caplog):
    csv = tmp_path / "wine.csv"
    csv.write_bytes((real_tables / "wine.csv").read_bytes())
    result = kmodels.run("tabular", data=csv, overrides={"data.target": "cultivar", "train.epochs": 2,
                                                         "evaluate.importance_repeats": 0}, out=tmp_path / "run")
    assert len(result.metrics["data_fingerprint"]) == 16
    assert kmodels.evaluate(result.run_dir)["data_changed"] is False
    frame = pd.read_csv(csv)
    frame.loc[::3, "cultivar"] = frame["cultivar"].iloc[0]  # labels edited after training
    frame.to_csv(csv, index=False)
    with caplog.at_level("WARNING", logger="kmodels"):
        assert kmodels.evaluate(result.run_dir)["data_changed"] is True
    assert "scores on other data, not a reproduction" in caplog.text


def test_rows_the_model_cannot_read_are_refused_unless_allowed(penguins_run, real_tables, tmp_path, capsys):
    rows = pd.read_csv(real_tables / "penguins.csv").drop(columns=["species"]).head(5).astype(object)
    rows.loc[1, "bill_length_mm"] = "long"  # text in a numeric column
    rows.loc[len(rows)] = [None] * rows.shape[1]  # a row with every feature missing
    csv = tmp_path / "bad.csv"
    rows.to_csv(csv, index=False)
    with pytest.raises(kmodels.DataError, match=r"1 value\(s\) that are not numbers.*bill_length_mm: 1 \(e.g. 'long' "
                       r"at row 1\).*1 row\(s\) with every feature missing \(e.g. row 5\).*--allow-missing"):
        kmodels.predict(penguins_run.run_dir, csv)
    assert main(["predict", str(penguins_run.run_dir), str(csv)]) == 2
    assert main(["predict", str(penguins_run.run_dir), str(csv), "--allow-missing"]) == 0
    out = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert len(out) == 6 and set(out["label"]) <= {"Adelie", "Chinstrap", "Gentoo"}
    with pytest.raises(kmodels.DataError, match=r"missing column\(s\) \['island'\]"):
        kmodels.predict(penguins_run.run_dir, rows.drop(columns=["island"]).head(2))


def test_evaluate_scores_new_labelled_data(penguins_run, real_tables, tmp_path, capsys):
    frame = pd.read_csv(real_tables / "penguins.csv")
    new = tmp_path / "new.csv"
    frame.dropna().sample(60, random_state=1).to_csv(new, index=False)
    metrics = kmodels.evaluate(penguins_run.run_dir, data=new)
    assert metrics["rows"] == 60 and metrics["data"] == str(new) and 0.7 < metrics["accuracy"] <= 1.0
    assert main(["evaluate", str(penguins_run.run_dir), "--data", str(new)]) == 0
    assert "| keras" in capsys.readouterr().out
    frame.drop(columns=["species"]).head(5).to_csv(tmp_path / "unlabelled.csv", index=False)
    assert main(["evaluate", str(penguins_run.run_dir), "--data", str(tmp_path / "unlabelled.csv")]) == 2
    assert "no target column 'species'" in capsys.readouterr().err


def test_repeated_rows_are_kept_and_the_eda_says_how_to_drop_copies(tmp_path):
    """A table of a few discrete columns repeats rows: different people with the same answers. The `tabular`
    default keeps every one (how often a row repeats is the signal) and says how to drop copies of one record."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"age_band": rng.integers(0, 4, 400), "smoker": rng.choice(["no", "yes"], 400)})
    frame["ill"] = np.where(rng.random(400) < 0.2 + 0.15 * frame["age_band"], "yes", "no")
    repeated = int(frame.duplicated().sum())
    assert repeated > 350  # 16 distinct rows
    csv = tmp_path / "survey.csv"
    frame.to_csv(csv, index=False)

    def prepared_and_notes(overrides):
        task = kmodels.registry.tasks.get("tabular")(kmodels.load_spec("tabular", overrides, data=csv))
        notes = task.analyse(task.load_data())["eda.json"]["notes"]
        return task.prepare(), [n for n in notes if "repeat an earlier row" in n]

    kept, notes = prepared_and_notes({"data.target": "ill"})
    assert kept.cleaning["rows_out"] == sum(len(d.y) for d in kept.data.values()) == 400
    assert len(notes) == 1 and f"{repeated:,} rows" in notes[0] and 'name = "drop_duplicates"' in notes[0]
    steps = [{"name": "drop_duplicates"}, *kmodels.load_spec("tabular").to_dict()["preprocess"]]
    dropped, notes = prepared_and_notes({"data.target": "ill", "preprocess": steps})
    assert dropped.cleaning["rows_out"] == 400 - repeated and notes == []
