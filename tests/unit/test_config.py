"""Settings: defaults, file + flag merge, one clear line for a bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from receiver.config import DEFAULT_MAX_BODY_BYTES, HostPort, load
from receiver.errors import ConfigError


def test_defaults_match_the_documented_ports_and_limits() -> None:
    settings = load(config_file=None, overrides={})
    assert str(settings.listen) == "0.0.0.0:9292"
    assert str(settings.health_listen) == "0.0.0.0:9440"
    assert str(settings.metrics_listen) == "0.0.0.0:8080"
    assert settings.max_body_bytes == DEFAULT_MAX_BODY_BYTES == 25 * 1024 * 1024
    assert settings.write_receiver_status and not settings.no_cross_namespace_refs


def test_flags_override_the_file(tmp_path: Path) -> None:
    file = tmp_path / "config.yaml"
    file.write_text("listen: 127.0.0.1:1000\nlog-level: DEBUG\nno_cross_namespace_refs: true\n")
    settings = load(config_file=file, overrides={"listen": "127.0.0.1:2000", "log_format": None})
    assert settings.listen == HostPort(host="127.0.0.1", port=2000)
    assert settings.log_level == "debug" and settings.no_cross_namespace_refs


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("listen: nonsense\n", "invalid setting listen"),
        ("log_format: xml\n", "invalid setting log_format"),
        ("unknown_key: 1\n", "invalid setting unknown_key"),
        ("max_body_bytes: 10\n", "invalid setting max_body_bytes"),
        ("- a list\n", "must hold a mapping"),
        ("a: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_values_give_one_clear_line(tmp_path: Path, text: str, message: str) -> None:
    file = tmp_path / "config.yaml"
    file.write_text(text)
    with pytest.raises(ConfigError) as info:
        load(config_file=file, overrides={})
    assert message in str(info.value) and "\n" not in str(info.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load(config_file=tmp_path / "absent.yaml", overrides={})


def test_the_documented_example_config_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "config" / "gitops-receiver.yaml"
    settings = load(config_file=example, overrides={})
    assert set(settings.discovery.endpoints) == {"github", "gitlab"}
    assert settings.discovery.downstream


def test_inspector_journal_size_defaults_to_1000_and_must_be_positive() -> None:
    assert load(config_file=None, overrides={}).inspector.journal_size == 1000
    settings = load(config_file=None, overrides={"inspector": {"journal_size": 5}})
    assert settings.inspector.journal_size == 5
    with pytest.raises(ConfigError, match=r"inspector\.journal_size"):
        load(config_file=None, overrides={"inspector": {"journal_size": 0}})
