"""Settings: one pydantic model per concern under one root, from a YAML file and CLI flags.

Every model of the configuration is here, and each is handed as it is to the code it
configures (`TriggerSettings` to the reconcile queue, `PollSettings` to the poller,
`StatusLimits` to the status reporter...), never copied into a second shape. Flags override
the file. Any invalid value stops start-up with one line naming the field (`ConfigError`),
never a traceback.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Self
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from receiver.errors import ConfigError, first_validation_problem
from receiver.status.model import DEFAULT_PREFIX, ForgeConfig, ForgeKind, StatusNaming

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


_K8S_NAME: Final = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_SECRET_KEY: Final = re.compile(r"^[-._a-zA-Z0-9]+$")

K8sName = Annotated[str, Field(min_length=1, max_length=253, pattern=_K8S_NAME.pattern)]
SecretKey = Annotated[str, Field(min_length=1, max_length=253, pattern=_SECRET_KEY.pattern)]


class SecretKeyRef(BaseModel):
    """A key of a Kubernetes Secret (a webhook secret, a forge token): the value never enters
    the configuration itself, and the app's Secret watch must see the Secret."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    namespace: K8sName
    name: K8sName
    key: SecretKey = "token"


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
    """The reconcile queue: workers, bound, and how a failed patch is retried."""

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
    # Each pause between ticks is the interval +/- this share of it, so replicas drift apart.
    jitter_fraction: float = Field(default=0.1, ge=0, lt=1)
    concurrency: int = Field(default=16, ge=1, le=512)
    per_host_limit: int = Field(default=8, ge=1)
    timeout_s: float = Field(default=30.0, gt=0)
    # A failing remote (with its credential) waits this long, doubling up to the max.
    backoff_initial_s: float = Field(default=60.0, gt=0)
    backoff_max_s: float = Field(default=900.0, gt=0)
    allow_insecure_http: bool = False


