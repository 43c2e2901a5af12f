"""Multi-label end to end: label sets in a table column (`"a|c"`) or an image CSV (`path,labels`), independent
sigmoid units, micro/macro F1 against a one-vs-rest baseline, a threshold per label, predictions as label sets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import kmodels
from kmodels.errors import ConfigError, DataError
from kmodels.problems import Problem, infer_problem

SMALL = {"train.verbose": 0, "baselines.gradient_boosting": False, "baselines.sklearn_mlp": False}


def _digits() -> pd.DataFrame:
    """scikit-learn's digits as a table whose target names what each digit is: even, over 4, prime ("none": 1)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    frame = pd.DataFrame(digits.data, columns=[f"p{i}" for i in range(64)])
    names = [[n for n, ok in (("even", k % 2 == 0), ("over 4", k > 4), ("prime", k in (2, 3, 5, 7))) if ok]
             for k in digits.target]
    frame["labels"] = ["|".join(n) or "none" for n in names]
    return frame


@pytest.fixture(scope="session")
def multilabel_run(tmp_path_factory):
    """scikit-learn's `make_multilabel_classification` as a CSV with `;`-joined tags, run from the CLI."""
    from sklearn.datasets import make_multilabel_classification

    from kmodels.cli import main

    root = tmp_path_factory.mktemp("multilabel")
    x, y = make_multilabel_classification(n_samples=700, n_features=10, n_classes=4, n_labels=2, random_state=0)
    names = np.array(["red", "green", "blue", "gold"])
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(10)])
    frame["tags"] = [";".join(names[row.astype(bool)]) or "plain" for row in y]
    frame.to_csv(root / "tags.csv", index=False)
    args = ["-q", "run", "tabular", "--data", str(root / "tags.csv"), "--out", str(root / "run"),
            "--set", "data.target=tags", "--set", "data.label_sep=;", "--set", 'evaluate.threshold="auto"']
    for key, value in SMALL.items():
        args += ["--set", f"{key}={str(value).lower()}"]
    assert main(args) == 0
    return root / "run", frame


def test_the_problem_encodes_decodes_and_writes_label_sets():
    p = Problem("multilabel", ("a", "b", "c"))
    values = pd.Series(["a|c", " b ", None, "a|z", ""])
    assert p.valid(values).tolist() == [True, True, False, False, False]  # missing, unknown and empty: invalid
    assert p.encode(values[:2]).tolist() == [[1, 0, 1], [0, 1, 0]]
    output = np.array([[0.9, 0.4, 0.6], [0.1, 0.2, 0.3]])
    assert p.decode(output, (0.5, 0.3, 0.7)).tolist() == [[1, 1, 0], [0, 0, 0]]
    frame = p.prediction_frame(output, (0.5, 0.3, 0.7))
    assert frame["label"].tolist() == ["a|b", ""] and list(frame.columns[1:]) == ["probability_a", "probability_b",
                                                                                   "probability_c"]
    assert p.label_text(np.array([[1, 0, 1]])) == ["a|c"]
    assert p.check_threshold([0.2, 0.5, 0.9]) == (0.2, 0.5, 0.9)
    with pytest.raises(ValueError, match="3 labels"):
        p.check_threshold([0.5, 0.5])
    assert Problem.from_json(Problem("multilabel", ("x", "y"), sep=";").to_json()).sep == ";"


def test_label_sets_are_recognised_and_checked():
    assert infer_problem(pd.Series(["a|b", "a", "c"] * 5)).kind == "multilabel"
    assert infer_problem(pd.Series(["a;b", "a"] * 5), sep=";").classes == ("a", "b")
    assert infer_problem(pd.Series(["a", "b", "c"] * 5), problem="multilabel").kind == "multilabel"
    assert infer_problem(pd.Series(["a", "b", "c"] * 5)).kind == "multiclass"  # no separator: one label per row
    with pytest.raises(DataError, match="at least two"):
        infer_problem(pd.Series(["a", "a"]), problem="multilabel")
    with pytest.raises(DataError, match="not among the labels"):
        infer_problem(pd.Series(["a|b"] * 3), classes=["a", "q"], problem="multilabel")


def test_a_multilabel_table_from_the_cli_beats_one_vs_rest_and_predicts_label_sets(multilabel_run):
    import json

    run, frame = multilabel_run
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["problem"]["kind"] == "multilabel" and metrics["problem"]["sep"] == ";"
    assert metrics["primary_metric"] == "f1_micro" and len(metrics["threshold"]) == len(metrics["classes"]) == 5
    models = metrics["models"]
    assert models["keras"]["f1_micro"] >= models["logistic_regression"]["f1_micro"] - 0.01, models
    assert set(models["keras"]["per_label"]) == set(metrics["classes"])
    assert (run / "per_label.png").is_file()
    predicted = kmodels.predict(run, frame.drop(columns="tags").head(20))
    assert {f"probability_{c}" for c in metrics["classes"]} <= set(predicted.columns)
    for labels in predicted["label"]:
        assert set(filter(None, labels.split(";"))) <= set(metrics["classes"])
    again = kmodels.evaluate(run)
    assert again["f1_micro"] == pytest.approx(models["keras"]["f1_micro"])


