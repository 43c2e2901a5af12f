from __future__ import annotations

import tomllib

import pytest

import kmodels
from kmodels import registry
from kmodels.errors import ConfigError, NotRegisteredError
from kmodels.spec import load_spec, parse_override


@pytest.mark.parametrize("task", registry.tasks.list())
def test_every_shipped_task_spec_validates_and_round_trips(task, tmp_path):
    spec = load_spec(task)
    assert spec.task == task
    text = spec.to_toml()
    path = tmp_path / "spec.toml"
    path.write_text(text)
    again = load_spec(path)
    assert again.to_dict() == spec.to_dict()
    assert tomllib.loads(text)["task"] == task


def test_defaults_are_filled_from_signatures():
    spec = load_spec("toy_task")
    assert spec["model"] == {"name": "toy_mlp", "units": 8, "dropout": 0.0}  # input_shape inferred later
    assert spec["compile"]["optimizer"] == "adam" and spec["compile"]["learning_rate"] == 0.05
    assert spec["callbacks"][0]["restore_best_weights"] is True
    assert spec["callbacks"][0]["min_delta"] == 0
    assert spec["split"] == {"test": 0.2, "val": 0.1, "stratify": True, "group": "customer"}


def test_overrides_as_dict_and_strings_are_type_checked():
    spec = load_spec("toy_task", {"train.epochs": 7, "model.units": 4})
    assert spec["train"]["epochs"] == 7 and spec["model"]["units"] == 4
    spec = load_spec("toy_task", ["train.epochs=5", "model.input_shape=[4]", "callbacks.early_stopping.patience=9"])
    assert spec["train"]["epochs"] == 5 and spec["model"]["input_shape"] == [4]
    assert spec["callbacks"][0]["patience"] == 9
    spec = load_spec("toy_task", ["callbacks.0.patience=1", "data.noise=0.25"])
    assert spec["callbacks"][0]["patience"] == 1 and spec["data"]["noise"] == 0.25


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.epochs=three", r"\[train\] key 'epochs': received 'three'.*expected int"),
        ("train.epoch=3", r"Unknown key 'epoch' for \[train\]. Did you mean 'epochs'"),
        ("trian.epochs=3", r"unknown section 'trian'. Did you mean 'train'"),
        ("model.units=1.5", r"'units'.*expected int"),
        ("callbacks.nope.patience=1", r"no element 'nope' in callbacks.*early_stopping"),
        ("train.epochs", r"Expected KEY=VALUE"),
        ("train.verbose=5", r"expected 'auto' \| 0 \| 1 \| 2"),
        ("model.name=toy_mlpp", r"Unknown model 'toy_mlpp'. Did you mean 'toy_mlp'"),
    ],
)
def test_bad_overrides_give_documented_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        load_spec("toy_task", [override])


