"""Git credentials from a GitRepository's `spec.secretRef`, handed to one git call at a time.

Edge: reads Flux's Secret keys (`username`/`password`, `bearerToken`, `ca.crt`, SSH `identity`,
`known_hosts`, `password` for an encrypted key) and yields the environment for the git child.
Secrets never reach a command line, a log line or an exception message: HTTP auth travels as
`GIT_CONFIG_*` variables of the child only; SSH keys (decrypted in memory when possible, else
through an askpass reading a file) sit in 0600 files in a private 0700 directory that is
removed when the context exits.
"""

from __future__ import annotations

import base64
import os
import shlex
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from receiver.errors import CredentialsInvalid

# The child inherits nothing that could prompt, trace, or pick up host configuration. Tracing
# variables are absent, not "0": git turns GIT_CURL_VERBOSE on when it merely exists.
_BASE_ENV: Mapping[str, str] = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ASKPASS": "",
    "SSH_ASKPASS": "",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_ALLOW_PROTOCOL": "http:https:ssh:git",
    "LC_ALL": "C",
}
# Inherited variables dropped from the child's environment: every GIT_* one (an inherited
# GIT_SSL_CAINFO would beat the Secret's ca.crt, GIT_CURL_VERBOSE/GIT_TRACE* would print
# headers, GIT_DIR/GIT_CONFIG* would change what git reads) and curl's own verbosity switch.
_DROPPED_PREFIXES = ("GIT_",)
_DROPPED_NAMES = frozenset({"CURL_VERBOSE"})

# Keys of a Flux git Secret (source-controller docs, GitRepository "Secret reference").
USERNAME_KEY = "username"
PASSWORD_KEY = "password"
BEARER_TOKEN_KEY = "bearerToken"
CA_KEYS = ("ca.crt", "caFile")
IDENTITY_KEY = "identity"
KNOWN_HOSTS_KEY = "known_hosts"


