"""Settings: defaults, file + flag merge, one clear line for a bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from receiver import app, cli
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
    assert not settings.discovery.downstream, "push-time downstream patches are opt-in"


def test_inspector_journal_size_defaults_to_1000_and_must_be_positive() -> None:
    assert load(config_file=None, overrides={}).inspector.journal_size == 1000
    settings = load(config_file=None, overrides={"inspector": {"journal_size": 5}})
    assert settings.inspector.journal_size == 5
    with pytest.raises(ConfigError, match=r"inspector\.journal_size"):
        load(config_file=None, overrides={"inspector": {"journal_size": 0}})


def test_poller_jitter_and_backoff_are_configurable(tmp_path: Path) -> None:
    defaults = load(config_file=None, overrides={}).poll
    assert (defaults.jitter_fraction, defaults.backoff_initial_s, defaults.backoff_max_s) == (
        0.1,
        60.0,
        900.0,
    )
    file = tmp_path / "config.yaml"
    file.write_text(
        "poll:\n  enabled: true\n  jitter_fraction: 0.3\n"
        "  backoff_initial_s: 5\n  backoff_max_s: 120\n"
    )
    poll = load(config_file=file, overrides={}).poll
    assert (poll.jitter_fraction, poll.backoff_initial_s, poll.backoff_max_s) == (0.3, 5, 120)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"poll": {"jitter_fraction": 1.0}}, r"poll\.jitter_fraction"),
        ({"poll": {"jitter_fraction": -0.1}}, r"poll\.jitter_fraction"),
        ({"poll": {"backoff_initial_s": 0}}, r"poll\.backoff_initial_s"),
        ({"poll": {"backoff_base_s": 60}}, r"poll\.backoff_base_s"),
        ({"receiver_status": {"retry_attempts": 0}}, r"receiver_status\.retry_attempts"),
        ({"receiver_status": {"retry_max_s": 0}}, r"receiver_status\.retry_max_s"),
        ({"trigger": {"retry_initial_s": -1}}, r"trigger\.retry_initial_s"),
    ],
    ids=[
        "jitter-1",
        "jitter-negative",
        "backoff-zero",
        "old-poller-name",
        "status-no-attempt",
        "status-zero-max",
        "trigger-negative",
    ],
)
def test_bad_retry_and_backoff_values_are_refused(section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(config_file=None, overrides=section)


def test_receiver_status_writes_retry_as_configured() -> None:
    defaults = load(config_file=None, overrides={}).receiver_status
    assert (defaults.retry_initial_s, defaults.retry_max_s, defaults.retry_attempts) == (
        0.2,
        5.0,
        5,
    )
    settings = load(
        config_file=None, overrides={"receiver_status": {"retry_attempts": 2, "retry_max_s": 1}}
    )
    assert settings.receiver_status.retry_attempts == 2
    assert settings.receiver_status.retry_max_s == 1
    assert settings.receiver_status.retry_initial_s == 0.2


def test_poll_flags_keep_the_file_s_jitter_and_backoff(tmp_path: Path) -> None:
    file = tmp_path / "config.yaml"
    file.write_text("poll:\n  jitter_fraction: 0.25\n  backoff_max_s: 300\n  interval_s: 90\n")
    args = cli.build_parser().parse_args(
        ["serve", "--config", str(file), "--poll", "--poll-interval", "30"]
    )
    poll = cli._settings(args).poll
    assert poll.enabled and poll.interval_s == 30
    assert (poll.jitter_fraction, poll.backoff_max_s) == (0.25, 300)


def test_the_poller_is_handed_the_poll_settings_themselves(tmp_path: Path) -> None:
    examples = Path(__file__).resolve().parents[2] / "config" / "examples"
    settings = load(
        config_file=None,
        overrides={
            "inventory": examples,
            "poll": {"enabled": True, "jitter_fraction": 0.4, "backoff_initial_s": 7},
        },
    )
    running = app.App(settings, client=None)
    try:
        assert running.poller is not None
        assert running.poller.settings is settings.poll
    finally:
        if running._ls_remote is not None:
            running._ls_remote.close()


def test_a_webhook_secret_ref_is_checked_like_a_token_ref() -> None:
    endpoint = {"secret_ref": {"namespace": "flux-system", "name": "Not A Name"}}
    with pytest.raises(ConfigError, match=r"discovery\.endpoints\.github\.secret_ref\.name"):
        load(config_file=None, overrides={"discovery": {"endpoints": {"github": endpoint}}})
