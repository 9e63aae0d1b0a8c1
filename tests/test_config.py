"""config.toml: defaults, the shipped file, and one clear sentence for a typo."""

from pathlib import Path

import pytest

from explorer.config import (
    EMBEDDED_MODEL_DIR,
    REPO_DIR,
    ConfigError,
    ModelSettings,
    Settings,
    load_settings,
)


def test_shipped_config_matches_defaults():
    # config.toml documents every key with its default value; the two must not drift.
    assert load_settings(REPO_DIR / "config.toml") == Settings()


def test_missing_file_means_defaults(tmp_path: Path):
    assert load_settings(tmp_path / "nope.toml") == Settings()


def test_tiny_names_resolve_to_package_folder():
    assert Settings().model.name == "smollm2"  # the default: built by the engine on first use
    for name in ("tiny", "embedded"):
        assert ModelSettings(name=name).path_or_id == str(EMBEDDED_MODEL_DIR)


def test_values_and_parts_override(tmp_path: Path):
    f = tmp_path / "c.toml"
    f.write_text(
        '[model]\nname = "Qwen/Qwen2.5-0.5B"\ndtype = "bfloat16"\ncache_size = 3\n'
        '[model.parts]\nfinal_norm = "model.norm"\n[display]\ntokens_to_show = 10\n'
    )
    s = load_settings(f)
    assert s.model.path_or_id == "Qwen/Qwen2.5-0.5B"
    assert (s.model.dtype, s.model.cache_size) == ("bfloat16", 3)
    assert s.model.parts == {"final_norm": "model.norm"}
    assert s.display.tokens_to_show == 10


@pytest.mark.parametrize(
    "text, words",
    [
        ("[model]\nnmae = 'x'\n", "unknown key model.nmae"),
        ("[modle]\n", "unknown section [modle]"),
        ("[display]\ntokens_to_show = 'ten'\n", "display.tokens_to_show should be an integer"),
        ("[model]\ncache_size = true\n", "model.cache_size should be an integer"),
        ("[model]\ndtype = 'float64'\n", "model.dtype must be"),
        ("[model\n", "not valid TOML"),
    ],
)
def test_bad_config_is_one_sentence(tmp_path: Path, text: str, words: str):
    f = tmp_path / "c.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace("]", r"\]")):
        load_settings(f)


def test_keys_section(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[keys]\n"prompt.append" = "right,n"\n')
    assert load_settings(path).keys == {"prompt.append": "right,n"}
    path.write_text('[keys]\n"prompt.append" = 3\n')
    with pytest.raises(ConfigError, match="keys.prompt.append should be a string"):
        load_settings(path)


def test_dtype_and_device_map_settings(tmp_path: Path):
    f = tmp_path / "c.toml"
    f.write_text('[model]\ndtype = "auto"\ndevice_map = "auto"\noffload_folder = "/tmp/off"\n'
                 '[model.max_memory]\n0 = "20GiB"\ncpu = "60GiB"\n')
    m = load_settings(f).model
    assert (m.dtype, m.device_map, m.offload_folder) == ("auto", "auto", "/tmp/off")
    assert m.max_memory == {"0": "20GiB", "cpu": "60GiB"}
    f.write_text('[model.device_map]\n"model.layers.0" = "cpu"\nlm_head = "disk"\n')
    assert load_settings(f).model.device_map == {"model.layers.0": "cpu", "lm_head": "disk"}
    for bad, words in (('[model]\ndevice_map = "everywhere"\n', "model.device_map must be"),
                       ('[model]\ndtype = "float8"\n', "model.dtype must be"),
                       ('[model.device_map]\nlm_head = 1.5\n', "should name a device")):
        f.write_text(bad)
        with pytest.raises(ConfigError, match=words):
            load_settings(f)
