"""receiver/poller/credentials.py: what a git call is given, and that secrets stay off argv.

Keys are real (`ssh-keygen`); git really runs against loopback listeners that, while the call
is in flight, read every process's command line from /proc: the secret must be in none of
them, and the credential files must be private and gone afterwards.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shlex
import socket
import stat
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from receiver.errors import CredentialsInvalid, RemoteError
from receiver.poller import credentials
from receiver.poller.runner import GitPythonLsRemote
from tests import envtest
from tests.support.ls_remote import SubprocessLsRemote

KNOWN_HOSTS = (
    b"[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBogusBogusBogusBogusBogusBog\n"
)


def _keygen(tmp_path: Path, *, passphrase: str) -> bytes:
    key = tmp_path / f"id_{len(passphrase)}"
    subprocess.run(
        [
            "ssh-keygen",
            "-q",
            "-t",
            "ed25519",
            "-N",
            passphrase,
            "-C",
            "poller-test",
            "-f",
            str(key),
        ],
        check=True,
        timeout=30,
    )
    return key.read_bytes()


def _config(env: dict[str, str]) -> dict[str, str]:
    count = int(env["GIT_CONFIG_COUNT"])
    return {env[f"GIT_CONFIG_KEY_{i}"]: env[f"GIT_CONFIG_VALUE_{i}"] for i in range(count)}


def _ssh_paths(command: str) -> tuple[list[str], Path, Path]:
    argv = shlex.split(command)
    identity = Path(argv[argv.index("-i") + 1])
    options = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-o"]
    known = next(o.split("=", 1)[1] for o in options if o.startswith("UserKnownHostsFile="))
    return options, identity, Path(known)


def test_basic_auth_travels_as_git_config_env_only() -> None:
    auth = credentials.auth_from_secret({"username": b"flux", "password": b"pa55:word"})
    with credentials.git_environment(url="https://git.example/r.git", auth=auth) as env:
        config = _config(env)
    expected = base64.b64encode(b"flux:pa55:word").decode()
    assert config["http.extraHeader"] == f"Authorization: Basic {expected}"
    assert config["credential.helper"] == ""
    assert env["GIT_TERMINAL_PROMPT"] == "0" and env["GIT_ALLOW_PROTOCOL"] == "http:https:ssh:git"
    assert "GIT_SSH_COMMAND" not in env
    assert "pa55" not in repr(auth)


def test_bearer_token_header_and_refusals() -> None:
    auth = credentials.auth_from_secret({"bearerToken": b"tok-123"})
    with credentials.git_environment(url="https://git.example/r", auth=auth) as env:
        assert _config(env)["http.extraHeader"] == "Authorization: Bearer tok-123"

    mixed = credentials.auth_from_secret({"bearerToken": b"tok-123", "username": b"u"})
    with (
        pytest.raises(CredentialsInvalid) as both,
        credentials.git_environment(url="https://git.example/r", auth=mixed),
    ):
        pass
    assert "tok-123" not in str(both.value)

    with (
        pytest.raises(CredentialsInvalid, match="plain http"),
        credentials.git_environment(url="http://git.example/r", auth=auth),
    ):
        pass


def test_ca_certificate_goes_to_a_private_file_removed_after() -> None:
    auth = credentials.auth_from_secret({"ca.crt": b"-----BEGIN CERTIFICATE-----\nMII\n"})
    with credentials.git_environment(url="https://git.example/r", auth=auth) as env:
        ca = Path(_config(env)["http.sslCAInfo"])
        assert stat.S_IMODE(ca.stat().st_mode) == 0o600
        assert stat.S_IMODE(ca.parent.stat().st_mode) == 0o700
        assert ca.read_bytes().startswith(b"-----BEGIN CERTIFICATE")
    assert not ca.parent.exists()


def test_ssh_identity_and_known_hosts_are_private_files_removed_after(tmp_path: Path) -> None:
    identity = _keygen(tmp_path, passphrase="")
    auth = credentials.auth_from_secret({"identity": identity, "known_hosts": KNOWN_HOSTS})
    with credentials.git_environment(url="ssh://git@127.0.0.1:2222/r.git", auth=auth) as env:
        command = env["GIT_SSH_COMMAND"]
        options, key_file, known_file = _ssh_paths(command)
        assert key_file.read_bytes() == identity
        assert known_file.read_bytes() == KNOWN_HOSTS
        for path in (key_file, known_file):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert key_file.parent == known_file.parent
        assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert shlex.split(command)[:3] == ["ssh", "-F", "/dev/null"]
    for option in ("StrictHostKeyChecking=yes", "IdentitiesOnly=yes", "BatchMode=yes"):
        assert option in options
    assert "PRIVATE KEY" not in command and identity.decode() not in command
    assert not key_file.parent.exists()


def test_ssh_files_are_removed_when_the_call_fails(tmp_path: Path) -> None:
    auth = credentials.auth_from_secret(
        {"identity": _keygen(tmp_path, passphrase=""), "known_hosts": KNOWN_HOSTS}
    )
    with (
        pytest.raises(RuntimeError),
        credentials.git_environment(url="ssh://h/r", auth=auth) as env,
    ):
        _, key_file, _ = _ssh_paths(env["GIT_SSH_COMMAND"])
        raise RuntimeError("git failed")
    assert not key_file.parent.exists()


def test_encrypted_pem_key_is_decrypted_in_memory() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"correct horse"),
    )
    auth = credentials.auth_from_secret(
        {"identity": encrypted, "known_hosts": KNOWN_HOSTS, "password": b"correct horse"}
    )
    with credentials.git_environment(url="ssh://h/r", auth=auth) as env:
        options, key_file, _ = _ssh_paths(env["GIT_SSH_COMMAND"])
        usable = serialization.load_ssh_private_key(key_file.read_bytes(), password=None)
        assert env["SSH_ASKPASS"] == "" and "BatchMode=yes" in options
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    assert usable.public_key().public_bytes(*raw) == key.public_key().public_bytes(*raw)

    wrong = credentials.auth_from_secret(
        {"identity": encrypted, "known_hosts": KNOWN_HOSTS, "password": b"wrong horse"}
    )
    with (
        pytest.raises(CredentialsInvalid) as failed,
        credentials.git_environment(url="ssh://h/r", auth=wrong),
    ):
        pass
    assert "horse" not in str(failed.value)


def test_encrypted_openssh_key_is_left_to_ssh_with_a_private_askpass(tmp_path: Path) -> None:
    encrypted = _keygen(tmp_path, passphrase="correct horse")
    auth = credentials.auth_from_secret(
        {"identity": encrypted, "known_hosts": KNOWN_HOSTS, "password": b"correct horse"}
    )
    with credentials.git_environment(url="ssh://h/r", auth=auth) as env:
        command = env["GIT_SSH_COMMAND"]
        options, key_file, _ = _ssh_paths(command)
        askpass = Path(env["SSH_ASKPASS"])
        assert env["SSH_ASKPASS_REQUIRE"] == "force"
        assert askpass.parent == key_file.parent
        assert stat.S_IMODE(askpass.stat().st_mode) == 0o700
        printed = subprocess.run([askpass], capture_output=True, check=True, timeout=10).stdout
        assert printed == b"correct horse\n"
        # What ssh will do with it: the printed passphrase opens the key file.
        public = subprocess.run(
            ["ssh-keygen", "-y", "-P", printed.decode().strip(), "-f", str(key_file)],
            capture_output=True,
            check=True,
            timeout=10,
        ).stdout
        assert public.startswith(b"ssh-ed25519 ")
    assert "correct horse" not in command and "horse" not in askpass.name
    assert "PasswordAuthentication=no" in options and "BatchMode=yes" not in options
    assert not askpass.parent.exists()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"identity": b"k"}, id="no-known-hosts"),
        pytest.param({"known_hosts": KNOWN_HOSTS}, id="no-identity"),
    ],
)
def test_incomplete_ssh_secret_is_refused(data: dict[str, bytes]) -> None:
    auth = credentials.auth_from_secret(data)
    with (
        pytest.raises(CredentialsInvalid),
        credentials.git_environment(url="ssh://h/r", auth=auth),
    ):
        pass


@dataclass
class Snoop:
    """What a loopback listener saw while git was connected to it."""

    port: int
    greeting: bytes = b""
    cmdlines: list[str] = field(default_factory=list)
    environs: list[bytes] = field(default_factory=list)


def _processes_mentioning(needle: str) -> Iterator[tuple[str, bytes]]:
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            if needle in cmdline and "pytest" not in cmdline:
                yield cmdline, Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue


@pytest.fixture
def snooping_listener() -> Iterator[Snoop]:
    """Accepts one connection, reads the client's first bytes, snapshots /proc, hangs up."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.settimeout(30)
    snoop = Snoop(port=int(server.getsockname()[1]))

    def serve() -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(10)
            for cmdline, environ in _processes_mentioning(str(snoop.port)):
                snoop.cmdlines.append(cmdline)
                snoop.environs.append(environ)
            with contextlib.suppress(OSError):
                snoop.greeting = conn.recv(256)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield snoop
    server.close()
    thread.join(timeout=30)