def test_digits_as_label_sets_through_the_api(tmp_path):
    """Real shipped data: each digit is even, over 4 and/or prime; micro F1 at least one-vs-rest's - 0.01."""
    frame = _digits()
    result = kmodels.run("tabular", data=frame, overrides={"data.target": "labels", "train.folds": 1, **SMALL},
                         out=tmp_path / "run")  # one model: the bagging of label sets is the fixture's
    models = result.metrics["models"]
    assert result.metrics["problem"]["classes"] == ["even", "none", "over 4", "prime"]
    assert models["keras"]["f1_micro"] >= models["logistic_regression"]["f1_micro"] - 0.01, models
    assert models["keras"]["f1_micro"] > 0.85


def test_a_multilabel_run_exports_and_refuses_what_it_cannot_do(multilabel_run, tmp_path, backend):
    """SavedModel: the label set as one string and a probability per label, as predict gives them; ONNX (no
    string joins) and calibration are refused with the reason."""
    import tensorflow as tf

    from kmodels import graph

    run, frame = multilabel_run
    out = tmp_path / "export"
    result = kmodels.export(run, out, "saved_model")
    assert result["metadata"]["outputs"] == ["label", "probabilities"] and result["metadata"]["label_sep"] == ";"
    rows = frame.drop(columns="tags").head(30)
    loaded = tf.saved_model.load(str(out))
    kinds = {c: graph.NUMBER for c in rows.columns}
    got = loaded.serve({k: tf.constant(v) for k, v in graph.raw_inputs(rows, kinds).items()})
    want = kmodels.predict(run, rows)
    assert [v.decode() for v in got["label"].numpy()] == want["label"].tolist()
    if backend == "tensorflow":
        with pytest.raises(ConfigError, match="SavedModel"):
            kmodels.export(run, tmp_path / "m.onnx", "onnx")
    with pytest.raises(ConfigError, match="calibrate"):
        kmodels.run("tabular", data=frame, overrides={"data.target": "tags", "data.problem": "multilabel",
                                                      "evaluate.calibrate": True, **SMALL}, out=tmp_path / "cal")


def test_an_image_csv_of_label_sets(tmp_path):
    """`path,labels`: images with a red block, a blue block, both or neither ("plain"), learned as labels."""
    from PIL import Image

    rng = np.random.default_rng(0)
    rows = []
    for i in range(160):
        image = rng.uniform(90, 160, (32, 32, 3)).astype(np.uint8)
        red, blue = rng.random() < 0.5, rng.random() < 0.5
        if red:
            image[2:14, 2:14] = (220, 30, 30)
        if blue:
            image[18:30, 18:30] = (30, 30, 220)
        Image.fromarray(image).save(tmp_path / f"{i}.png")
        rows.append({"path": f"{i}.png", "labels": "|".join(n for n, on in (("red", red), ("blue", blue)) if on)
                     or "plain"})
    pd.DataFrame(rows).to_csv(tmp_path / "labels.csv", index=False)
    result = kmodels.run("image_classification", data=tmp_path / "labels.csv", out=tmp_path / "run", overrides={
        "images.image_size": [32, 32], "train.epochs": 8, "train.batch_size": 16, "train.verbose": 0,
        "model.name": "simple_cnn", "images.augment": False, "compile.schedule": "constant",
        "compile.learning_rate": 0.002, "images.tta": "none"})
    assert result.metrics["problem"]["kind"] == "multilabel"
    assert result.metrics["problem"]["classes"] == ["blue", "plain", "red"]
    models = result.metrics["models"]
    assert models["keras"]["f1_micro"] > max(0.8, models["majority"]["f1_micro"]), models  # 1.0 on both backends at 8 epochs
    predicted = kmodels.predict(result.run_dir, [tmp_path / "0.png", tmp_path / "1.png"])
    assert list(predicted.columns) == ["path", "label", "probability_blue", "probability_plain", "probability_red",
                                       "error"]


def test_the_classifier_takes_an_indicator_matrix_as_scikit_learn_does():
    """`Classifier.fit(X, Y)` with Y an (n, labels) 0/1 matrix: a multi-label run whose `predict` is such a matrix,
    columns in Y's order; `score` is scikit-learn's subset accuracy. A row without any label is refused."""
    from sklearn.datasets import make_multilabel_classification

    x, y = make_multilabel_classification(n_samples=300, n_features=8, n_classes=3, n_labels=2, allow_unlabeled=False,
                                          random_state=1)
    labels = pd.DataFrame(y, columns=["zeta", "alpha", "mid"])
    clf = kmodels.Classifier(overrides={**SMALL, "baselines.linear": False, "train.epochs": 20}, seed=0)
    clf.fit(pd.DataFrame(x), labels)
    assert clf.problem_.kind == "multilabel" and list(clf.classes_) == ["zeta", "alpha", "mid"]
    predicted = clf.predict(pd.DataFrame(x[:20]))
    assert predicted.shape == (20, 3) and set(np.unique(predicted)) <= {0, 1}
    assert clf.predict_proba(pd.DataFrame(x[:5])).shape == (5, 3)
    assert 0.0 <= clf.score(pd.DataFrame(x[:50]), y[:50]) <= 1.0
    with pytest.raises(DataError, match="no label"):
        kmodels.Classifier().fit(pd.DataFrame(x[:4]), np.array([[1, 0], [0, 0], [1, 1], [0, 1]]))