class GcrSettings(BaseModel):
    """Google Pub/Sub push (`gcr` type): where Google's signing keys come from, and the claims
    to expect when the receiver's Secret names none (`audience`, `email` keys win)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    jwks: str = "https://www.googleapis.com/oauth2/v3/certs"
    audience: str | None = None
    emails: tuple[str, ...] = ()


class ReceiverStatusSettings(BaseModel):
    """How a Receiver's `.status` write (webhookPath, Ready) is retried; whether it is written
    at all is `write_receiver_status` (`--no-status`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    retry_initial_s: float = Field(default=0.2, gt=0)
    retry_max_s: float = Field(default=5.0, gt=0)
    retry_attempts: int = Field(default=5, ge=1)


class ArgoCdSettings(BaseModel):
    """Argo CD as a second target: the same webhooks refresh the Applications and
    ApplicationSets they affect, when the cluster serves Argo CD's CRDs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    # `argocd.argoproj.io/refresh: hard` instead of `normal`: also drops Argo CD's manifest
    # cache for the Application (costly on the repo-server; Argo CD's own webhook never does).
    hard_refresh: bool = False
    # Where the CRDs are not served yet, how often to ask again (Argo CD installed later).
    recheck_interval_s: float = Field(default=300.0, gt=0)


class LimitSettings(BaseModel):
    """What one client, or all of them together, may take of the webhook port.

    Safe defaults for a port on the open internet; each limit has a metric (README, "Running it
    on the internet"). Time limits close the connection; the others answer fast and never stall.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # From a connection's first byte (or the end of its previous request) to its last header.
    header_timeout_s: float = Field(default=10.0, gt=0)
    # From the end of the headers to the last byte of the body: 408, connection closed.
    body_timeout_s: float = Field(default=30.0, gt=0)
    # A kept-alive connection with no request for this long is closed.
    idle_timeout_s: float = Field(default=15.0, gt=0)
    # Open connections beyond this are answered 503 and closed at once.
    max_connections: int = Field(default=512, ge=1)
    # Bytes of request bodies held at once across all connections; beyond: 503 + Retry-After.
    max_body_bytes_in_flight: int = Field(default=64 * MIB, ge=1024)
    # Requests per second per client IP (token bucket of `client_burst`); beyond: 429.
    # 0 turns the per-client limit off.
    client_rate_per_s: float = Field(default=50.0, ge=0)
    client_burst: int = Field(default=200, ge=1)
    # Peers whose X-Forwarded-For names the client (an Ingress); CIDRs or addresses.
    trusted_proxies: tuple[str, ...] = ()

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or CIDR") from None
        return value


class WatchSettings(BaseModel):
    """List-then-watch: reconnect backoff when the API server is unreachable."""

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


# --- status: commit statuses on the forges ---------------------------------------------------
# Tokens are never in the config, only references to Kubernetes Secrets. Every check says which
# field is wrong and how to fix it.

GITHUB_COM: Final = "github.com"
GITHUB_COM_API: Final = "https://api.github.com"
API_PATHS: Final[Mapping[ForgeKind, str]] = {
    ForgeKind.GITHUB: "/api/v3",
    ForgeKind.GITLAB: "/api/v4",
    ForgeKind.GITEA: "/api/v1",
}
"""Where each kind serves its REST API on its own host (GitHub Enterprise, GitLab, Gitea)."""

_HOST: Final = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
_CLUSTER: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_PREFIX: Final = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NamespaceTokenRef(_Frozen):
    """A token Secret in the Flux object's own namespace (a tenant's token for its objects)."""

    name: K8sName
    key: SecretKey = "token"


class ForgeSettings(_Frozen):
    """One forge host statuses go to.

    `host` is how push URLs name the forge (`github.com`, `gitlab.example.com`), without
    scheme or port. `api_base_url` defaults to `https://api.github.com` for github.com and to
    `https://<host>/api/v3` (GitHub Enterprise), `/api/v4` (GitLab) or `/api/v1` (Gitea).
    Objects in a namespace of `namespace_token_secret_refs` use that namespace's Secret and
    never fall back to `token_secret_ref`.
    """

    kind: ForgeKind
    host: str
    api_base_url: str | None = None
    token_secret_ref: SecretKeyRef | None = None
    namespace_token_secret_refs: dict[K8sName, NamespaceTokenRef] = Field(default_factory=dict)

    @field_validator("host")
    @classmethod
    def _bare_host(cls, value: str) -> str:
        host = value.strip().lower()
        if "://" in host or "/" in host or ":" in host or not _HOST.match(host):
            raise ValueError(
                f"{value!r} is not a bare host name: write it as push URLs name it, without "
                "scheme, port or path (e.g. gitlab.example.com), and put the API address in "
                "api_base_url"
            )
        return host

    @field_validator("api_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                "api_base_url is not an http(s) URL: give the REST API base, e.g. "
                "https://gitlab.example.com/api/v4"
            )
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError(
                f"api_base_url must not carry a query, fragment or credentials: {parts.hostname}"
            )
        return value.strip().rstrip("/")

    @model_validator(mode="after")
    def _some_token(self) -> Self:
        if self.token_secret_ref is None and not self.namespace_token_secret_refs:
            raise ValueError(
                f"forge {self.host}: set token_secret_ref (and/or namespace_token_secret_refs) "
                "to the Secret holding the API token"
            )
        return self

    @property
    def resolved_api_base_url(self) -> str:
        if self.api_base_url is not None:
            return self.api_base_url
        if self.kind is ForgeKind.GITHUB and self.host == GITHUB_COM:
            return GITHUB_COM_API
        return f"https://{self.host}{API_PATHS[self.kind]}"

    def forge_config(self) -> ForgeConfig:
        return ForgeConfig(kind=self.kind, host=self.host, api_base_url=self.resolved_api_base_url)

    def token_ref(self, namespace: str | None) -> SecretKeyRef | None:
        """The Secret key holding the token for objects in `namespace`; None when none applies."""
        if namespace is not None:
            own = self.namespace_token_secret_refs.get(namespace)
            if own is not None:
                return SecretKeyRef(namespace=namespace, name=own.name, key=own.key)
        return self.token_secret_ref


class StatusLimits(_Frozen):
    """Bounds of the reporter's queue, retries and waits (the reporter reads them as they are),
    and of the journey's memory."""

    max_queue: int = Field(default=1000, ge=1)
    # Tries of one update against 5xx/409/connection errors before it is dropped.
    retry_attempts: int = Field(default=5, ge=1, le=100)
    retry_initial_s: float = Field(default=1.0, gt=0)
    retry_max_s: float = Field(default=60.0, gt=0)
    max_rate_limit_waits: int = Field(default=5, ge=0, le=100)
    # A forge asking for a longer wait is retried after this many seconds instead.
    max_rate_limit_wait_s: float = Field(default=900.0, gt=0)
    request_timeout_s: float = Field(default=10.0, gt=0)
    # How many status lines remember their last content, to skip identical re-posts.
    dedupe_memory: int = Field(default=10_000, ge=1)
    drain_timeout_s: float = Field(default=5.0, ge=0)
    max_tracked_objects: int = Field(default=10_000, ge=1)
    max_commits_per_object: int = Field(default=20, ge=1)
    # After a restart or a takeover, requests this recent get their statuses (checked
    # against the forge first, so none is posted twice).
    recover_window_s: float = Field(default=3600.0, ge=0)
    # How long one read of a commit's statuses answers that check for its other lines.
    forge_view_ttl_s: float = Field(default=10.0, ge=0)


class StatusSettings(_Frozen):
    """Commit statuses: one name per object, `<prefix>/<cluster>/<kind>/<namespace>/<name>`.

    `target_url` is a template over `{cluster} {kind} {namespace} {name} {sha}`.
    """

    cluster: str
    prefix: str = DEFAULT_PREFIX
    target_url: str | None = None
    forges: tuple[ForgeSettings, ...]
    limits: StatusLimits = StatusLimits()

    @field_validator("cluster")
    @classmethod
    def _cluster_name(cls, value: str) -> str:
        if not _CLUSTER.match(value):
            raise ValueError(
                f"{value!r} is not a usable cluster name: letters, digits, '.', '_' and '-', "
                "starting with a letter or digit (it becomes part of every status name)"
            )
        return value

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not _PREFIX.match(value):
            raise ValueError(
                f"{value!r} is not a usable prefix: letters, digits, '.', '_', '-' and inner '/'"
            )
        return value

    @field_validator("target_url")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if urlsplit(value).scheme not in ("http", "https"):
            raise ValueError(f"target_url must start with http:// or https://, got {value!r}")
        try:
            StatusNaming(cluster="c", target_url_template=value)
            value.format(cluster="c", kind="k", namespace="n", name="x", sha="0" * 40)
        except ConfigError as exc:
            raise ValueError(str(exc).removeprefix("status ")) from None
        except (ValueError, IndexError, KeyError, AttributeError) as exc:
            raise ValueError(
                f"target_url is not a valid template ({exc}): use only {{cluster}}, {{kind}}, "
                "{namespace}, {name} and {sha}, and write a literal brace as {{ or }}"
            ) from None
        return value

    @field_validator("forges")
    @classmethod
    def _forges(cls, value: tuple[ForgeSettings, ...]) -> tuple[ForgeSettings, ...]:
        if not value:
            raise ValueError("list at least one forge (kind, host, token_secret_ref)")
        seen: set[str] = set()
        for forge in value:
            if forge.host in seen:
                raise ValueError(f"forge host {forge.host} is listed twice: list each host once")
            seen.add(forge.host)
        return value

    def naming(self) -> StatusNaming:
        return StatusNaming(
            cluster=self.cluster, prefix=self.prefix, target_url_template=self.target_url
        )

    def forge(self, host: str) -> ForgeSettings | None:
        host = host.lower()
        return next((forge for forge in self.forges if forge.host == host), None)


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
    receiver_status: ReceiverStatusSettings = ReceiverStatusSettings()
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=1024)
    dedupe_window_s: float = Field(default=60.0, ge=0)
    limits: LimitSettings = LimitSettings()
    # Watch Secrets only in these namespaces (a Role each instead of a ClusterRole); empty:
    # cluster-wide. Either way only Secrets something references are kept.
    secret_namespaces: tuple[str, ...] = ()
    discovery: DiscoverySettings = DiscoverySettings()
    trigger: TriggerSettings = TriggerSettings()
    watch: WatchSettings = WatchSettings()
    leader_election: LeaderElectionSettings = LeaderElectionSettings()
    poll: PollSettings = PollSettings()
    gcr: GcrSettings = GcrSettings()
    inspector: InspectorSettings = InspectorSettings()
    argocd: ArgoCdSettings = ArgoCdSettings()
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
