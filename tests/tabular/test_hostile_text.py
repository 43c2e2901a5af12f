"""Data cannot inject markup into reports or formulas into prediction CSVs."""

from __future__ import annotations

import numpy as np
import pandas as pd

import kmodels
from kmodels.cli import main
from kmodels.evaluation import format_table, markdown_text, spreadsheet_safe


def test_markdown_cells_cannot_break_a_table():
    table = format_table([{"a|b\n<script>x</script>": "v|w\r\nz"}], ["a|b\n<script>x</script>"])
    lines = table.splitlines()
    assert len(lines) == 3 and "<script>" not in table
    assert all(line.count(" | ") == lines[0].count(" | ") for line in lines[::2])  # one column, escaped pipes
    assert markdown_text("`code`") == "\\`code\\`"


def test_formula_cells_are_neutralized_numbers_kept():
    frame = pd.DataFrame({"path": ["=1+1", "+x", "-y", "@z", "\tq", "ok.jpg"], "p": [-0.5, 0.1, 0.2, 0.3, 0.4, 0.5]})
    safe = spreadsheet_safe(frame)
    assert safe["path"].tolist() == ["'=1+1", "'+x", "'-y", "'@z", "'\tq", "ok.jpg"]
    assert safe["p"].tolist() == frame["p"].tolist() and frame["path"][0] == "=1+1"  # input untouched


def test_hostile_headers_and_cells_through_a_run(tmp_path, capsys):
    rng = np.random.default_rng(0)
    n = 80
    y = rng.integers(0, 2, n)
    frame = pd.DataFrame({"x|y<b>bold</b>": rng.normal(size=n) + y, "note\nline": rng.choice(["a|b", "<i>c</i>"], n),
                          "label": np.where(y == 1, "=yes", "no")})
    path = tmp_path / "hostile.csv"
    frame.to_csv(path, index=False)
    result = kmodels.run("tabular", data=path, overrides={"data.target": "label", "train.epochs": 2, "train.verbose": 0},
                         out=tmp_path / "run")
    eda = (result.run_dir / "eda.md").read_text()
    report = (result.run_dir / "report.md").read_text()
    for text in (eda, report):
        assert "<b>" not in text and "<i>" not in text
    rows = tmp_path / "rows.csv"
    frame.drop(columns=["label"]).head(3).to_csv(rows, index=False)
    out = tmp_path / "pred.csv"
    assert main(["predict", str(result.run_dir), str(rows), "--output", str(out)]) == 0
    labels = pd.read_csv(out)["label"].tolist()
    assert all(not str(v).startswith("=") for v in labels) and set(labels) <= {"'=yes", "no"}


def test_data_paths_that_are_missing_or_folders_say_so(tmp_path, capsys):
    assert main(["run", "bank_gender", "--data", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "r1")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["run", "bank_gender", "--data", str(tmp_path), "--out", str(tmp_path / "r2")]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()
