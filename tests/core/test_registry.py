from __future__ import annotations

from importlib import metadata

import pytest

from kmodels import registry
from kmodels.errors import ConfigError, DuplicateNameError, NotRegisteredError


@pytest.fixture
def reg():
    return registry.Registry("widgets")


def test_register_as_decorator_and_call(reg):
    @reg.register("alpha")
    def alpha(size: int = 3) -> int:
        """Make an alpha."""
        return size

    def beta(x: float = 1.0):
        return x

    reg.register("beta", beta)
    assert reg.get("alpha") is alpha
    assert reg.get("beta") is beta
    assert reg.register()(lambda: 1) is not None  # name from __name__ ("<lambda>")


def test_list_is_sorted_and_globbed(reg):
    for name in ["dog_cat_cnn", "bank_mlp", "cat_cnn_small", "z"]:
        reg.register(name, lambda name=name: name)
    assert reg.list() == ["bank_mlp", "cat_cnn_small", "dog_cat_cnn", "z"]
    assert reg.list("*cnn*") == ["cat_cnn_small", "dog_cat_cnn"]
    assert reg.list("nothing*") == []


def test_duplicate_name_names_both_places(reg):
    def first():
        pass

    def second():
        pass

    reg.register("x", first)
    reg.register("x", first)  # the same object again is harmless
    with pytest.raises(DuplicateNameError) as err:
        reg.register("x", second)
    assert "first" in str(err.value) and "second" in str(err.value) and "replace=True" in str(err.value)
    reg.register("x", second, replace=True)  # a notebook cell run again
    assert reg.get("x") is second


def test_unknown_name_suggests_and_says_how_to_list(reg):
    reg.register("dog_cat_cnn", lambda: 1)
    with pytest.raises(NotRegisteredError) as err:
        reg.get("dog_cat_cn")
    msg = str(err.value)
    assert "'dog_cat_cnn'" in msg and "kmodels list widgets" in msg
    assert isinstance(err.value, ValueError)


def test_describe_gives_signature_defaults_and_summary():
    info = registry.models.describe("toy_mlp")
    assert info.summary == "A one-hidden-layer MLP for tests."
    params = {p.name: p for p in info.params}
    assert params["units"].default == 8 and params["units"].type == "int"
    assert params["input_shape"].type == "tuple[int, ...]"
    assert "toy_mlp(" in info.signature and "tests._items" in info.source


def test_validate_rejects_unknown_key_wrong_type_and_missing_value():
    with pytest.raises(ConfigError, match=r"Unknown key 'unit'.*Did you mean 'units'.*Allowed keys: input_shape, units, dropout"):
        registry.models.validate({"name": "toy_mlp", "unit": 3})
    with pytest.raises(ConfigError, match=r"'units'.*received 'many'.*expected int"):
        registry.models.validate({"name": "toy_mlp", "units": "many"})
    with pytest.raises(ConfigError, match=r"Missing required key 'filepath'"):
        registry.callbacks.validate({"name": "model_checkpoint"})
    with pytest.raises(ConfigError, match=r"'patience'.*expected int \| float"):
        registry.callbacks.validate({"name": "early_stopping", "patience": "3"})


def test_validate_coerces_toml_lists_and_ints():
    kwargs = registry.models.validate({"name": "toy_mlp", "input_shape": [7], "dropout": 0})
    assert kwargs == {"input_shape": (7,), "dropout": 0.0}


def test_keras_callbacks_registered_snake_case():
    names = registry.callbacks.list()
    for name in ["early_stopping", "reduce_lr_on_plateau", "model_checkpoint", "backup_and_restore",
                 "csv_logger", "terminate_on_nan", "tensorboard"]:
        assert name in names


def _fake_entry_points(monkeypatch, eps):
    monkeypatch.setattr(registry.plugins, "entry_points", lambda: eps)
    registry.plugins.reset()
    monkeypatch.setattr(registry.plugins, "entry_points", lambda: eps)


def test_entry_point_plugin_is_discovered_and_broken_one_reported(monkeypatch, tmp_path, caplog):
    pkg = tmp_path / "good_plugin_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "from kmodels import registry\n"
        "@registry.models.register('plugin_model_from_ep')\n"
        "def plugin_model_from_ep(units: int = 2):\n"
        "    '''A model from a plugin.'''\n"
        "    return units\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    eps = [
        metadata.EntryPoint("broken", "no_such_module_for_kmodels_test", registry.ENTRY_POINT_GROUP),
        metadata.EntryPoint("good", "good_plugin_pkg", registry.ENTRY_POINT_GROUP),
    ]
    _fake_entry_points(monkeypatch, eps)
    try:
        with caplog.at_level("WARNING", logger="kmodels"):
            assert "plugin_model_from_ep" in registry.models.list()
        assert "broken" in registry.plugins.errors
        assert "ModuleNotFoundError" in registry.plugins.errors["broken"]
        assert "broken" in caplog.text
        with pytest.raises(NotRegisteredError, match="Plugins that failed to load: broken"):
            registry.models.get("nope")
    finally:
        registry.models.unregister("plugin_model_from_ep")
        registry.plugins.reset()


def test_plugins_load_once(monkeypatch):
    calls = []
    _fake_entry_points(monkeypatch, calls)
    monkeypatch.setattr(registry.plugins, "entry_points", lambda: calls.append(1) or [])
    registry.models.list()
    registry.models.list()
    registry.tasks.list()
    assert calls == [1]
    registry.plugins.reset()


def test_aliases_resolve_to_the_new_name_and_are_listed_apart():
    reg = registry.Registry("widgets")
    reg.register("simple", lambda size=1: ("simple", size), aliases=("old_simple",))
    assert reg.get("old_simple") is reg.get("simple") and "old_simple" in reg
    assert reg.list() == ["simple"] and reg.aliases() == {"old_simple": "simple"}
    assert reg.canonical("old_simple") == "simple" and reg.canonical("simple") == "simple"
    assert reg.create({"name": "old_simple", "size": 3}) == ("simple", 3)
    with pytest.raises(DuplicateNameError, match="already an alias of 'simple'"):
        reg.register("old_simple", lambda: 2)
    with pytest.raises(DuplicateNameError, match="alias 'simple' of 'other'"):
        reg.register("other", lambda: 3, aliases=("simple",))
    reg.unregister("simple")
    assert reg.aliases() == {} and "old_simple" not in reg


def test_the_renamed_models_still_build_under_their_first_names():
    import kmodels

    for old, new in {"bank_gender_mlp": "mlp", "dog_cat_cnn": "simple_cnn", "dog_cat_xception": "mini_xception"}.items():
        assert kmodels.registry.models.aliases()[old] == new and old not in kmodels.list_models()
        assert kmodels.registry.models.get(old) is kmodels.registry.models.get(new)
    assert kmodels.build("dog_cat_cnn", input_shape=(32, 32, 3)).name == "simple_cnn"
