"""The README's "Write your own plugin" example, installed as a real distribution and used by name."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

import kmodels
from kmodels import registry

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_blocks() -> tuple[str, str]:
    section = README.read_text(encoding="utf-8").split("## Write your own plugin", 1)[1].split("\n## ", 1)[0]
    python = re.search(r"```python\n(# my_models/__init__.py\n.*?)```", section, re.S).group(1)
    toml = re.search(r"```toml\n(# my_models/pyproject.toml\n.*?)```", section, re.S).group(1)
    return python, toml


@pytest.fixture
def installed_plugin(tmp_path, monkeypatch):
    """What `pip install my_models` leaves in site-packages: the package and a dist-info with the entry point."""
    code, toml = _readme_blocks()
    entry = re.search(r'^(\w+) = "(\w+)"$', toml, re.M)
    site = tmp_path / "site-packages"
    (site / "my_models").mkdir(parents=True)
    (site / "my_models" / "__init__.py").write_text(code)
    info = site / "my_models-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-models\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[kmodels.plugins]\n{entry.group(1)} = {entry.group(2)}\n")
    monkeypatch.syspath_prepend(str(site))
    registry.plugins.reset()
    yield
    registry.models.unregister("tiny_mlp")
    sys.modules.pop("my_models", None)
    registry.plugins.reset()


def test_readme_plugin_is_discovered_built_and_used_in_a_run(installed_plugin, tmp_path):
    assert "tiny_mlp" in kmodels.list_models("tiny_*")  # found through the entry point, nothing patched
    assert "my_models" in registry.plugins.names
    assert kmodels.build("tiny_mlp").count_params() == 161  # the docstring's example
    result = kmodels.run("toy_task", overrides={"model.name": "tiny_mlp", "model.units": 4}, out=tmp_path / "run")
    assert kmodels.load_spec(result.run_dir / "spec.toml")["model"] == {"name": "tiny_mlp", "units": 4}
    assert result.metrics["models"]["keras"]["balanced_accuracy"] > 0.6
