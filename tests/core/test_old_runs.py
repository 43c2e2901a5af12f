"""A run directory made by kmodels before the 2026-12 changes (commit 287f5dd: no feature columns in its
state, no data fingerprint or threshold source in its metrics, the model under its first name
`bank_gender_mlp`) still predicts, evaluates, explains and serves."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

import kmodels
from kmodels.cli import main

OLD = Path(__file__).resolve().parents[1] / "fixtures" / "runs" / "tabular_v0_1"


def _copy(tmp_path):
    dest = tmp_path / "old"
    shutil.copytree(OLD, dest)  # never touch the fixture itself
    return dest


def test_an_old_run_predicts_and_evaluates_as_it_did(tmp_path):
    run = _copy(tmp_path)
    old_metrics = json.loads((run / "metrics.json").read_text())
    assert "data_fingerprint" not in old_metrics and "bank_gender_mlp" in (run / "spec.toml").read_text()
    rows = kmodels.registry.datasets.get("bank_synthetic")(rows=30, seed=5).frame.drop(columns=["CustGender"])
    pred = kmodels.predict(run, rows)
    assert len(pred) == 30 and set(pred["label"]) <= {"M", "F"}
    np.testing.assert_allclose(pred["probability_M"] + pred["probability_F"], 1.0, rtol=1e-6)
    again = kmodels.evaluate(run)
    assert again["data_changed"] is None  # nothing saved to compare with
    assert again["accuracy"] == old_metrics["models"]["keras"]["accuracy"]
    assert main(["evaluate", str(run)]) == 0


def test_an_old_run_loads_as_an_estimator(tmp_path):
    clf = kmodels.estimator.load(_copy(tmp_path))
    rows = kmodels.registry.datasets.get("bank_synthetic")(rows=5, seed=6).frame.drop(columns=["CustGender"])
    assert clf.predict_proba(rows).shape == (5, 2) and list(clf.classes_) == ["M", "F"]
