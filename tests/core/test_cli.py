from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import kmodels
from kmodels.cli import main


def test_info_json(capsys, backend):
    assert main(["info", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["backend"] == backend and data["versions"]["keras"] and data["devices"]


def test_list_kinds_and_patterns(capsys):
    assert main(["list", "models", "toy_*"]) == 0
    out = capsys.readouterr().out
    assert "toy_mlp" in out and "A one-hidden-layer MLP for tests." in out
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "callbacks:" in out and "early_stopping" in out and "tasks:" in out
    assert main(["list", "*stopping*"]) == 0
    assert "early_stopping" in capsys.readouterr().out


def test_list_unknown_kind_is_usage_error(capsys):
    assert main(["list", "modles", "x*"]) == 2
    assert "Did you mean 'models'" in capsys.readouterr().err
    assert main(["list", "modelz"]) == 2  # a typo of a kind that matches no name is not an empty success
    assert "Did you mean the kind 'models'" in capsys.readouterr().err


def test_global_flags_after_the_command_and_version(capsys):
    assert main(["list", "models", "toy_*", "-q"]) == 0
    assert "toy_mlp" in capsys.readouterr().out
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("kmodels ")


def test_unwritable_out_is_a_usage_error_naming_the_path(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["run", "toy_task", "--out", str(blocker / "run")]) == 2
    err = capsys.readouterr().err
    assert str(blocker) in err and "Traceback" not in err


def test_show_task_prints_toml_that_reloads(capsys, tmp_path):
    import kmodels

    assert main(["show", "toy_task", "--set", "train.epochs=4"]) == 0
    text = capsys.readouterr().out
    path = tmp_path / "s.toml"
    path.write_text(text)
    assert kmodels.load_spec(path)["train"]["epochs"] == 4


def test_show_item_signature(capsys):
    assert main(["show", "early_stopping"]) == 0
    out = capsys.readouterr().out
    assert "callback early_stopping" in out and "patience" in out


def test_show_item_with_set_checks_and_applies_the_values(capsys):
    assert main(["show", "toy_mlp", "--set", "units=3"]) == 0
    out = capsys.readouterr().out
    assert "units: int = 3  (--set; default 8)" in out
    assert "built: 19 parameters, input (None, 4), output (None, 1)" in out  # 4*3+3 + 3*1+1
    assert main(["show", "toy_mlp", "--set", "unitz=3"]) == 2
    assert "Did you mean 'units'" in capsys.readouterr().err


def test_run_with_typo_is_usage_error_without_traceback(capsys):
    assert main(["run", "toy_tsk"]) == 2
    err = capsys.readouterr().err
    assert "Unknown task 'toy_tsk'. Did you mean 'toy_task'" in err and "Traceback" not in err


def test_run_bad_override_is_usage_error(capsys, tmp_path):
    assert main(["run", "toy_task", "--set", "train.epochs=x", "--out", str(tmp_path / "r")]) == 2
    assert "expected int" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_run_and_predict_and_evaluate(capsys, tmp_path, toy_run):
    import pandas as pd

    from kmodels import registry

    table = registry.datasets.get("toy_blobs")(rows=6, seed=3)
    csv = tmp_path / "rows.csv"
    table.frame.drop(columns=["label"]).to_csv(csv, index=False)
    out = tmp_path / "pred.csv"
    assert main(["predict", str(toy_run.run_dir), str(csv), "--output", str(out)]) == 0
    pred = pd.read_csv(out)
    assert list(pred.columns) == ["source", "row", "label", "probability", "probability_a", "probability_b"] and len(pred) == 6
    assert set(pred["label"]) <= {"a", "b"}
    assert main(["predict", str(toy_run.run_dir), str(csv), "--output", str(out)]) == 2  # a usage error, as documented
    assert "does not overwrite" in capsys.readouterr().err
    assert main(["evaluate", str(toy_run.run_dir)]) == 0
    assert "| keras" in capsys.readouterr().out


def test_help_exits_zero(capsys):
    assert main(["--help"]) == 0
    assert "run" in capsys.readouterr().out
    assert main(["frobnicate"]) == 2


@pytest.mark.subprocess
def test_cli_subprocess_smoke(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # the CLI's own default
    env["KMODELS_CACHE_DIR"] = str(tmp_path / "cache")

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "kmodels.cli", *args], capture_output=True, text=True,
                              env=env, timeout=300)

    info = cli("info")
    assert info.returncode == 0 and "backend" in info.stdout and "keras" in info.stdout
    ok = cli("list", "callbacks")
    assert ok.returncode == 0 and "early_stopping" in ok.stdout
    assert (tmp_path / "cache" / "cli-catalog.json").is_file()  # written by the first `list`
    show = cli("show", "bank_gender")  # answered from the catalog
    assert show.returncode == 0 and show.stdout == kmodels.load_spec("bank_gender").to_toml()
    quick = subprocess.run([sys.executable, "-c", "import sys; from kmodels.cli import main; main(['list']); "
                            "main(['show', 'early_stopping']); print('keras imported:', 'keras' in sys.modules)"],
                           capture_output=True, text=True, env=env, timeout=300)
    assert quick.returncode == 0 and "keras imported: False" in quick.stdout, quick.stderr[-2000:]
    assert "simple_cnn" in quick.stdout and "alias of simple_cnn" in quick.stdout and "  patience: " in quick.stdout
    bad = cli("run", "no_such_task")
    assert bad.returncode == 2 and "Unknown task 'no_such_task'" in bad.stderr and "Traceback" not in bad.stderr
    ran = cli("run", "bank_gender", "--set", "data.rows=1500", "--set", "train.epochs=2", "--set",
              "baselines.sklearn_max_iter=20", "--out", str(tmp_path / "run"))
    assert ran.returncode == 0 and "| keras" in ran.stdout and "Epoch 2/2" in ran.stderr, ran.stderr[-3000:]
    for proc in (info, bad, ran):  # Keras, TensorFlow, XLA: no native log line reaches stderr without --debug
        assert not [line for line in proc.stderr.splitlines() if "absl" in line or "oneDNN" in line
                    or "xla" in line.lower() or line.startswith(("I0000", "W0000", "E0000"))], proc.stderr


def test_catalog_is_refused_when_a_plugin_file_changes(tmp_path, monkeypatch):
    from kmodels import _index

    monkeypatch.setenv("KMODELS_CACHE_DIR", str(tmp_path))
    plugin = tmp_path / "plugin.py"
    plugin.write_text("x = 1\n")
    real = _index._package_files
    monkeypatch.setattr(_index, "_package_files", lambda module: [*real(module), plugin])
    monkeypatch.setattr(_index, "usable", lambda: True)  # this test process has registered items
    assert _index.read() is None
    _index.write()
    catalog = _index.read()
    assert catalog is not None and "early_stopping" in catalog["items"]["callbacks"]
    assert catalog["specs"]["bank_gender"] == kmodels.load_spec("bank_gender").to_toml()
    plugin.write_text("x = 22\n")  # edited: another size
    assert _index.read() is None
    (tmp_path / "cli-catalog.json").write_text("{not json")
    assert _index.read() is None
