from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from kmodels_tabular.bank_data import COLUMNS, generate_bank_frame, write_bank_csv

from kmodels import registry
from kmodels.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def frame():
    return registry.datasets.get("bank_synthetic")(rows=20000, seed=1).frame


def test_synthetic_has_the_published_schema_and_quirks(frame):
    assert tuple(frame.columns) == COLUMNS
    dob = frame["CustomerDOB"].dropna()
    assert 0.05 < (dob == "1/1/1800").mean() < 0.07
    four = dob.str.match(r"^\d{1,2}/\d{1,2}/\d{4}$") & (dob != "1/1/1800")
    assert 0.05 < four.mean() < 0.15 and dob.str.match(r"^\d{1,2}/\d{1,2}/\d{2}$").mean() > 0.7
    for col in ["CustomerDOB", "CustGender", "CustLocation", "CustAccountBalance"]:
        assert frame[col].isna().sum() > 0, col
    assert (frame["CustGender"] == "T").sum() >= 1
    assert 0.68 < (frame["CustGender"] == "M").sum() / frame["CustGender"].isin(["M", "F"]).sum() < 0.76
    assert frame.duplicated().sum() > 0 and frame["CustomerID"].duplicated().sum() > 0
    assert (frame["TransactionTime"] < 100000).any()  # unpadded HHMMSS
    assert (frame["TransactionAmount (INR)"] == 0).any() and (frame["CustAccountBalance"] == 0).any()
    assert frame["CustLocation"].nunique() > 500


def test_synthetic_is_deterministic():
    pd.testing.assert_frame_equal(generate_bank_frame(500, 3), generate_bank_frame(500, 3))
    assert not generate_bank_frame(500, 3).equals(generate_bank_frame(500, 4))


def test_loader_reads_published_file_and_reports_garbage(tmp_path):
    path = write_bank_csv(tmp_path / "bank.csv", rows=200)
    text = path.read_text().splitlines()
    cells = text[1].split(",")
    cells[5] = "abc"  # CustAccountBalance
    text[1] = ",".join(cells)
    path.write_text("\n".join(text) + "\n")
    table = registry.datasets.get("bank_transactions")(path=str(path))
    assert table.frame.shape == (200, 9)
    assert table.frame["CustomerID"].str.startswith("C").all()
    assert pd.api.types.is_float_dtype(table.frame["CustAccountBalance"])
    assert any("CustAccountBalance: 1 non-numeric value(s) ('abc')" in n for n in table.notes)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (",".join(COLUMNS).encode() + b"\n", "header but no data rows"),
        (b"a;b;c\n1;2;3\n", "looks ';'-delimited"),
        (b"x,y\n\xff\xfe,1\n", "not valid utf-8"),
        (b"x,y\n" + b"a,1\n" * 40 + "caf\xe9,2\n".encode("latin-1"), r"offset 167, line 42: 0xe9.*data.encoding=latin-1"),
        (b"x;y;z\n1,5;2;3\n4;5,5;6\n7;8;9,1,2\n", r"line 4, saw 3\. It looks ';'-delimited.*data\.sep=\";\""),
        (b"x\ty\n1\t2\n", r"It looks '\\t'-delimited.*data\.sep=\"\\t\""),
        (b"x,y,x\n1,2,3\n", r"duplicated header names: 'x' in columns 1, 3"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        registry.datasets.get("csv")(path=str(path), target="y")
    assert path.read_bytes() == content  # never modified


def test_generic_csv_errors(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("x,y\n1,a\n2,a\n")
    with pytest.raises(DataError, match=r"target 'y' has only one class"):
        registry.datasets.get("csv")(path=str(path), target="y")
    with pytest.raises(DataError, match=r"target column 'z' not found.*--set data.target=COLUMN"):
        registry.datasets.get("csv")(path=str(path), target="z")


def test_generic_csv_drops_identifier_columns(tmp_path):
    path = tmp_path / "t.csv"
    rows = "\n".join(f"id{i},{i % 7},{'ab'[i % 2]}" for i in range(40))
    path.write_text("row_id,x,y\n" + rows + "\n")
    table = registry.datasets.get("csv")(path=str(path), target="y")
    assert "row_id" not in table.frame.columns and any("row_id" in n for n in table.notes)


def test_generic_csv_drops_integer_id_columns_but_keeps_distinct_measurements(tmp_path):
    """Churn-style tables: RowNumber (1..n, shuffled) and CustomerId are identifiers, Balance is a feature."""
    rng = np.random.default_rng(0)
    n = 60
    frame = pd.DataFrame({"RowNumber": rng.permutation(n) + 1, "CustomerId": 15_600_000 + rng.choice(99_999, n, replace=False),
                          "Balance": rng.choice(10**7, n, replace=False), "amount_paid": rng.choice(10**5, n, replace=False),
                          "Age": rng.integers(18, 90, n), "y": ["a", "b"] * (n // 2)})
    path = tmp_path / "churn.csv"
    frame.to_csv(path, index=False)
    table = registry.datasets.get("csv")(path=str(path), target="y")
    assert list(table.frame.columns) == ["Balance", "amount_paid", "Age", "y"]
    assert any("RowNumber" in n and "CustomerId" in n for n in table.notes)


def test_missing_target_in_generic_path_is_config_error(tmp_path):
    import kmodels

    path = tmp_path / "t.csv"
    path.write_text("x,y\n1,a\n2,b\n")
    with pytest.raises(ConfigError, match="Missing required key 'target'"):
        kmodels.load_spec("bank_gender", data=path)
