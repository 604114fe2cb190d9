"""Config: defaults < TOML file < flag overrides, and one-line errors that name the setting."""

from __future__ import annotations

import pytest

from mganai.config import ALL_METHODS, ConfigError, RunConfig, build_config, load_toml


def _error(file_values=None, overrides=None) -> str:
    with pytest.raises(ConfigError) as info:
        build_config(file_values, overrides)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_defaults_are_valid_and_match_the_dataclasses():
    cfg = build_config()
    assert cfg == RunConfig()
    assert cfg.attack.methods == list(ALL_METHODS)


def test_file_values_are_applied_per_section():
    cfg = build_config({"seed": 4, "data": {"clients": 5, "dirichlet_alpha": 1}, "fl": {"engine": "loop"}})
    assert cfg.seed == 4 and cfg.data.clients == 5 and cfg.fl.engine == "loop"
    assert cfg.data.dirichlet_alpha == 1.0 and isinstance(cfg.data.dirichlet_alpha, float)
    assert cfg.fl.rounds == RunConfig().fl.rounds  # untouched keys keep their defaults


def test_flag_overrides_beat_file_values():
    cfg = build_config(
        {"seed": 4, "data": {"clients": 5}, "fl": {"rounds": 7, "lr": 0.2}, "attack": {"start_round": 1}},
        {"fl.rounds": 2, "seed": 9, "attack.victim": 4},
    )
    assert cfg.fl.rounds == 2 and cfg.seed == 9 and cfg.attack.victim == 4
    assert cfg.data.clients == 5 and cfg.fl.lr == 0.2  # file values the flags did not touch


def test_methods_accept_a_comma_separated_string():
    assert build_config(overrides={"attack.methods": "class-gan, representatives"}).attack.methods == [
        "class-gan",
        "representatives",
    ]
    assert build_config({"attack": {"methods": ["none"]}}).attack.methods == ["none"]


def test_to_dict_round_trips_through_build_config():
    cfg = build_config({"seed": 2, "data": {"clients": 3}, "attack": {"methods": ["none"]}}, {"fl.rounds": 2})
    assert build_config(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    ("file_values", "key"),
    [
        ({"bogus": 1}, "'bogus'"),
        ({"fl": {"epochs": 3}}, "'fl.epochs'"),
        ({"attack": {"victim": 0, "victims": 1}}, "'attack.victims'"),
    ],
)
def test_unknown_key_is_an_error_naming_the_key(file_values, key):
    message = _error(file_values)
    assert key in message and "allowed" in message


def test_unknown_override_key_is_an_error_naming_the_key():
    assert "'data.colour'" in _error(overrides={"data.colour": "red"})


@pytest.mark.parametrize(
    ("file_values", "key"),
    [
        ({"fl": {"rounds": "ten"}}, "fl.rounds"),
        ({"fl": {"rounds": 2.5}}, "fl.rounds"),
        ({"fl": {"rounds": True}}, "fl.rounds"),
        ({"fl": {"lr": "fast"}}, "fl.lr"),
        ({"quiet": 1}, "quiet"),
        ({"data": {"dataset": 3}}, "data.dataset"),
        ({"attack": {"methods": [1, 2]}}, "attack.methods"),
        ({"data": 3}, "'data'"),
    ],
)
def test_wrong_type_is_an_error_naming_the_key(file_values, key):
    assert key in _error(file_values)


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"data.clients": 3, "attack.victim": 3}, "attack.victim"),
        ({"data.clients": 3, "attack.victim": -1}, "attack.victim"),
        ({"data.clients": 1, "attack.victim": 0}, "data.clients"),
        ({"fl.rounds": 0}, "fl.rounds"),
        ({"attack.methods": "mganai-pasive"}, "mganai-pasive"),
        ({"attack.methods": "none,class-gan"}, "none"),
        ({"attack.methods": ""}, "attack.methods"),
        ({"fl.momentum": 1.0}, "fl.momentum"),
        ({"fl.client_fraction": 0.0}, "fl.client_fraction"),
        ({"fl.engine": "jit"}, "fl.engine"),
        ({"attack.augment_rotate": -5.0}, "attack.augment_rotate"),
        ({"attack.augment_scale": 1.0}, "attack.augment_scale"),
        ({"data.partition": "shards"}, "data.partition"),
        ({"data.holdout": 0.0}, "data.holdout"),
        ({"data.resolution": 20}, "data.resolution"),
    ],
)
def test_out_of_range_values_are_errors_naming_the_key(values, key):
    assert key in _error(overrides=values)


