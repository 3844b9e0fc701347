"""The `status:` section of the config file: naming, forges, token Secrets and limits.

Pure: pydantic models only (extra fields refused, frozen), no I/O; tokens are never in the
config, only references to Kubernetes Secrets. Every check says which field is wrong and how
to fix it. `service.py` turns these into the reporter's and journey's own settings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Final, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from receiver.errors import ConfigError
from receiver.status.model import DEFAULT_PREFIX, ForgeConfig, ForgeKind, StatusNaming

GITHUB_COM: Final = "github.com"
GITHUB_COM_API: Final = "https://api.github.com"
API_PATHS: Final[Mapping[ForgeKind, str]] = {
    ForgeKind.GITHUB: "/api/v3",
    ForgeKind.GITLAB: "/api/v4",
    ForgeKind.GITEA: "/api/v1",
}
"""Where each kind serves its REST API on its own host (GitHub Enterprise, GitLab, Gitea)."""

_HOST: Final = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
_K8S_NAME: Final = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_SECRET_KEY: Final = re.compile(r"^[-._a-zA-Z0-9]+$")
_CLUSTER: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_PREFIX: Final = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")

K8sName = Annotated[str, Field(min_length=1, max_length=253, pattern=_K8S_NAME.pattern)]
SecretKey = Annotated[str, Field(min_length=1, max_length=253, pattern=_SECRET_KEY.pattern)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TokenSecretRef(_Frozen):
    """A key of a Kubernetes Secret holding a forge token; the app's Secret watch must see it."""

    namespace: K8sName
    name: K8sName
    key: SecretKey = "token"


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
    token_secret_ref: TokenSecretRef | None = None
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

    def token_ref(self, namespace: str | None) -> TokenSecretRef | None:
        """The Secret key holding the token for objects in `namespace`; None when none applies."""
        if namespace is not None:
            own = self.namespace_token_secret_refs.get(namespace)
            if own is not None:
                return TokenSecretRef(namespace=namespace, name=own.name, key=own.key)
        return self.token_secret_ref


class StatusLimits(_Frozen):
    """Bounds of the reporter's queue, retries and waits, and of the journey's memory."""

    max_queue: int = Field(default=1000, ge=1)
    max_attempts: int = Field(default=5, ge=1, le=100)
    max_rate_limit_waits: int = Field(default=5, ge=0, le=100)
    backoff_base_s: float = Field(default=1.0, gt=0)
    backoff_cap_s: float = Field(default=60.0, gt=0)
    max_rate_limit_wait_s: float = Field(default=900.0, gt=0)
    request_timeout_s: float = Field(default=10.0, gt=0)
    dedupe_memory: int = Field(default=10_000, ge=1)
    drain_timeout_s: float = Field(default=5.0, ge=0)
    max_tracked_objects: int = Field(default=10_000, ge=1)
    max_commits_per_object: int = Field(default=20, ge=1)
    recover_window_s: float = Field(default=3600.0, ge=0)
    """After a restart or a takeover, requests this recent get their statuses (checked
    against the forge first, so none is posted twice)."""


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