async def test_ssh_call_runs_ssh_with_the_key_file_and_no_secret_in_argv(
    tmp_path: Path, snooping_listener: Snoop
) -> None:
    identity = _keygen(tmp_path, passphrase="")
    auth = credentials.auth_from_secret({"identity": identity, "known_hosts": KNOWN_HOSTS})
    url = f"ssh://git@127.0.0.1:{snooping_listener.port}/repo.git"
    with credentials.git_environment(url=url, auth=auth) as env:
        _, key_file, _ = _ssh_paths(env["GIT_SSH_COMMAND"])
        with pytest.raises(RemoteError):
            await SubprocessLsRemote()(url=url, env=env, timeout_s=20)

    assert snooping_listener.greeting.startswith(b"SSH-2.0-")
    ssh_lines = [c for c in snooping_listener.cmdlines if c.startswith("ssh ")]
    assert ssh_lines and all(f"-i {key_file}" in c for c in ssh_lines)
    assert all("BatchMode=yes" in c for c in ssh_lines)
    secret_line = identity.decode().splitlines()[1]
    assert not any(secret_line in c for c in snooping_listener.cmdlines)
    assert not key_file.parent.exists()


async def test_http_password_is_in_the_child_environment_not_its_argv(
    snooping_listener: Snoop,
) -> None:
    password = "Hunter2-visible-only-in-environ"
    auth = credentials.auth_from_secret({"username": b"flux", "password": password.encode()})
    url = f"http://127.0.0.1:{snooping_listener.port}/repo.git"
    with (
        credentials.git_environment(url=url, auth=auth, allow_insecure_http=True) as env,
        pytest.raises(RemoteError),
    ):
        await SubprocessLsRemote()(url=url, env=env, timeout_s=20)

    assert snooping_listener.greeting.startswith(b"GET /repo.git/info/refs")
    assert snooping_listener.cmdlines, "git was not seen in /proc while connected"
    header = base64.b64encode(f"flux:{password}".encode())
    assert not any(password in c or header.decode() in c for c in snooping_listener.cmdlines)
    assert any(header in environ for environ in snooping_listener.environs)


