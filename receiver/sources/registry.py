"""The table of sources: Flux's Receiver type string -> `Source`.

Adding a source is one module with a `SOURCE` and one line here.
"""

from __future__ import annotations

from collections.abc import Mapping

from receiver.sources import (
    azure_devops,
    bitbucket,
    cdevents,
    generic,
    generic_hmac,
    gitea,
    github,
    gitlab,
)
from receiver.sources.base import Source

SOURCES: Mapping[str, Source] = {
    source.type_name: source
    for source in (
        generic.SOURCE,
        generic_hmac.SOURCE,
        github.SOURCE,
        gitlab.SOURCE,
        gitea.SOURCE,
        bitbucket.SOURCE,
        azure_devops.SOURCE,
        cdevents.SOURCE,
    )
}


def get(type_name: str) -> Source | None:
    return SOURCES.get(type_name)
