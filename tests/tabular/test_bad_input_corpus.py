"""A bad-input corpus through the CLI, in process: every case exits 2 with a message, no traceback,
no run directory, and every file of the corpus byte-identical afterwards."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

from kmodels.cli import main


def _rows(n: int, labels=("a", "b")) -> str:
    return "".join(f"{i % 7},{i * 0.5},{labels[i % len(labels)]}\n" for i in range(n))


GOOD_HEADER = "x,z,y\n"
CASES = {  # file name: (content, a phrase the message must hold)
    "empty.csv": (b"", "is empty"),
    "header_only.csv": (GOOD_HEADER.encode(), "header but no data rows"),
    "semicolon.csv": ((GOOD_HEADER + _rows(40)).replace(",", ";").encode(), "data.sep="),
    "semicolon_decimal_commas.csv": (b"x;z;y\n" + b"1,5;2;a\n3;4,5;b\n" * 20 + b"5;6;a;7,1\n", "data.sep="),
    "latin1.csv": ((GOOD_HEADER + _rows(40)).encode() + "caf\xe9,1,a\n".encode("latin-1"), "first bad byte at offset"),
    "duplicated_header.csv": (("x,y,x\n" + _rows(40)).encode(), "duplicated header names"),
    "three_rows.csv": ((GOOD_HEADER + _rows(3)).encode(), "too few to train"),
    "one_class.csv": ((GOOD_HEADER + _rows(40, labels=("a",))).encode(), "only one class"),
    "singleton_class.csv": ((GOOD_HEADER + _rows(40) + "1,1,c\n").encode(), "fewer than 2 rows"),
    "no_target.csv": (b"x,z\n" + b"1,2\n" * 30, "target column 'y' not found"),
    "all_missing_target.csv": ((GOOD_HEADER + "".join(f"{i},{i},\n" for i in range(30))).encode(), "no values"),
}


def _digest(root) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    for name, (content, _) in CASES.items():
        (root / name).write_bytes(content)
    os.mkfifo(root / "fifo.csv")
    (root / "a_folder.csv").mkdir()
    return root


@pytest.mark.parametrize("name", [*CASES, "fifo.csv", "a_folder.csv", "missing.csv"])
def test_bad_csv_exits_2_with_the_fix_and_touches_nothing(corpus, tmp_path, capsys, name):
    before = _digest(corpus)
    out = tmp_path / "run"
    code = main(["run", "tabular", "--data", str(corpus / name), "--set", "data.target=y", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and "kmodels: error: " in err
    if name in CASES:
        assert CASES[name][1] in err, err
    assert not out.exists()
    assert _digest(corpus) == before


def test_corpus_cases_are_really_bad_and_a_good_file_runs(tmp_path, capsys):
    """The control: the same shape of file, well formed, trains (so the cases above fail for their fault)."""
    path = tmp_path / "good.csv"
    rng = np.random.default_rng(0)
    rows = "".join(f"{a:.3f},{b:.3f},{'ab'[int(a + b > 0)]}\n" for a, b in rng.normal(size=(60, 2)))
    path.write_text(GOOD_HEADER + rows)
    out = tmp_path / "run"
    assert main(["run", "tabular", "--data", str(path), "--set", "data.target=y", "--set", "train.epochs=2",
                 "--out", str(out)]) == 0
    assert (out / "metrics.json").is_file()