def test_victim_check_uses_the_final_client_count():
    # The file makes victim 4 valid; the flag shrinks the federation so it no longer is.
    message = _error({"data": {"clients": 6}, "attack": {"victim": 4}}, {"data.clients": 4})
    assert "attack.victim" in message and "0..3" in message


def test_load_toml_reads_sections(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('seed = 3\n[data]\nclients = 4\n[attack]\nmethods = ["none"]\n', encoding="utf-8")
    assert load_toml(path) == {"seed": 3, "data": {"clients": 4}, "attack": {"methods": ["none"]}}


def test_load_toml_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_toml(tmp_path / "absent.toml")


def test_load_toml_directory_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError):
        load_toml(tmp_path)


@pytest.mark.parametrize("text", ["seed = \n", "[data\nclients = 3\n", "seed = 1\nseed = 2\n"])
def test_load_toml_invalid_toml_is_a_one_line_config_error(tmp_path, text):
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        load_toml(path)
    assert "\n" not in str(info.value) and "bad.toml" in str(info.value)


def test_load_toml_non_utf8_file_is_a_config_error(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes('name = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(ConfigError):
        load_toml(path)


# --- the settings file `mganai config` prints and docs/usage.md embeds ---------------------------------


def test_the_settings_file_lists_every_key_and_loads_back_to_the_same_settings():
    import dataclasses
    import tomllib

    from mganai.config import SECTIONS, RunConfig
    from mganai.settings import settings_toml

    text = settings_toml()
    values = tomllib.loads(text)
    assert build_config(values) == RunConfig()
    top = [f.name for f in dataclasses.fields(RunConfig) if f.name not in SECTIONS]
    assert list(values) == [*top, *SECTIONS]
    for name, cls in SECTIONS.items():
        fields = dataclasses.fields(cls)
        assert list(values[name]) == [f.name for f in fields if f.default is not None], name
        for f in fields:  # TOML has no null: a key unset by default is there as a comment
            if f.default is None:
                assert f"\n# {f.name} (unset)  # " in text, f.name
    assert "start_round = 5  # first round whose updates feed the attack" in text  # config.py's own comment
    delta = build_config(overrides={"defense.dp_delta": 0.001})
    assert build_config(tomllib.loads(settings_toml(delta))) == delta
    assert "dp_delta = 0.001  # δ of the reported ε; unset: 1/(10·N) for N clients; default unset" in (
        settings_toml(delta)
    )
    quick = build_config(overrides={"preset": "quick", "fl.rounds": 8})
    assert build_config(tomllib.loads(settings_toml(quick))) == quick
    assert "rounds = 8  # must be more than attack.start_round when an attack runs; default 40" in settings_toml(quick)


def test_docs_usage_embeds_the_generated_settings():
    from pathlib import Path

    from mganai.settings import doc_block, embedded

    usage = Path(__file__).resolve().parents[1] / "docs" / "usage.md"
    assert embedded(usage.read_text(encoding="utf-8")) == doc_block(), (
        "docs/usage.md's settings are out of date: run `python -m mganai.settings docs/usage.md`"
    )


def test_mganai_config_prints_the_settings_with_the_flags_applied():
    import tomllib

    from tinyrun import run_cli

    code, stdout, _ = run_cli(["config", "--quick", "--victim", "2"])
    assert code == 0
    values = tomllib.loads(stdout)
    assert values["preset"] == "quick" and values["attack"]["victim"] == 2 and values["fl"]["rounds"] == 6
