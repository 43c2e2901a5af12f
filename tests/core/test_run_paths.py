"""A spec can name files only inside its own run directory (nothing outside is written or deleted)."""

from __future__ import annotations

import hashlib
import json

import pytest

import kmodels
from kmodels.errors import ConfigError, RunError
from kmodels.runs import RunDir
from kmodels.spec import check_run_path


def _tree_digest(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


ESCAPES = ["/tmp/elsewhere", "..", "../x.keras", "a/../../b", "~/backup", ".", "", "./", "C:/x", "spec.toml"]


@pytest.mark.parametrize("value", ESCAPES)
def test_check_run_path_refuses_paths_leaving_the_run(value):
    with pytest.raises(ConfigError, match="inside the run directory|kmodels writes itself"):
        check_run_path(value, "[[callbacks]] 'x' filepath")


@pytest.mark.parametrize("value,expected", [("backup", "backup"), ("./logs//a.csv", "logs/a.csv"),
                                            ("a/b/c.keras", "a/b/c.keras")])
def test_check_run_path_keeps_relative_paths(value, expected):
    assert check_run_path(value, "where") == expected


@pytest.mark.parametrize("override", [
    "callbacks.backup_and_restore.backup_dir={out}",
    "callbacks.backup_and_restore.backup_dir=..",
    "callbacks.model_checkpoint.filepath=../../x.keras",
    "callbacks.csv_logger.filename={out}/log.csv",
])
def test_spec_overrides_naming_outside_paths_fail_before_any_run(override, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    name = override.split(".")[1]
    extra = {"backup_and_restore": [], "model_checkpoint": [], "csv_logger": []}[name]
    spec_file = tmp_path / "s.toml"
    spec_file.write_text(kmodels.load_spec("toy_task").to_toml()
                         + f'\n[[callbacks]]\nname = "{name}"\n' + "".join(extra)
                         + ('filepath = "ok.keras"\n' if name == "model_checkpoint" else "")
                         + ('backup_dir = "backup"\n' if name == "backup_and_restore" else ""))
    before = _tree_digest(tmp_path)
    with pytest.raises(ConfigError, match="inside the run directory"):
        kmodels.run(spec_file, overrides=[override.format(out=victim)], out=tmp_path / "run")
    assert _tree_digest(tmp_path) == before
    assert not (tmp_path / "run").exists()


def test_resume_refuses_a_crafted_spec_that_escapes(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    run = tmp_path / "run"
    run.mkdir()
    spec = kmodels.load_spec("toy_task").to_toml()
    (run / "spec.toml").write_text(spec + f'\n[[callbacks]]\nname = "backup_and_restore"\nbackup_dir = "{victim}"\n')
    (run / "metadata.json").write_text(json.dumps({"status": "interrupted"}))
    with pytest.raises(ConfigError, match="inside the run directory"):
        kmodels.run(resume=run)
    assert (victim / "precious.txt").read_text() == "keep me"


def test_a_symlink_inside_the_run_cannot_lead_outside(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    rd = RunDir(tmp_path / "run")
    rd.path.mkdir()
    (rd.path / "backup").symlink_to(victim, target_is_directory=True)
    with pytest.raises(RunError, match="outside the run directory"):
        rd.inside("backup", where="[[callbacks]] 'backup_and_restore' backup_dir")
    assert rd.inside("logs/a.csv") == rd.path.resolve() / "logs" / "a.csv"


@pytest.mark.slow
def test_backup_and_csv_log_stay_inside_the_run(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f.txt").write_text("x")
    spec_file = tmp_path / "s.toml"
    spec_file.write_text(kmodels.load_spec("toy_task").to_toml()
                         + '\n[[callbacks]]\nname = "backup_and_restore"\nbackup_dir = "state/backup"\n'
                         + '\n[[callbacks]]\nname = "csv_logger"\nfilename = "logs/train.csv"\n')
    before = _tree_digest(outside)
    result = kmodels.run(spec_file, overrides={"train.epochs": 2}, out=tmp_path / "run")
    assert (result.run_dir / "logs" / "train.csv").is_file()
    assert _tree_digest(outside) == before
