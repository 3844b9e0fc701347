"""The inspector's views: JSON carries every field; the HTML escapes whatever a sender chose."""

from __future__ import annotations

import html.parser
import json

import pytest

from receiver.inspector import views
from receiver.inspector.journal import (
    Candidate,
    Decision,
    Entry,
    Filter,
    Journal,
    ObjectKey,
    PatchState,
    StatusPost,
)

HOSTILE_REPO = "github.com/evil/<script>alert('repo')</script>"
HOSTILE_REF = 'refs/heads/"><img src=x onerror=alert(1)>'
HOSTILE_EVENT = "push</title><script>alert(2)</script>"


class _Scan(html.parser.HTMLParser):
    """Every start tag and attribute the browser would build from the page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def hostile_journal() -> Journal:
    journal = Journal()
    journal.add(
        Entry(
            received_at_s=1_700_000_000.25,
            endpoint="/webhooks/generic",
            source="generic",
            http_status=200,
            outcome="accepted<b>",
            verification="verified",
            latency_ms=2.0,
            event=HOSTILE_EVENT,
            delivery_id="<svg onload=alert(3)>",
            repository=HOSTILE_REPO,
            ref=HOSTILE_REF,
            commit="abc</code><script>x()</script>",
            message="'\"&<>",
            candidates=[
                Candidate(
                    key=ObjectKey("GitRepository", "ns", "<i>name</i>"),
                    decision=Decision.SKIP,
                    cause="ref",
                    reason="branch <main> does not match",
                )
            ],
            statuses=[StatusPost(name="<u>ks</u>", state="pending", outcome="created")],
        )
    )
    return journal


@pytest.mark.parametrize("page", ["list", "detail"])
def test_hostile_values_never_become_markup(page: str) -> None:
    journal = hostile_journal()
    entry = journal.entries()[0]
    text = (
        views.render_list(journal, selection=Filter(repository="<script>"), replica="pod-<1>")
        if page == "list"
        else views.render_detail(entry, replica="pod-<1>")
    )
    scan = _Scan()
    scan.feed(text)
    assert "script" not in scan.tags
    assert not {"img", "svg", "i", "u"} & set(scan.tags)
    assert not [name for name, _ in scan.attrs if name.startswith("on")]
    rendered = "".join(scan.text)
    # The values still read as sent, as text.
    assert HOSTILE_REPO in rendered
    assert HOSTILE_EVENT in rendered
    assert HOSTILE_REF in rendered
    assert "pod-<1>" in rendered


def test_filter_value_is_escaped_in_the_form_attribute() -> None:
    journal = Journal()
    text = views.render_list(
        journal, selection=Filter(repository='x" autofocus onfocus="alert(1)'), replica="r"
    )
    scan = _Scan()
    scan.feed(text)
    assert ("onfocus", "alert(1)") not in scan.attrs
    assert ("value", 'x" autofocus onfocus="alert(1)') in scan.attrs
    assert "no deliveries match" in "".join(scan.text)


def test_page_refreshes_itself_and_loads_nothing() -> None:
    text = views.render_list(hostile_journal(), selection=Filter(), replica="r")
    scan = _Scan()
    scan.feed(text)
    assert ("http-equiv", "refresh") in scan.attrs
    assert not {"script", "link", "img", "iframe"} & set(scan.tags)
    assert not [v for n, v in scan.attrs if n == "src"]


def test_json_has_every_field_and_round_trips() -> None:
    journal = hostile_journal()
    journal.entries()[0].candidates.append(
        Candidate(
            key=ObjectKey("Application", "argocd", "web"),
            decision=Decision.RECONCILE,
            reason="match",
            patch=PatchState.FAILED,
            attempts=8,
            error="HTTP 503",
        )
    )
    body = json.loads(json.dumps(views.list_json(journal, selection=Filter(), replica="pod-a")))
    assert body["replica"] == "pod-a"
    assert body["capacity"] == 1000
    (delivery,) = body["deliveries"]
    assert delivery["time"] == "2023-11-14T22:13:20.250Z"
    assert delivery["repository"] == HOSTILE_REPO
    assert delivery["failed"] is True
    assert delivery["objects"][1] == {
        "object": "Application/argocd/web",
        "kind": "Application",
        "namespace": "argocd",
        "name": "web",
        "decision": "reconcile",
        "cause": None,
        "reason": "match",
        "patch": "failed",
        "attempts": 8,
        "error": "HTTP 503",
    }
    assert delivery["statuses"] == [{"name": "<u>ks</u>", "state": "pending", "outcome": "created"}]
    assert set(delivery) >= {
        "endpoint",
        "source",
        "event",
        "delivery_id",
        "ref",
        "commit",
        "verification",
        "http_status",
        "outcome",
        "message",
        "latency_ms",
    }
    assert views.list_json(journal, selection=Filter(), replica="r", limit=0)["deliveries"] == []


def test_text_table_shows_control_characters_escaped() -> None:
    journal = Journal()
    journal.add(
        Entry(
            received_at_s=0.0,
            endpoint="/webhooks/generic",
            source="generic",
            http_status=200,
            outcome="accepted",
            verification="verified",
            latency_ms=1.0,
            repository="github.com/x/\x1b[31mred\x1b[0m",
            ref="refs/heads/a\nb",
        )
    )
    text = views.render_text(views.list_json(journal, selection=Filter(), replica="r\x07"))
    assert "\x1b" not in text and "\x07" not in text
    assert "github.com/x/\\x1b[31mred\\x1b[0m" in text
    assert "refs/heads/a\\nb" in text
    assert text.splitlines()[0].startswith("replica:    r\\x07 ")
    assert len(text.splitlines()) == 5
    empty = views.render_text(views.list_json(Journal(), selection=Filter(), replica="r"))
    assert empty.endswith("\nno deliveries match\n")
