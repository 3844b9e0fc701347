"""The table of sources: Flux's Receiver type string -> `Source`.

Adding a source is one module with a `SOURCE` and one line here.
"""

from __future__ import annotations

from collections.abc import Mapping

from receiver.sources import (
    acr,
    azure_devops,
    bitbucket,
    cdevents,
    distribution,
    dockerhub,
    gcr,
    generic,
    generic_hmac,
    generic_oidc,
    generic_push,
    ghcr,
    gitea,
    github,
    gitlab,
    harbor,
    nexus,
    quay,
)
from receiver.sources.base import Source

SOURCES: Mapping[str, Source] = {
    source.type_name: source
    for source in (
        generic.SOURCE,
        generic_hmac.SOURCE,
        generic_push.SOURCE,
        github.SOURCE,
        gitlab.SOURCE,
        gitea.SOURCE,
        bitbucket.SOURCE,
        azure_devops.SOURCE,
        cdevents.SOURCE,
        dockerhub.SOURCE,
        quay.SOURCE,
        harbor.SOURCE,
        ghcr.SOURCE,
        distribution.SOURCE,
        acr.SOURCE,
        nexus.SOURCE,
        gcr.SOURCE,
        generic_oidc.SOURCE,
    )
}


def get(type_name: str) -> Source | None:
    return SOURCES.get(type_name)


# The Receiver types whose `spec.events` Flux matches against the sender's event header;
# for every other type Flux ignores `spec.events`, and so does gitops-receiver.
EVENT_FILTERED_TYPES = frozenset({"github", "gitlab", "bitbucket", "cdevents"})
