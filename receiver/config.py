"""Settings: one pydantic model per concern under one root, from a YAML file and CLI flags.

Flags override the file. Any invalid value stops start-up with one line naming the field
(`ConfigError`), never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from receiver.errors import ConfigError, first_validation_problem
from receiver.status.settings import StatusSettings

MIB = 1024 * 1024

# GitHub's own maximum webhook payload; Flux's receiver stops at 3 MiB.
DEFAULT_MAX_BODY_BYTES = 25 * MIB


class HostPort(BaseModel):
    model_config = ConfigDict(frozen=True)

    host: str
    port: int = Field(ge=0, le=65535)

    @classmethod
    def parse(cls, text: str) -> HostPort:
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"{text!r} is not host:port")
        return cls(host=host.strip("[]") or "0.0.0.0", port=int(port))

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def _host_port(value: Any) -> Any:
    return HostPort.parse(value) if isinstance(value, str) else value


class SecretKeyRef(BaseModel):
    """A key of a Kubernetes Secret; the value never enters the configuration itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    namespace: str
    name: str
    key: str = "token"


class DiscoveryEndpoint(BaseModel):
    """One `/webhooks/<forge>` endpoint: its shared secret lives in a Kubernetes Secret."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    secret_ref: SecretKeyRef


class DiscoverySettings(BaseModel):
    """Auto-discovery: forge endpoints and the GitRepository index they route through."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoints: dict[str, DiscoveryEndpoint] = Field(default_factory=dict)
    namespaces: tuple[str, ...] = ()
    label_selector: str | None = None
    downstream: bool = False


class TriggerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    workers: int = Field(default=32, ge=1, le=256)
    queue_size: int = Field(default=100_000, ge=1)
    retry_initial_s: float = Field(default=0.2, gt=0)
    retry_max_s: float = Field(default=10.0, gt=0)
    retry_attempts: int = Field(default=8, ge=1)
    drain_timeout_s: float = Field(default=10.0, ge=0)
    # Least time between two reconcile patches of one object; requests meanwhile are merged.
    min_interval_s: float = Field(default=1.0, ge=0)


class PollSettings(BaseModel):
    """The fallback poller (`git ls-remote`); off unless enabled (only the leader should poll)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    interval_s: float = Field(default=60.0, ge=1)
    concurrency: int = Field(default=16, ge=1, le=512)
    per_host_limit: int = Field(default=8, ge=1)
    timeout_s: float = Field(default=30.0, gt=0)
    allow_insecure_http: bool = False


class GcrSettings(BaseModel):
    """Google Pub/Sub push (`gcr` type): where Google's signing keys come from, and the claims
    to expect when the receiver's Secret names none (`audience`, `email` keys win)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    jwks: str = "https://www.googleapis.com/oauth2/v3/certs"
    audience: str | None = None
    emails: tuple[str, ...] = ()


class WatchSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    backoff_initial_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=30.0, gt=0)
    watch_timeout_s: int = Field(default=300, ge=1)


class InspectorSettings(BaseModel):
    """The delivery inspector on the health port: how many recent deliveries it keeps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    journal_size: int = Field(default=1_000, ge=1, le=1_000_000)
    # Sent as each ReconcileRequested Event's reportingInstance and shown by the inspector;
    # default: $POD_NAME, else the host name.
    replica: str | None = None


class LeaderElectionSettings(BaseModel):
    """The Lease that picks the one replica doing singleton work (client-go's defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    namespace: str | None = None  # default: the pod's namespace, else flux-system
    lease_name: str = "gitops-receiver-leader"
    lease_duration_s: float = Field(default=15.0, gt=0)
    renew_deadline_s: float = Field(default=10.0, gt=0)
    retry_period_s: float = Field(default=2.0, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> LeaderElectionSettings:
        if not self.retry_period_s < self.renew_deadline_s < self.lease_duration_s:
            raise ValueError(
                "need retry_period_s < renew_deadline_s < lease_duration_s "
                f"(got {self.retry_period_s}, {self.renew_deadline_s}, {self.lease_duration_s})"
            )
        return self


class Settings(BaseModel):
    """The whole configuration of `gitops-receiver serve`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    listen: HostPort = HostPort(host="0.0.0.0", port=9292)
    health_listen: HostPort = HostPort(host="0.0.0.0", port=9440)
    metrics_listen: HostPort = HostPort(host="0.0.0.0", port=8080)
    kubeconfig: Path | None = None
    inventory: Path | None = None
    log_format: Literal["json", "console"] = "json"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    no_cross_namespace_refs: bool = False
    write_receiver_status: bool = True
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=1024)
    dedupe_window_s: float = Field(default=60.0, ge=0)
    discovery: DiscoverySettings = DiscoverySettings()
    trigger: TriggerSettings = TriggerSettings()
    watch: WatchSettings = WatchSettings()
    leader_election: LeaderElectionSettings = LeaderElectionSettings()
    poll: PollSettings = PollSettings()
    gcr: GcrSettings = GcrSettings()
    inspector: InspectorSettings = InspectorSettings()
    status: StatusSettings | None = None

    _parse_listen = field_validator("listen", "health_listen", "metrics_listen", mode="before")(
        _host_port
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


def load(*, config_file: Path | None, overrides: dict[str, Any]) -> Settings:
    """Merge the YAML file (if any) with CLI overrides (None values ignored) and validate."""
    data: dict[str, Any] = {}
    if config_file is not None:
        try:
            loaded = yaml.safe_load(config_file.read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read config file {config_file}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or "syntax error"
            raise ConfigError(
                f"config file {config_file} is not valid YAML{where}: {problem}"
            ) from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {config_file} must hold a mapping at the top")
        data = {key.replace("-", "_"): value for key, value in (loaded or {}).items()}
    data.update({key: value for key, value in overrides.items() if value is not None})
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problem = first_validation_problem(exc, root="config")
        raise ConfigError(f"invalid setting {problem}") from None
