"""A real kube-apiserver and etcd on loopback for the integration tests, envtest style.

How it works, in order:
1. `locate_binaries()` finds `kube-apiserver` and `etcd`: in `$KUBEBUILDER_ASSETS` (a folder
   holding both, the controller-runtime envtest convention), else in the cache folder
   `~/.cache/gitops-receiver/k8s/<version>/` (honours `$GITOPS_RECEIVER_CACHE`, `$XDG_CACHE_HOME`),
   else it runs `scripts/build-envtest.sh` once, which builds both with the machine's Go toolchain
   (minutes, once; it prints one line saying so). With no binaries and no Go it returns a reason
   string: the caller skips with it, or fails when `ci_requires_cluster()` (env `CI=true`).
2. `KubeTestServer.start()` makes a temp folder with a CA and a serving certificate for 127.0.0.1
   (cryptography), a service-account signing key, and a static token file whose one user is in
   `system:masters`; starts etcd on two free loopback ports with a temp data dir, then
   kube-apiserver (secure port only, RBAC, flags as controller-runtime's envtest uses) on a free
   loopback port; waits for `/readyz` (bounded; on failure the error carries the apiserver log
   tail); writes a kubeconfig. `stop_apiserver()`/`start_apiserver()` restart only the apiserver
   on the same port with the same etcd; `stop()` kills both and removes the folder. Children get
   SIGKILL if the test process dies (Linux PR_SET_PDEATHSIG), `stop()` also runs at exit, and
   folders left by a killed run are removed by the next start.
3. `install_crds()` server-side-applies CRDs from a list of folders (the first folder that
   defines a CRD wins: Flux's real CRDs first, see `tests/support/flux.py`, then the minimal
   ones in `tests/crds/` for kinds no real CRD can be had for) and waits until each is
   Established, in discovery, and listable: a fresh or restarted apiserver answers 429
   "storage is (re)initializing" for a while after /readyz, so (re)starts wait for that too.
Test code only: nothing in `receiver/` may import this. There is no kube-controller-manager, so
namespaces never finish deleting by themselves; `delete_namespace()` purges and finalizes them.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import ctypes
import ctypes.util
import datetime
import functools
import http.client
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

K8S_VERSION = "v1.36.3"
ETCD_VERSION = "v3.6.16"
REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build-envtest.sh"
MINIMAL_CRD_DIR = Path(__file__).resolve().parent / "crds"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 15.0
CRD_TIMEOUT_S = 60.0
POLL_INTERVAL_S = 0.2
LOG_TAIL_LINES = 40
ADMIN_USER = "envtest-admin"
FIELD_MANAGER = "gitops-receiver-tests"
WORK_DIR_PREFIX = "gitops-receiver-envtest-"
OWNER_FILE = "owner.pid"
# Namespaced kinds purged by delete_namespace (core plus every installed CRD).
_CORE_PURGE_PATHS = (
    "/api/v1/namespaces/{ns}/secrets",
    "/api/v1/namespaces/{ns}/configmaps",
    "/api/v1/namespaces/{ns}/events",
)
# Lists that must answer 200 before a (re)started apiserver counts as usable.
_CORE_LIST_PATHS = ("/api/v1/namespaces", "/api/v1/secrets", "/api/v1/configmaps")


class EnvtestError(RuntimeError):
    """The test control plane could not be built, started or configured."""


@dataclass(frozen=True, slots=True)
class Binaries:
    """Where kube-apiserver and etcd were found, and by which rule (for the log line)."""

    folder: Path
    origin: str

    @property
    def kube_apiserver(self) -> Path:
        return self.folder / "kube-apiserver"

    @property
    def etcd(self) -> Path:
        return self.folder / "etcd"


def cache_folder() -> Path:
    """The cache folder scripts/build-envtest.sh builds into (same rules as the script)."""
    root = os.environ.get("GITOPS_RECEIVER_CACHE")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = str(Path(xdg) / "gitops-receiver")
    return Path(root) / "k8s" / K8S_VERSION


def ci_requires_cluster() -> bool:
    """Under CI=true a missing control plane is a failure, never a skip."""
    return os.environ.get("CI", "").strip().lower() == "true"


def _has_binaries(folder: Path) -> bool:
    return all(os.access(folder / name, os.X_OK) for name in ("kube-apiserver", "etcd"))


def _stderr_line(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def locate_binaries(
    *, build: bool = True, notify: Callable[[str], None] = _stderr_line
) -> Binaries | str:
    """Find (or build once) the binaries; a string return is the reason they are unavailable.

    A `$KUBEBUILDER_ASSETS` that is set but lacks either binary is a configuration mistake and
    raises instead of falling through. A build that starts and fails raises with its log tail.
    """
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets:
        if _has_binaries(Path(assets)):
            return Binaries(folder=Path(assets), origin="KUBEBUILDER_ASSETS")
        raise EnvtestError(f"KUBEBUILDER_ASSETS={assets} lacks an executable kube-apiserver/etcd")
    cache = cache_folder()
    if _has_binaries(cache):
        return Binaries(folder=cache, origin="cache")
    if not build or shutil.which("go") is None:
        return (
            f"no kube-apiserver/etcd in $KUBEBUILDER_ASSETS or {cache}, and no Go toolchain to "
            f"build them: install Go and run {BUILD_SCRIPT.relative_to(REPO_ROOT)}"
        )
    _run_build_script(destination=cache, notify=notify)
    if not _has_binaries(cache):
        raise EnvtestError(f"{BUILD_SCRIPT.name} finished but {cache} lacks the binaries")
    return Binaries(folder=cache, origin="built")


def _run_build_script(*, destination: Path, notify: Callable[[str], None]) -> None:
    """Run the build script; its `build-envtest:` lines go to `notify`, the rest is kept."""
    proc = subprocess.Popen(
        ["bash", str(BUILD_SCRIPT), str(destination)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "K8S_VERSION": K8S_VERSION, "ETCD_VERSION": ETCD_VERSION},
    )
    kept: list[str] = []
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = raw.rstrip("\n")
        kept.append(line)
        if line.startswith("build-envtest:"):
            notify(line)
    if proc.wait() != 0:
        tail = "\n".join(kept[-LOG_TAIL_LINES:])
        raise EnvtestError(f"{BUILD_SCRIPT.name} failed (exit {proc.returncode}):\n{tail}")


# --- certificates and keys -------------------------------------------------------------------


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_pki(folder: Path) -> None:
    """CA, a serving cert for 127.0.0.1/localhost signed by it, and a service-account key."""
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    not_before = now - datetime.timedelta(hours=1)
    not_after = now + datetime.timedelta(days=2)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gitops-receiver-envtest-ca")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    serving_key = ec.generate_private_key(ec.SECP256R1())
    serving_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(serving_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    (folder / "ca.crt").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    (folder / "apiserver.crt").write_bytes(serving_cert.public_bytes(serialization.Encoding.PEM))
    (folder / "apiserver.key").write_bytes(_pem_key(serving_key))
    sa_key = ec.generate_private_key(ec.SECP256R1())
    (folder / "sa.key").write_bytes(_pem_key(sa_key))
    (folder / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def write_kubeconfig(
    path: Path, *, server: str, token: str, ca_path: Path | None = None, namespace: str = "default"
) -> Path:
    """A one-context kubeconfig with a bearer token (`ca_path` only for https servers)."""
    cluster: dict[str, str] = {"server": server}
    if ca_path is not None:
        cluster["certificate-authority"] = str(ca_path)
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "envtest", "cluster": cluster}],
        "users": [{"name": ADMIN_USER, "user": {"token": token}}],
        "contexts": [
            {
                "name": "envtest",
                "context": {"cluster": "envtest", "user": ADMIN_USER, "namespace": namespace},
            }
        ],
        "current-context": "envtest",
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    path.chmod(0o600)
    return path


# --- a tiny synchronous HTTP client for fixtures ---------------------------------------------


@dataclass(frozen=True, slots=True)
class KubeHttp:
    """Blocking JSON calls to an API server: for fixtures and set-up, never for product code."""

    url: str
    token: str
    ca_path: Path | None

    @classmethod
    def from_kubeconfig(cls, path: Path) -> KubeHttp:
        document = yaml.safe_load(path.read_text())
        context_name = document["current-context"]
        context = next(c["context"] for c in document["contexts"] if c["name"] == context_name)
        cluster = next(
            c["cluster"] for c in document["clusters"] if c["name"] == context["cluster"]
        )
        user = next(u["user"] for u in document["users"] if u["name"] == context["user"])
        ca = cluster.get("certificate-authority")
        return cls(url=cluster["server"], token=user["token"], ca_path=Path(ca) if ca else None)

    def _connection(self, timeout_s: float) -> http.client.HTTPConnection:
        parts = urlsplit(self.url)
        host = parts.hostname or "127.0.0.1"
        if parts.scheme == "https":
            context = ssl.create_default_context(cafile=str(self.ca_path) if self.ca_path else None)
            return http.client.HTTPSConnection(
                host, parts.port or 443, timeout=timeout_s, context=context
            )
        return http.client.HTTPConnection(host, parts.port or 80, timeout=timeout_s)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: object | None = None,
        content_type: str = "application/json",
        timeout_s: float = 10.0,
    ) -> tuple[int, Any]:
        """Send one request; returns (status, decoded JSON or text). Raises OSError if down."""
        connection = self._connection(timeout_s)
        try:
            headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
            payload = None
            if body is not None:
                payload = body if isinstance(body, bytes) else json.dumps(body).encode()
                headers["Content-Type"] = content_type
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            raw = response.read()
        finally:
            connection.close()
        text = raw.decode("utf-8", "replace")
        if response.getheader("Content-Type", "").startswith("application/json"):
            return response.status, json.loads(text)
        return response.status, text


# --- processes -------------------------------------------------------------------------------


def free_port() -> int:
    """A port free on 127.0.0.1 right now (the usual small race is accepted, as envtest does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    libc_name = ctypes.util.find_library("c")
    if libc_name and sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(libc_name, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


# PR_SET_PDEATHSIG fires when the parent *thread* exits, not the process. Children are spawned
# from this one long-lived thread, so `asyncio.to_thread(server.start_apiserver)` in a test does
# not get its apiserver killed when the event loop's worker thread goes away.
_SPAWNER = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="envtest-spawn")


def spawn(
    args: list[str], *, log_path: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """A child process that is killed when this test process dies; output to `log_path`."""

    def start() -> subprocess.Popen[bytes]:
        with log_path.open("ab") as log:
            return subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                preexec_fn=_die_with_parent,  # only calls prctl(2) in the child
            )

    return _SPAWNER.submit(start).result()


def _terminate(process: subprocess.Popen[bytes] | None, *, graceful: bool = True) -> None:
    if process is None or process.poll() is not None:
        return
    if graceful:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_TIMEOUT_S)
            return
    process.kill()
    process.wait(timeout=STOP_TIMEOUT_S)