async def test_the_child_gets_no_inherited_git_variable_and_the_secret_ca_wins(
    snooping_listener: Snoop, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """git turns tracing on when GIT_CURL_VERBOSE merely exists, and an inherited
    GIT_SSL_CAINFO beats `http.sslCAInfo`: the service's own git variables never reach the
    child, and the Secret's ca.crt is the CA it uses."""
    monkeypatch.setenv("GIT_CURL_VERBOSE", "0")
    monkeypatch.setenv("GIT_TRACE", "1")
    monkeypatch.setenv("GIT_SSL_CAINFO", "/inherited/ca.pem")
    # A valid CA: curl loads it before it connects.
    envtest.write_pki(tmp_path)
    auth = credentials.auth_from_secret({"ca.crt": (tmp_path / "ca.crt").read_bytes()})
    url = f"https://127.0.0.1:{snooping_listener.port}/repo.git"
    backend = GitPythonLsRemote(max_threads=1)
    try:
        with credentials.git_environment(url=url, auth=auth) as env, pytest.raises(RemoteError):
            await backend(url=url, env=env, timeout_s=20)
    finally:
        backend.close()

    assert snooping_listener.environs, "git was not seen in /proc while connected"
    for environ in snooping_listener.environs:
        variables = dict(item.split(b"=", 1) for item in environ.split(b"\0") if b"=" in item)
        assert b"GIT_CURL_VERBOSE" not in variables
        assert b"GIT_TRACE" not in variables
        assert variables[b"GIT_SSL_CAINFO"] != b"/inherited/ca.pem"
        assert variables[b"GIT_SSL_CAINFO"].endswith(b"/ca.crt")
