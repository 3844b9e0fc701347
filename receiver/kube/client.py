"""A thin JSON client for the Kubernetes API on top of kubernetes_asyncio's auth and TLS.

kubernetes_asyncio loads the kubeconfig (or the in-cluster service account) and signs each
request; this module sends raw paths and JSON so every kind (core, Flux CRDs, any version)
goes through one code path, and turns HTTP failures into errors by meaning (`errors.py`):
404 `TargetNotFound`, 410 `ResourceExpired`, 429/5xx/connection `KubeUnavailable` (retry),
any other 4xx `KubeRejected`.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio.config.config_exception import ConfigException
from yarl import URL

from receiver import __version__
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

    def __init__(self, api_client: k8s_client.ApiClient, *, source: str) -> None:
        self._api = api_client
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
        except (ConfigException, OSError, TypeError, ValueError) as exc:
            where = f"kubeconfig {path}" if path else "in-cluster configuration"
            raise ConfigError(f"cannot load {where}: {_first_line(exc)}") from None
        configuration.connection_pool_maxsize = 128
        api_client = k8s_client.ApiClient(configuration)
        # Audit logs and managedFields name the writer after the User-Agent's first segment.
        api_client.user_agent = USER_AGENT
        _resolve_proxy_once(api_client)
        return cls(api_client, source=source)

    @property
    def server(self) -> str:
        return str(self._api.configuration.host)

    async def close(self) -> None:
        await self._api.close()

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
                    yield json.loads(line)
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
            payload: JsonObject = await response.json(content_type=None)
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
        try:
            response: aiohttp.ClientResponse = await self._api.call_api(
                path,
                method,
                query_params=list((query or {}).items()),
                header_params={"Content-Type": content_type, "Accept": "application/json"},
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=timeout,
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


def _resolve_proxy_once(api_client: k8s_client.ApiClient) -> None:
    """Decide the HTTP proxy for the API server once, not on every request.

    kubernetes_asyncio's session trusts the environment, so aiohttp looks up `*_PROXY` in a
    thread for every call: a thread hop per patch. The environment's answer for the API
    server is fixed for the life of the process, so it is resolved here and the session
    replaced by one that uses exactly that (or none).
    """
    rest = api_client.rest_client
    if rest.proxy is None:
        try:
            proxy, _auth = get_env_proxy_for_url(URL(str(api_client.configuration.host)))
            rest.proxy = str(proxy)
        except LookupError:
            rest.proxy = None
    # Must reach into the private session: kubernetes_asyncio hard-codes trust_env=True, no option.
    old = rest.pool_manager
    connector = old.connector
    old.detach()
    rest.pool_manager = aiohttp.ClientSession(
        connector=connector, trust_env=False, read_bufsize=2**21
    )


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