def _remove_stale_work_dirs() -> None:
    """Remove work folders left by test processes that were killed (SIGKILL skips `stop()`).

    Only folders whose owner process is gone are removed, so parallel sessions are safe.
    """
    for folder in Path(tempfile.gettempdir()).glob(f"{WORK_DIR_PREFIX}*"):
        try:
            owner = int((folder / OWNER_FILE).read_text())
            os.kill(owner, 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (OSError, ValueError):
            continue


def _log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class KubeTestServer:
    """etcd + kube-apiserver on loopback, admin access by bearer token. See the module docstring."""

    def __init__(self, *, binaries: Binaries, start_timeout_s: float = START_TIMEOUT_S) -> None:
        self.binaries = binaries
        self.start_timeout_s = start_timeout_s
        self.work_dir: Path | None = None
        self.token = secrets.token_hex(24)
        self.port = 0
        self.etcd_port = 0
        self.etcd_peer_port = 0
        self._etcd: subprocess.Popen[bytes] | None = None
        self._apiserver: subprocess.Popen[bytes] | None = None
        self._atexit_registered = False
        self.installed_crds: list[CrdInfo] = []

    # paths and addresses, valid after start()
    def _dir(self) -> Path:
        if self.work_dir is None:
            raise EnvtestError("KubeTestServer is not started")
        return self.work_dir

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.etcd_port}"

    @property
    def ca_path(self) -> Path:
        return self._dir() / "pki" / "ca.crt"

    @property
    def token_file(self) -> Path:
        return self._dir() / "token.csv"

    @property
    def kubeconfig_path(self) -> Path:
        return self._dir() / "kubeconfig"

    @property
    def apiserver_log_path(self) -> Path:
        return self._dir() / "kube-apiserver.log"

    @property
    def etcd_log_path(self) -> Path:
        return self._dir() / "etcd.log"

    @property
    def http(self) -> KubeHttp:
        return KubeHttp(url=self.url, token=self.token, ca_path=self.ca_path)

    def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        """Shortcut for `self.http.request` (blocking; for fixtures and sync tests)."""
        return self.http.request(method, path, **kwargs)

    # lifecycle
    def __enter__(self) -> KubeTestServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if self.work_dir is not None:
            raise EnvtestError("KubeTestServer already started")
        _remove_stale_work_dirs()
        self.work_dir = Path(tempfile.mkdtemp(prefix=WORK_DIR_PREFIX))
        (self.work_dir / OWNER_FILE).write_text(str(os.getpid()))
        if not self._atexit_registered:
            atexit.register(self.stop)
            self._atexit_registered = True
        try:
            write_pki(self.work_dir / "pki")
            self.token_file.write_text(f'{self.token},{ADMIN_USER},{ADMIN_USER},"system:masters"\n')
            self.token_file.chmod(0o600)
            self.etcd_port, self.etcd_peer_port, self.port = free_port(), free_port(), free_port()
            self._start_etcd()
            self.start_apiserver()
            write_kubeconfig(
                self.kubeconfig_path, server=self.url, token=self.token, ca_path=self.ca_path
            )
        except BaseException:
            self.stop()
            raise

    def _start_etcd(self) -> None:
        work = self._dir()
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        self._etcd = spawn(
            [
                str(self.binaries.etcd),
                "--name=envtest",
                f"--data-dir={work / 'etcd-data'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=envtest={peer}",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
            log_path=self.etcd_log_path,
        )
        probe = KubeHttp(url=self.etcd_url, token="", ca_path=None)
        self._wait_until(
            "etcd /health",
            lambda: probe.request("GET", "/health", timeout_s=2)[0] == 200,
            process=self._etcd,
            log_path=self.etcd_log_path,
        )

    def _apiserver_args(self) -> list[str]:
        pki = self._dir() / "pki"
        return [
            str(self.binaries.kube_apiserver),
            f"--etcd-servers={self.etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.port}",
            f"--cert-dir={pki}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--token-auth-file={self.token_file}",
            "--authorization-mode=RBAC",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--allow-privileged=true",
            # No controller-manager runs, so no default ServiceAccount would ever appear.
            "--disable-admission-plugins=ServiceAccount",
            f"--service-account-issuer={self.url}/",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--endpoint-reconciler-type=none",
            # Close open watches promptly on SIGTERM instead of holding shutdown open.
            "--shutdown-watch-termination-grace-period=1s",
        ]

    def start_apiserver(self) -> None:
        """Start kube-apiserver (again) on `self.port` and wait for /readyz."""
        if self._apiserver is not None and self._apiserver.poll() is None:
            raise EnvtestError("kube-apiserver is already running")
        self._apiserver = spawn(self._apiserver_args(), log_path=self.apiserver_log_path)
        self._wait_until(
            "kube-apiserver /readyz",
            self._ready,
            process=self._apiserver,
            log_path=self.apiserver_log_path,
        )
        wait_until_listable(
            self.http,
            paths=[*_CORE_LIST_PATHS, *crd_list_paths(self.installed_crds)],
            timeout_s=self.start_timeout_s,
        )

    def install_crds(self, crd_dirs: Sequence[Path]) -> list[CrdInfo]:
        """Install the CRDs (see `install_crds`); restarts then wait until they are listable."""
        installed = install_crds(kubeconfig_path=self.kubeconfig_path, crd_dirs=crd_dirs)
        known = {crd.name for crd in installed}
        self.installed_crds = [
            *installed,
            *(crd for crd in self.installed_crds if crd.name not in known),
        ]
        return installed

    def _ready(self) -> bool:
        status, body = self.request("GET", "/readyz", timeout_s=2)
        return status == 200 and str(body).strip() == "ok"

    def stop_apiserver(self, *, graceful: bool = True) -> None:
        """Stop kube-apiserver only; etcd and its data stay, the port is reused on restart."""
        _terminate(self._apiserver, graceful=graceful)
        self._apiserver = None

    def stop(self) -> None:
        """Kill everything and remove the temp folder; safe to call twice."""
        try:
            _terminate(self._apiserver)
            _terminate(self._etcd)
        finally:
            self._apiserver = self._etcd = None
            if self.work_dir is not None:
                shutil.rmtree(self.work_dir, ignore_errors=True)
                self.work_dir = None

    def _wait_until(
        self,
        what: str,
        probe: Callable[[], bool],
        *,
        process: subprocess.Popen[bytes],
        log_path: Path,
    ) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise EnvtestError(
                    f"{what}: process exited with {process.returncode}; log tail:\n"
                    f"{_log_tail(log_path)}"
                )
            try:
                if probe():
                    return
                last_error = "not ready"
            except (OSError, http.client.HTTPException) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            time.sleep(POLL_INTERVAL_S)
        raise EnvtestError(
            f"{what} not ready after {self.start_timeout_s:.0f}s ({last_error}); log tail:\n"
            f"{_log_tail(log_path)}"
        )

    # namespaces
    def create_namespace(self, *, prefix: str = "t-") -> str:
        """Create a namespace with a random name and return the name."""
        name = f"{prefix}{secrets.token_hex(4)}"
        status, body = self.request("POST", "/api/v1/namespaces", body={"metadata": {"name": name}})
        if status != 201:
            raise EnvtestError(f"creating namespace {name}: HTTP {status}: {body}")
        return name

    def delete_namespace(self, name: str) -> None:
        """Delete a namespace for real: purge its objects, delete it, clear its finalizer.

        Without kube-controller-manager a deleted namespace stays Terminating with all its
        objects, which cluster-wide watches in later tests would keep seeing.
        """
        paths = [p.format(ns=name) for p in _CORE_PURGE_PATHS]
        paths += [
            f"/apis/{crd.group}/{crd.storage_version}/namespaces/{name}/{crd.plural}"
            for crd in self.installed_crds
        ]
        for path in paths:
            self.request("DELETE", path)
        status, body = self.request("DELETE", f"/api/v1/namespaces/{name}")
        if status not in (200, 202, 404):
            raise EnvtestError(f"deleting namespace {name}: HTTP {status}: {body}")
        status, current = self.request("GET", f"/api/v1/namespaces/{name}")
        if status == 200:
            current["spec"] = {"finalizers": []}
            self.request("PUT", f"/api/v1/namespaces/{name}/finalize", body=current)


# --- CRDs ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CrdInfo:
    name: str
    group: str
    plural: str
    kind: str
    served_versions: tuple[str, ...]
    storage_version: str
    manifest: dict[str, Any]


def load_crds(crd_dirs: Sequence[Path]) -> list[CrdInfo]:
    """Every CustomResourceDefinition in the YAML files of `crd_dirs`; a CRD name found in an
    earlier folder hides the same name in a later one (real CRDs before minimal ones)."""
    found: list[CrdInfo] = []
    names: set[str] = set()
    paths = [path for crd_dir in crd_dirs for path in sorted(crd_dir.glob("*.yaml"))]
    for path in paths:
        for document in yaml.safe_load_all(path.read_text()):
            if not document or document.get("kind") != "CustomResourceDefinition":
                continue
            if document["metadata"]["name"] in names:
                continue
            names.add(document["metadata"]["name"])
            spec = document["spec"]
            versions = spec["versions"]
            found.append(
                CrdInfo(
                    name=document["metadata"]["name"],
                    group=spec["group"],
                    plural=spec["names"]["plural"],
                    kind=spec["names"]["kind"],
                    served_versions=tuple(v["name"] for v in versions if v.get("served")),
                    storage_version=next(v["name"] for v in versions if v.get("storage")),
                    manifest=document,
                )
            )
    return found


def _conditions_true(body: Any, wanted: Iterable[str]) -> bool:
    conditions = (body.get("status") or {}).get("conditions") or []
    true = {c.get("type") for c in conditions if c.get("status") == "True"}
    return set(wanted) <= true


def _poll(what: str, probe: Callable[[], bool], *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not probe():
        if time.monotonic() >= deadline:
            raise EnvtestError(f"{what} not reached after {timeout_s:.0f}s")
        time.sleep(POLL_INTERVAL_S)


def install_crds(
    *, kubeconfig_path: Path, crd_dirs: Sequence[Path], timeout_s: float = CRD_TIMEOUT_S
) -> list[CrdInfo]:
    """Server-side apply every CRD of `crd_dirs` (see `load_crds`); return once all are
    Established and served."""
    api = KubeHttp.from_kubeconfig(kubeconfig_path)
    crds = load_crds(crd_dirs)
    base = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    for crd in crds:
        status, body = api.request(
            "PATCH",
            f"{base}/{crd.name}?fieldManager={FIELD_MANAGER}&force=true",
            body=crd.manifest,
            content_type="application/apply-patch+yaml",
        )
        if status not in (200, 201):
            raise EnvtestError(f"applying CRD {crd.name}: HTTP {status}: {body}")

    def established(name: str) -> bool:
        status, body = api.request("GET", f"{base}/{name}")
        return status == 200 and _conditions_true(body, ("Established", "NamesAccepted"))

    def discoverable(group_version: str, plurals: set[str]) -> bool:
        status, body = api.request("GET", f"/apis/{group_version}")
        if status != 200:
            return False
        return plurals <= {r.get("name") for r in body.get("resources", [])}

    for crd in crds:
        _poll(
            f"CRD {crd.name} Established",
            functools.partial(established, crd.name),
            timeout_s=timeout_s,
        )
    wanted: dict[str, set[str]] = {}
    for crd in crds:
        for version in crd.served_versions:
            wanted.setdefault(f"{crd.group}/{version}", set()).add(crd.plural)
    for group_version, plurals in sorted(wanted.items()):
        _poll(
            f"discovery of {group_version}",
            functools.partial(discoverable, group_version, plurals),
            timeout_s=timeout_s,
        )
    wait_until_listable(api, paths=crd_list_paths(crds), timeout_s=timeout_s)
    return crds


def crd_list_paths(crds: Iterable[CrdInfo]) -> list[str]:
    """The cluster-wide list path of every served version of every CRD."""
    return [
        f"/apis/{crd.group}/{version}/{crd.plural}"
        for crd in crds
        for version in crd.served_versions
    ]


def wait_until_listable(api: KubeHttp, *, paths: Iterable[str], timeout_s: float) -> None:
    """Wait until each list path answers 200.

    A fresh (or restarted) apiserver answers 429 "storage is (re)initializing" for a resource
    until its watch cache is ready, even after /readyz and Established say ok.
    """

    def answers(path: str) -> bool:
        return api.request("GET", f"{path}?limit=1")[0] == 200

    for path in paths:
        _poll(f"GET {path} answering 200", functools.partial(answers, path), timeout_s=timeout_s)


@contextlib.contextmanager
def running_server(
    *, binaries: Binaries, crd_dirs: Sequence[Path] = ()
) -> Iterator[KubeTestServer]:
    """Start a server (with the CRDs of `crd_dirs` installed), yield it, always stop it."""
    server = KubeTestServer(binaries=binaries)
    try:
        server.start()
        if crd_dirs:
            server.install_crds(crd_dirs)
        yield server
    finally:
        server.stop()