def test_unknown_key_in_file_and_unknown_task(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('task = "toy_task"\n[data]\nname = "toy_blobs"\nrowz = 3\n[model]\nname = "toy_mlp"\n')
    with pytest.raises(ConfigError, match=r"Unknown key 'rowz' for \[data\] 'toy_blobs'.*Did you mean 'rows'.*Allowed keys: rows, seed, noise"):
        load_spec(path)
    path.write_text('task = "toy_tsk"\n')
    with pytest.raises(NotRegisteredError, match=r"Unknown task 'toy_tsk'. Did you mean 'toy_task'"):
        load_spec(path)
    path.write_text('task = "toy_task"\n[data\n')
    with pytest.raises(ConfigError, match=r"not valid TOML"):
        load_spec(path)
    with pytest.raises(ConfigError, match=r"does not exist"):
        load_spec(tmp_path / "missing.toml")


def test_unknown_section_in_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('task = "toy_task"\n[data]\nname = "toy_blobs"\n[model]\nname = "toy_mlp"\n[trian]\nepochs = 1\n')
    with pytest.raises(ConfigError, match=r"unknown section 'trian'. Did you mean 'train'"):
        load_spec(path)


def test_switching_model_name_drops_keys_the_new_model_does_not_take():
    @registry.models.register("toy_other")
    def toy_other(input_shape: tuple[int, ...] = (4,), width: int = 2):
        """Another toy model."""
        return kmodels.build("toy_mlp", input_shape=input_shape, units=width, compile=False)

    try:
        spec = load_spec("toy_task", ["model.name=toy_other"])
        assert spec["model"] == {"name": "toy_other", "width": 2}
        with pytest.raises(ConfigError, match="Unknown key 'units'"):
            load_spec("toy_task", ["model.name=toy_other", "model.units=3"])
    finally:
        registry.models.unregister("toy_other")


def test_parse_override_reads_toml_values_or_plain_strings():
    assert parse_override("a.b=3") == ("a.b", 3)
    assert parse_override("a.b=[16, 32]") == ("a.b", [16, 32])
    assert parse_override("a.b=true") == ("a.b", True)
    assert parse_override("data.target=CustGender") == ("data.target", "CustGender")
    assert parse_override('x.y="quoted"') == ("x.y", "quoted")


def test_a_spec_with_a_base_task_holds_only_what_differs(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('base = "toy_task"\n[data]\nrows = 120\n[train]\nepochs = 9\n'
                    '[[callbacks]]\nname = "terminate_on_nan"\n')
    spec, base = load_spec(path), load_spec("toy_task")
    assert spec.task == "toy_task" and "base" not in spec.to_dict()
    assert spec["data"] == {**base["data"], "rows": 120}  # tables merge key by key
    assert spec["train"] == {**base["train"], "epochs": 9}
    assert spec["preprocess"] == base["preprocess"] and spec["split"] == base["split"]
    assert [c["name"] for c in spec["callbacks"]] == ["terminate_on_nan"]  # arrays replace the base's whole
    again = tmp_path / "again.toml"  # what a run writes is the whole spec, without `base`
    again.write_text(spec.to_toml())
    assert "base" not in tomllib.loads(again.read_text()) and load_spec(again).to_dict() == spec.to_dict()


def test_a_base_model_of_another_name_is_replaced_not_merged(tmp_path):
    # merged, image_classification's `stem_filters = 32` would be an unknown key for simple_cnn
    path = tmp_path / "cnn.toml"
    path.write_text('base = "image_classification"\n[model]\nname = "simple_cnn"\n')
    spec = load_spec(path)
    model = spec["model"]  # simple_cnn's own defaults, not mini_xception's settings
    assert (model["name"], model["filters"], model["whitening"], model["blur_pool"]) == ("simple_cnn", [32, 64, 128], False, False)
    assert spec["train"] == load_spec("image_classification")["train"]


@pytest.mark.parametrize(("base", "message"), [
    ("3", r"`base` must name a registered task.*received 3"),
    ('"toy_tsk"', r"toy_tsk.*toy_task"),  # did you mean
])
def test_a_bad_base_is_a_config_error(tmp_path, base, message):
    path = tmp_path / "bad.toml"
    path.write_text(f"base = {base}\n")
    with pytest.raises(ConfigError, match=message):
        load_spec(path)


def test_a_base_is_a_task_name_never_a_file(tmp_path, monkeypatch):
    (tmp_path / "other.toml").write_text('task = "toy_task"\n')
    (tmp_path / "mine.toml").write_text('base = "other.toml"\n')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(NotRegisteredError):
        load_spec(tmp_path / "mine.toml")


def test_base_specs_that_loop_are_a_config_error():
    from kmodels.task import Task

    class Ping(Task):
        spec_text = 'base = "loop_pong"\ntask = "loop_ping"\n'

    class Pong(Task):
        spec_text = 'base = "loop_ping"\ntask = "loop_pong"\n'

    registry.tasks.register("loop_ping", Ping)
    registry.tasks.register("loop_pong", Pong)
    try:
        with pytest.raises(ConfigError, match=r"loop_ping: `base` specs form a loop.*loop_pong -> loop_ping -> loop_pong"):
            load_spec("loop_ping")
    finally:
        registry.tasks.unregister("loop_ping")
        registry.tasks.unregister("loop_pong")
