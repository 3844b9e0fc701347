"""Planted bugs the suite once let through (issue 17), each pinned where it would live.

- a delivery that names no event passing a Receiver's `spec.events` filter;
- a Gitea push whose `after` is all zeros (Gitea sends no `deleted` field) not taken as a
  deletion.
"""

from __future__ import annotations

import json

from receiver.events import GitPush
from receiver.sources import gitea, registry
from receiver.sources.base import RawDelivery, event_allowed


def test_a_delivery_naming_no_event_does_not_pass_an_events_filter() -> None:
    assert not event_allowed(None, ("push",))
    assert not event_allowed("", ("push",))
    assert event_allowed(None, ())  # no filter: everything passes
    github = registry.get("github")
    assert github is not None
    assert github.event_name(RawDelivery(headers={}, body=b"{}")) is None


def test_a_gitea_push_to_all_zeros_is_a_deletion() -> None:
    body = json.dumps(
        {
            "ref": "refs/heads/feature",
            "before": "a" * 40,
            "after": "0" * 40,
            "commits": [],
            "repository": {
                "clone_url": "https://git.example.com/org/fleet.git",
                "full_name": "org/fleet",
                "default_branch": "main",
            },
        }
    ).encode()
    (push,) = gitea.parse(RawDelivery(headers={"x-gitea-event": "push"}, body=body))
    assert isinstance(push, GitPush)
    assert push.deleted and push.after is None
