"""The command line: flags over config.toml, and a broken config is one sentence + exit 2."""

from __future__ import annotations

from explorer import cli


def test_flags_override_settings(tmp_path):
    args = cli.parse_args(["-i", "p.txt", "--model", "some/model", "--bf16", "--layer_prob"])
    settings = cli.settings_from_args(args)
    assert str(args.input) == "p.txt"
    assert settings.model.name == "some/model" and settings.model.dtype == "bfloat16"
    assert settings.layer_prob is True


def test_defaults_are_smollm2_float32():
    settings = cli.settings_from_args(cli.parse_args([]))
    assert settings.model.name == "smollm2" and settings.model.dtype == "float32"
    assert settings.layer_prob is False


def test_dtype_and_device_map_flags():
    settings = cli.settings_from_args(cli.parse_args(["--dtype", "auto", "--device-map", "auto"]))
    assert settings.model.dtype == "auto" and settings.model.device_map == "auto"
    assert cli.settings_from_args(cli.parse_args(["--bf16"])).model.dtype == "bfloat16"


def test_conflicting_or_bad_placement_flags_are_one_sentence(capsys):
    assert cli.main(["--bf16", "--dtype", "float16"]) == 2
    assert cli.main(["--device-map", "everywhere"]) == 2
    lines = capsys.readouterr().err.strip().split("\n")
    assert "--bf16 and --dtype float16" in lines[0] and "--device-map must be" in lines[1]


def test_bad_config_is_one_sentence_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "config.toml"
    bad.write_text("[model]\nnmae = 'x'\n")
    assert cli.main(["--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown key model.nmae" in err