@dataclass(frozen=True, slots=True)
class GitAuth:
    """A parsed git Secret. Fields hold secrets, so none of them shows in `repr`."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    bearer_token: str | None = field(default=None, repr=False)
    ca_cert: bytes | None = field(default=None, repr=False)
    identity: bytes | None = field(default=None, repr=False)
    known_hosts: bytes | None = field(default=None, repr=False)


def auth_from_secret(data: Mapping[str, bytes]) -> GitAuth:
    """Read Flux's keys from decoded Secret data. Raises `CredentialsInvalid` on a bad mix.

    Which keys are used depends on the URL's scheme; `git_environment` checks the mix.
    """

    def text(key: str) -> str | None:
        value = data.get(key)
        if value is None or value == b"":
            return None
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CredentialsInvalid(f"secret key {key!r} is not UTF-8") from exc

    def raw(key: str) -> bytes | None:
        value = data.get(key)
        return value or None

    auth = GitAuth(
        username=text(USERNAME_KEY),
        password=text(PASSWORD_KEY),
        bearer_token=text(BEARER_TOKEN_KEY),
        ca_cert=next((data[k] for k in CA_KEYS if data.get(k)), None),
        identity=raw(IDENTITY_KEY),
        known_hosts=raw(KNOWN_HOSTS_KEY),
    )
    return auth


@contextmanager
def git_environment(
    *, url: str, auth: GitAuth | None, allow_insecure_http: bool = False
) -> Iterator[dict[str, str]]:
    """The environment variables to add for one git call to `url`; temporary files live until exit.

    HTTP(S): `http.extraHeader=Authorization: Basic|Bearer ...` and `http.sslCAInfo` through
    `GIT_CONFIG_COUNT`/`GIT_CONFIG_KEY_n`/`GIT_CONFIG_VALUE_n`, never argv. Credentials over
    plain `http://` are refused unless `allow_insecure_http` (loopback tests), as Flux does.
    SSH: `GIT_SSH_COMMAND` naming the identity and known_hosts files, strict host key
    checking, no agent identities, no user ssh config, no prompts but the key's passphrase.
    """
    scheme = urlsplit(url).scheme.lower()
    env = dict(_BASE_ENV)
    config: list[tuple[str, str]] = [("credential.helper", "")]
    private_dir: str | None = None
    try:
        if scheme in ("http", "https"):
            header = _authorization_header(auth)
            if header is not None and scheme == "http" and not allow_insecure_http:
                raise CredentialsInvalid("credentials over plain http:// are refused: use https://")
            if header is not None:
                config.append(("http.extraHeader", header))
            if auth is not None and auth.ca_cert:
                private_dir = tempfile.mkdtemp(prefix="gitops-receiver-git-")
                ca_path = _write_private(private_dir, "ca.crt", auth.ca_cert)
                config.append(("http.sslCAInfo", ca_path))
                # Also as the variable, which git ranks above the config: wins over an
                # inherited one even where the whole environment cannot be replaced.
                env["GIT_SSL_CAINFO"] = ca_path
        elif scheme == "ssh":
            if auth is not None and (auth.identity or auth.known_hosts):
                private_dir = tempfile.mkdtemp(prefix="gitops-receiver-ssh-")
                env.update(_ssh_env(private_dir, auth))
            else:
                env["GIT_SSH_COMMAND"] = "ssh -F /dev/null -o BatchMode=yes"
        env.update(_config_env(config))
        yield env
    finally:
        if private_dir is not None:
            shutil.rmtree(private_dir, ignore_errors=True)


def child_environment(*, inherited: Mapping[str, str], added: Mapping[str, str]) -> dict[str, str]:
    """The whole environment of one git child: `inherited` (the service's own: PATH, HOME,
    proxies, SSL_CERT_FILE) without any git or curl tracing/config variable, then `added`
    (what `git_environment` yields)."""
    kept = {
        name: value
        for name, value in inherited.items()
        if not name.startswith(_DROPPED_PREFIXES) and name not in _DROPPED_NAMES
    }
    return {**kept, **added}


def _authorization_header(auth: GitAuth | None) -> str | None:
    if auth is None:
        return None
    if auth.bearer_token:
        if auth.username or auth.password:
            # source-controller refuses the mix too ("basic auth and bearer token cannot be set").
            raise CredentialsInvalid("secret sets both basic auth and bearerToken: keep one")
        return f"Authorization: Bearer {auth.bearer_token}"
    if auth.username is not None or auth.password is not None:
        pair = f"{auth.username or ''}:{auth.password or ''}".encode()
        return f"Authorization: Basic {base64.b64encode(pair).decode('ascii')}"
    return None


def _ssh_env(private_dir: str, auth: GitAuth) -> dict[str, str]:
    """`GIT_SSH_COMMAND` (and, for a key ssh must decrypt itself, an askpass) for one call."""
    if not auth.identity:
        raise CredentialsInvalid("SSH secret has no 'identity' key: add the private key")
    if not auth.known_hosts:
        raise CredentialsInvalid("SSH secret has no 'known_hosts' key: add the host keys")
    env: dict[str, str] = {}
    identity = _with_newline(auth.identity)
    prompts = ["-o", "BatchMode=yes"]
    if auth.password:
        decrypted = _decrypt_identity(identity, passphrase=auth.password)
        if decrypted is not None:
            identity = decrypted
        else:
            # OpenSSH-format keys need `bcrypt` to decrypt in Python: let ssh decrypt it, with
            # an askpass that prints the passphrase from a 0600 file. BatchMode would forbid
            # the passphrase query, so password and keyboard-interactive logins are off instead.
            env.update(_askpass_env(private_dir, auth.password))
            prompts = [
                "-o",
                "PasswordAuthentication=no",
                "-o",
                "KbdInteractiveAuthentication=no",
                "-o",
                "NumberOfPasswordPrompts=1",
            ]
    identity_path = _write_private(private_dir, "identity", identity)
    known_hosts_path = _write_private(private_dir, "known_hosts", _with_newline(auth.known_hosts))
    env["GIT_SSH_COMMAND"] = shlex.join(
        [
            "ssh",
            "-F",
            "/dev/null",
            "-i",
            identity_path,
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            f"UserKnownHostsFile={known_hosts_path}",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
            *prompts,
        ]
    )
    return env


def _decrypt_identity(identity: bytes, *, passphrase: str) -> bytes | None:
    """The key unencrypted (OpenSSH format), the key itself if it was not encrypted (Flux
    tolerates a stray password), or None when this Python cannot decrypt it (no bcrypt)."""
    secret = passphrase.encode()
    try:
        if b"BEGIN OPENSSH PRIVATE KEY" in identity:
            key = serialization.load_ssh_private_key(identity, password=secret)
        else:
            key = serialization.load_pem_private_key(identity, password=secret)  # type: ignore[assignment]
    except UnsupportedAlgorithm:
        return None
    except TypeError:
        return identity  # "password was given but private key is not encrypted"
    except ValueError as exc:
        raise CredentialsInvalid("SSH identity cannot be decrypted with 'password'") from exc
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.OpenSSH,
        encryption_algorithm=serialization.NoEncryption(),
    )


def _askpass_env(private_dir: str, passphrase: str) -> dict[str, str]:
    passphrase_path = _write_private(private_dir, "passphrase", passphrase.encode() + b"\n")
    script = f"#!/bin/sh\nexec cat {shlex.quote(passphrase_path)}\n".encode()
    script_path = _write_private(private_dir, "askpass", script, mode=0o700)
    return {"SSH_ASKPASS": script_path, "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ""}


def _write_private(directory: str, name: str, content: bytes, *, mode: int = 0o600) -> str:
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
    return path


def _with_newline(content: bytes) -> bytes:
    return content if content.endswith(b"\n") else content + b"\n"


def _config_env(entries: list[tuple[str, str]]) -> dict[str, str]:
    env = {"GIT_CONFIG_COUNT": str(len(entries))}
    for index, (key, value) in enumerate(entries):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env
