"""A thin JSON client for the Kubernetes API on kubernetes_asyncio's configuration.

kubernetes_asyncio loads the kubeconfig (or the in-cluster service account): server, TLS
files, bearer token and its refresh hook. This module sends raw paths and JSON over its own
aiohttp session, with a TLS context built from that configuration exactly as
kubernetes_asyncio's REST client builds it, so every kind (core, Flux CRDs, any version) goes
through one short code path: the generated client's request machinery cost more CPU than the
reconcile patch itself. HTTP failures become errors by meaning (`errors.py`):
404 `TargetNotFound`, 410 `ResourceExpired`, 429/5xx/connection `KubeUnavailable` (retry),
any other 4xx `KubeRejected`.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio.config.config_exception import ConfigException
from yarl import URL

from receiver import __version__, fastjson
from receiver.errors import (
    ConfigError,
    KubeConflict,
    KubeError,
    KubeRejected,
    KubeUnavailable,
    ResourceExpired,
    TargetNotFound,
)

JsonObject = dict[str, Any]
MERGE_PATCH = "application/merge-patch+json"
USER_AGENT = f"gitops-receiver/{__version__}"


class KubeClient:
    """JSON over the API server. Create with `connect`, close with `close`."""

    def __init__(
        self, configuration: k8s_client.Configuration, *, source: str, max_connections: int = 128
    ) -> None:
        self._configuration = configuration
        self._host = str(configuration.host).rstrip("/")
        self._server_hostname: str | None = configuration.tls_server_name or None
        self._proxy = _proxy_for(self._host, configured=configuration.proxy)
        self._proxy_headers = configuration.proxy_headers
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max_connections, ssl=_ssl_context(configuration)),
            trust_env=False,  # the proxy is decided once, above: no lookup per request
            read_bufsize=2**21,  # a watch event can carry a large object (etcd allows 1.5 MiB)
        )
        self.source = source

    @classmethod
    async def connect(cls, *, kubeconfig: Path | None) -> KubeClient:
        """`kubeconfig`, else `$KUBECONFIG`, else the in-cluster service account.

        Never falls back silently: a kubeconfig that cannot be loaded is a `ConfigError`.
        """
        configuration = k8s_client.Configuration()
        path = kubeconfig or (
            Path(os.environ["KUBECONFIG"]) if os.environ.get("KUBECONFIG") else None
        )
        if path is not None and not path.is_file():
            raise ConfigError(f"cannot load kubeconfig {path}: no such file")
        try:
            if path is not None:
                await k8s_config.load_kube_config(
                    config_file=str(path), client_configuration=configuration
                )
                source = f"kubeconfig {path}"
            else:
                k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]
                    client_configuration=configuration
                )
                source = "in-cluster service account"
            return cls(configuration, source=source)
        except (ConfigException, OSError, TypeError, ValueError) as exc:
            where = f"kubeconfig {path}" if path else "in-cluster configuration"
            raise ConfigError(f"cannot load {where}: {_first_line(exc)}") from None

    @property
    def server(self) -> str:
        return self._host

    async def close(self) -> None:
        await self._session.close()

    async def get(
        self, path: str, *, query: Mapping[str, str] | None = None, timeout_s: float = 30.0
    ) -> JsonObject:
        return await self._json("GET", path, query=query, timeout_s=timeout_s)

    async def merge_patch(
        self, path: str, patch: JsonObject, *, timeout_s: float = 30.0
    ) -> JsonObject:
        return await self._json(
            "PATCH", path, body=patch, content_type=MERGE_PATCH, timeout_s=timeout_s
        )

    async def create(self, path: str, body: JsonObject, *, timeout_s: float = 30.0) -> JsonObject:
        """POST `body` to the collection at `path`; 409 (it exists) is `KubeConflict`."""
        return await self._json("POST", path, body=body, timeout_s=timeout_s)

    async def stream(
        self, path: str, *, query: Mapping[str, str], timeout_s: float
    ) -> AsyncIterator[JsonObject]:
        """Yield the JSON lines of a watch until the server ends it."""
        response = await self._send("GET", path, query=query, timeout_s=timeout_s, stream=True)
        try:
            while True:
                try:
                    line = await response.content.readline()
                except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                    raise KubeUnavailable(f"watch {path} broke: {_first_line(exc)}") from exc
                if not line:
                    return
                if line.strip():
                    yield fastjson.loads(line)
        finally:
            response.release()

    async def _json(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: JsonObject | None = None,
        content_type: str = "application/json",
        timeout_s: float,
    ) -> JsonObject:
        response = await self._send(
            method, path, query=query, body=body, content_type=content_type, timeout_s=timeout_s
        )
        try:
            payload: JsonObject = fastjson.loads(await response.read())
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
            raise KubeUnavailable(
                f"{method} {path}: unreadable answer: {_first_line(exc)}"
            ) from exc
        finally:
            response.release()
        return payload

    async def _send(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None,
        timeout_s: float,
        body: JsonObject | None = None,
        content_type: str = "application/json",
        stream: bool = False,
    ) -> aiohttp.ClientResponse:
        timeout = (
            aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=timeout_s)
            if stream
            else aiohttp.ClientTimeout(total=timeout_s)
        )
        # Audit logs and managedFields name the writer after the User-Agent's first segment.
        headers = {
            "Content-Type": content_type,
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        # The library's own call does this per request too: it runs the refresh hook (the
        # in-cluster loader's re-reads the rotated service account token).
        token = await self._configuration.get_api_key_with_prefix("BearerToken")
        if token:
            headers["Authorization"] = token
        url = self._host + path
        if query:
            url += "?" + urlencode(list(query.items()))
        try:
            response = await self._session.request(
                method,
                URL(url, encoded=True),
                data=None if body is None else fastjson.dumps(body),
                headers=headers,
                timeout=timeout,
                proxy=self._proxy,
                proxy_headers=self._proxy_headers,
                server_hostname=self._server_hostname,
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise KubeUnavailable(f"{method} {path}: {_first_line(exc)}") from exc
        if response.status < 400:
            return response
        try:
            text = await response.text()
        except (TimeoutError, aiohttp.ClientError, OSError):
            text = ""
        finally:
            response.release()
        raise _error_for(
            response.status,
            method=method,
            path=path,
            text=text,
            retry_after=response.headers.get("Retry-After"),
        )


def _ssl_context(configuration: k8s_client.Configuration) -> ssl.SSLContext:
    """The TLS context kubernetes_asyncio's REST client would build from `configuration`."""
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, keyfile=configuration.key_file)
    if not configuration.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if configuration.disable_strict_ssl_verification:
        context.verify_flags &= ~ssl.VERIFY_X509_STRICT
    return context


def _proxy_for(host: str, *, configured: str | None) -> str | None:
    """The HTTP proxy for the API server, decided once: the configuration's, else the
    environment's (`*_PROXY`, `NO_PROXY`), else none. Deciding it per request would cost
    aiohttp a thread hop per patch."""
    if configured:
        return configured
    try:
        proxy, _auth = get_env_proxy_for_url(URL(host))
    except LookupError:
        return None
    return str(proxy)


def _error_for(
    status: int, *, method: str, path: str, text: str, retry_after: str | None
) -> KubeError:
    message = f"{method} {path}: HTTP {status}: {_status_message(text)}"
    if status == 404:
        return TargetNotFound(message)
    if status == 410:
        return ResourceExpired(message)
    if status == 409:
        return KubeConflict(message)
    if status == 429 or status >= 500:
        return KubeUnavailable(message, retry_after_s=_seconds(retry_after))
    return KubeRejected(message)


def _status_message(text: str) -> str:
    try:
        status = json.loads(text)
    except ValueError:
        return text[:200]
    return str(status.get("message", ""))[:300] if isinstance(status, dict) else text[:200]


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or exc.__class__.__name__
    return text.splitlines()[0]
