# syntax=docker/dockerfile:1
#
# gitops-receiver container image.
#
#   docker build -t gitops-receiver:0.1.0 .
#   docker run --rm -p 9292:9292 -v $HOME/.kube/config:/tmp/kubeconfig:ro \
#     gitops-receiver:0.1.0 serve --kubeconfig /tmp/kubeconfig
#
# Two stages: `build` installs the locked runtime dependencies (requirements/runtime.txt,
# every package checked against its sha256) and then the package into a virtualenv; the runtime stage copies only that virtualenv onto a
# fresh slim image with git and the OpenSSH client (the poller runs `git ls-remote`).
# The runtime runs as the numeric non-root user 65532 and never writes outside /tmp, so it
# works under `readOnlyRootFilesystem: true` with an emptyDir mounted on /tmp.
#
# For reproducible builds pin the base image by digest, e.g.
#   docker build --build-arg PYTHON_IMAGE=python:3.11-slim@sha256:<digest> .

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: the package and its pinned dependencies in /opt/venv ------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

RUN python -m venv /opt/venv

WORKDIR /src
COPY requirements/runtime.txt ./requirements/runtime.txt
# The lock first, in its own layer: with --require-hashes pip refuses any package whose
# sha256 is not in the lock. It also pins setuptools, the build backend used next.
RUN /opt/venv/bin/pip install --no-cache-dir --require-hashes --no-deps -r requirements/runtime.txt

# pyproject.toml names README.md as the package's readme, so the build needs it.
COPY pyproject.toml README.md ./
COPY receiver ./receiver

# A regular (non-editable) install of the package alone: its dependencies came from the lock,
# the `dev` extra (pytest, ruff, mypy, ...) is not installed, and the locked setuptools builds
# it (no build isolation, so nothing unlocked is fetched). Every dependency ships a manylinux
# wheel for CPython 3.11, so no compiler is needed. pip byte-compiles the sources here, so
# nothing has to write .pyc files on the read-only root filesystem later.
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps --no-build-isolation /src

# --- runtime ------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="gitops-receiver" \
      org.opencontainers.image.description="Turns Git forge and registry webhooks into immediate Flux reconciliation, and reports back to the forge." \
      org.opencontainers.image.licenses="Apache-2.0"

# git + openssh-client: the fallback poller runs `git ls-remote` over https and ssh.
# ca-certificates: TLS to forges, registries and Google's JWKS endpoint.
RUN apt-get update \
 && apt-get install --yes --no-install-recommends git openssh-client ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# A passwd entry for uid 65532: OpenSSH refuses to run for a uid it cannot look up
# ("No user exists for uid ..."), which would break ssh:// GitRepositories in the poller.
RUN groupadd --gid 65532 nonroot \
 && useradd --uid 65532 --gid 65532 --home-dir /tmp --no-create-home \
            --shell /usr/sbin/nologin nonroot

COPY --from=build /opt/venv /opt/venv

# HOME and TMPDIR on /tmp: git, ssh and tempfile (the poller's private key files) write only
# there, so the root filesystem can be mounted read-only.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp

# Smoke check: the whole import chain loads (GitPython needs the git binary installed above).
RUN gitops-receiver --help >/dev/null

WORKDIR /tmp
USER 65532:65532

# 9292 webhooks, 9440 /healthz and /readyz, 8080 /metrics (the defaults of `serve`).
EXPOSE 9292 9440 8080

ENTRYPOINT ["gitops-receiver"]
CMD ["serve"]
