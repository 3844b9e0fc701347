"""Emulated GitHub and GitLab commit-status APIs on 127.0.0.1 for the status tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.forges import EmulatedGitHub, EmulatedGitLab


@pytest.fixture
async def github_api() -> AsyncIterator[EmulatedGitHub]:
    forge = EmulatedGitHub(token="ghp-secret", projects={"acme/app"})
    await forge.start()
    yield forge
    await forge.close()


@pytest.fixture
async def gitlab_api() -> AsyncIterator[EmulatedGitLab]:
    forge = EmulatedGitLab(
        token="glpat-secret", projects={"group/sub/app"}, ids={"42": "group/sub/app"}
    )
    await forge.start()
    yield forge
    await forge.close()
