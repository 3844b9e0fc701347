"""The inspector's read-only views of the journal: JSON for scripts and the CLI, and one HTML page.

Pure: journal entries in, JSON-able dicts or HTML text out; no I/O, no clock. Every value that
came from a sender (repository, ref, event, delivery id, reasons, errors) goes through
`html.escape` and is never placed in a script, style or URL context unescaped. The page is plain
server-rendered HTML with a little inline CSS; it loads nothing else and refreshes itself with a
meta tag (no script at all).
"""

from __future__ import annotations

import datetime
import html
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from receiver.inspector.journal import (
    FAILED_PATCH_STATES,
    Candidate,
    Decision,
    Entry,
    Filter,
    Journal,
    PatchState,
    StatusPost,
)

REFRESH_S = 5
LIST_PATH = "/deliveries"
API_PATH = "/api/deliveries"
SHORT_SHA = 12

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.2em;color:#1b1f24;background:#fff}
h1{font-size:1.3em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.2em 0 .4em}
.meta{color:#57606a;margin:0 0 .8em}
form{margin:.6em 0 1em;display:flex;gap:.6em;flex-wrap:wrap;align-items:center}
input,select,button{font:inherit;padding:.15em .4em}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #d0d7de;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600}
code{font:12px ui-monospace,monospace;word-break:break-all}
.ok{color:#1a7f37;font-weight:600}.fail{color:#cf222e;font-weight:600}.other{color:#9a6700}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{font-weight:600}dd{margin:0}
""".strip()


def _iso(ts_s: float) -> str:
    return (
        datetime.datetime.fromtimestamp(ts_s, tz=datetime.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _candidate_json(candidate: Candidate) -> dict[str, Any]:
    return {
        "object": str(candidate.key),
        "kind": candidate.key.kind,
        "namespace": candidate.key.namespace,
        "name": candidate.key.name,
        "decision": candidate.decision.value,
        "cause": candidate.cause,
        "reason": candidate.reason,
        "patch": candidate.patch.value if candidate.patch else None,
        "attempts": candidate.attempts,
        "error": candidate.error,
    }


def _status_json(post: StatusPost) -> dict[str, str]:
    return {"name": post.name, "state": post.state, "outcome": post.outcome}


def entry_json(entry: Entry) -> dict[str, Any]:
    """Every recorded field of one delivery."""
    return {
        "id": entry.seq,
        "time": _iso(entry.received_at_s),
        "endpoint": entry.endpoint,
        "source": entry.source,
        "event": entry.event,
        "delivery_id": entry.delivery_id,
        "repository": entry.repository,
        "ref": entry.ref,
        "commit": entry.commit,
        "verification": entry.verification,
        "http_status": entry.http_status,
        "outcome": entry.outcome,
        "failed": entry.failed,
        "message": entry.message,
        "latency_ms": entry.latency_ms,
        "objects": [_candidate_json(c) for c in entry.candidates],
        "statuses": [_status_json(s) for s in entry.statuses],
    }


def list_json(
    journal: Journal, *, selection: Filter, replica: str, limit: int | None = None
) -> dict[str, Any]:
    entries = journal.entries(selection)
    shown = entries if limit is None else entries[:limit]
    return {
        "replica": replica,
        "capacity": journal.capacity,
        "recorded": len(journal),
        "matched": len(entries),
        "deliveries": [entry_json(entry) for entry in shown],
    }


# -- HTML ---------------------------------------------------------------------------------------


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        f'<meta http-equiv="refresh" content="{REFRESH_S}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def _outcome_cell(entry: Entry) -> str:
    css = "fail" if entry.failed else "ok" if entry.outcome == "accepted" else "other"
    return f'<span class="{css}">{_e(entry.outcome)}</span> <small>{entry.http_status}</small>'


def _objects_cell(entry: Entry) -> str:
    reconcile = [c for c in entry.candidates if c.decision is Decision.RECONCILE]
    skipped = len(entry.candidates) - len(reconcile)
    patched = sum(1 for c in reconcile if c.patch in (PatchState.PATCHED, PatchState.EXPANDED))
    failed = sum(1 for c in reconcile if c.patch in FAILED_PATCH_STATES)
    parts = [f"{patched}/{len(reconcile)} patched"] if reconcile else []
    if failed:
        parts.append(f'<span class="fail">{failed} failed</span>')
    if skipped:
        parts.append(f"{skipped} skipped")
    return ", ".join(parts) or "-"


def _options(values: Sequence[str], chosen: str | None) -> str:
    items = ['<option value="">any</option>']
    for value in values:
        selected = " selected" if value == chosen else ""
        items.append(f'<option value="{_e(value)}"{selected}>{_e(value)}</option>')
    return "".join(items)


def render_list(journal: Journal, *, selection: Filter, replica: str) -> str:
    """The list page: newest first, the filter form, one row per delivery."""
    entries = journal.entries(selection)
    outcomes = sorted({*journal.outcomes(), *([selection.outcome] if selection.outcome else [])})
    sources = sorted({*journal.sources(), *([selection.source] if selection.source else [])})
    checked = " checked" if selection.failed else ""
    form = (
        f'<form method=get action="{LIST_PATH}">'
        f'<label>repository <input name=repo value="{_e(selection.repository)}"></label>'
        "<label>outcome <select name=outcome>"
        f"{_options(outcomes, selection.outcome)}</select></label>"
        "<label>source <select name=source>"
        f"{_options(sources, selection.source)}</select></label>"
        f"<label><input type=checkbox name=failed value=1{checked}> failed only</label>"
        "<button type=submit>filter</button></form>"
    )
    rows = []
    for entry in entries:
        commit = (entry.commit or "")[:SHORT_SHA]
        rows.append(
            "<tr>"
            f'<td><a href="{LIST_PATH}/{entry.seq}">#{entry.seq}</a></td>'
            f"<td>{_e(_iso(entry.received_at_s))}</td>"
            f"<td>{_e(entry.source)}</td><td>{_e(entry.event)}</td>"
            f"<td>{_e(entry.repository)}</td><td>{_e(entry.ref)}</td>"
            f"<td><code>{_e(commit)}</code></td>"
            f"<td>{_outcome_cell(entry)}</td><td>{_objects_cell(entry)}</td>"
            f"<td>{entry.latency_ms:.1f}</td>"
            "</tr>"
        )
    table = (
        "<table><thead><tr><th>id</th><th>time (UTC)</th><th>source</th><th>event</th>"
        "<th>repository</th><th>ref</th><th>commit</th><th>outcome</th><th>objects</th>"
        "<th>ms</th></tr></thead><tbody>"
        + ("".join(rows) or "<tr><td colspan=10>no deliveries match</td></tr>")
        + "</tbody></table>"
    )
    query = urlencode(
        {
            k: v
            for k, v in (
                ("repo", selection.repository),
                ("outcome", selection.outcome),
                ("source", selection.source),
                ("failed", "1" if selection.failed else None),
            )
            if v
        }
    )
    api = API_PATH + (f"?{query}" if query else "")
    body = (
        "<h1>gitops-receiver deliveries</h1>"
        f"<p class=meta>replica <b id=replica>{_e(replica)}</b>: this replica's deliveries only "
        f"({len(entries)} shown of {len(journal)} kept, at most {journal.capacity}); "
        f'refreshes every {REFRESH_S} s; <a href="{_e(api)}">JSON</a></p>'
        f"{form}{table}"
    )
    return _page(f"deliveries - {replica}", body)


def render_detail(entry: Entry, *, replica: str) -> str:
    """One delivery: every recorded field, each candidate object and each commit status."""
    fields = (
        ("time (UTC)", _iso(entry.received_at_s)),
        ("endpoint", entry.endpoint),
        ("source", entry.source),
        ("event", entry.event),
        ("delivery id", entry.delivery_id),
        ("repository", entry.repository),
        ("ref", entry.ref),
        ("commit", entry.commit),
        ("verification", entry.verification),
        ("answer", f"{entry.http_status} {entry.outcome}"),
        ("message", entry.message),
        ("latency", f"{entry.latency_ms:.1f} ms"),
    )
    facts = "".join(f"<dt>{_e(name)}</dt><dd>{_e(value)}</dd>" for name, value in fields)
    objects = "".join(
        "<tr>"
        f"<td><code>{_e(c.key)}</code></td><td>{_e(c.decision.value)}</td><td>{_e(c.cause)}</td>"
        f"<td>{_e(c.reason)}</td><td>{_e(c.patch.value if c.patch else '')}</td>"
        f"<td>{c.attempts or ''}</td><td>{_e(c.error)}</td>"
        "</tr>"
        for c in entry.candidates
    )
    statuses = "".join(
        f"<tr><td>{_e(s.name)}</td><td>{_e(s.state)}</td><td>{_e(s.outcome)}</td></tr>"
        for s in entry.statuses
    )
    body = (
        f'<p><a href="{LIST_PATH}">&larr; all deliveries</a></p>'
        f"<h1>delivery #{entry.seq}</h1>"
        f"<p class=meta>replica <b id=replica>{_e(replica)}</b>; refreshes every {REFRESH_S} s; "
        f'<a href="{API_PATH}/{entry.seq}">JSON</a></p>'
        f"<dl>{facts}</dl>"
        "<h2>objects</h2><table><thead><tr><th>object</th><th>decision</th><th>cause</th>"
        "<th>reason</th><th>patch</th><th>attempts</th><th>error</th></tr></thead><tbody>"
        + (objects or "<tr><td colspan=7>no candidate objects</td></tr>")
        + "</tbody></table><h2>commit statuses</h2><table><thead><tr><th>name</th><th>state</th>"
        "<th>forge answer</th></tr></thead><tbody>"
        + (statuses or "<tr><td colspan=3>none posted</td></tr>")
        + "</tbody></table>"
    )
    return _page(f"delivery #{entry.seq} - {replica}", body)


def render_missing(seq: str, *, replica: str) -> str:
    body = (
        f"<h1>no delivery {_e(seq)}</h1><p class=meta>replica <b id=replica>{_e(replica)}</b> "
        f'keeps only its own recent deliveries. <a href="{LIST_PATH}">all deliveries</a></p>'
    )
    return _page("no such delivery", body)


# -- text, for `gitops-receiver deliveries` (it reads the JSON API, so it renders JSON) --------


def _plain(value: object) -> str:
    """One terminal-safe line: control characters (escape sequences, newlines) shown escaped."""
    text = "" if value is None else str(value)
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def _aligned(table: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(cells[i]) for cells in table) for i in range(len(table[0]) - 1)]
    return [
        "  ".join([*(c.ljust(w) for c, w in zip(cells, widths, strict=False)), cells[-1]]).rstrip()
        for cells in table
    ]


def _objects_text(objects: list[dict[str, Any]]) -> str:
    reconcile = [o for o in objects if o.get("decision") == Decision.RECONCILE.value]
    done = {PatchState.PATCHED.value, PatchState.EXPANDED.value}
    bad = {state.value for state in FAILED_PATCH_STATES}
    patched = sum(1 for o in reconcile if o.get("patch") in done)
    failed = sum(1 for o in reconcile if o.get("patch") in bad)
    parts = [f"{patched}/{len(reconcile)} patched"] if reconcile else []
    if failed:
        parts.append(f"{failed} failed")
    if len(objects) > len(reconcile):
        parts.append(f"{len(objects) - len(reconcile)} skipped")
    return ", ".join(parts) or "-"


def render_text(listing: dict[str, Any]) -> str:
    """The list API's answer as a header naming the replica, then one row per delivery."""
    deliveries: list[dict[str, Any]] = listing.get("deliveries") or []
    lines = [
        f"replica:    {_plain(listing.get('replica'))} "
        "(each replica keeps only its own deliveries)",
        f"deliveries: {listing.get('matched', len(deliveries))} matched, "
        f"{listing.get('recorded', 0)} kept (at most {listing.get('capacity', '?')})",
        "",
    ]
    if not deliveries:
        return "\n".join([*lines, "no deliveries match"]) + "\n"
    header = ("ID", "TIME", "SOURCE", "REPOSITORY", "REF", "COMMIT", "OUTCOME", "OBJECTS")
    rows = [header]
    for d in deliveries:
        outcome = f"{d.get('outcome')} {d.get('http_status')}"
        if d.get("failed") and d.get("http_status", 0) < 400:
            outcome += " (patch failed)"
        rows.append(
            (
                str(d.get("id")),
                _plain(d.get("time")),
                _plain(d.get("source")),
                _plain(d.get("repository") or "-"),
                _plain(d.get("ref") or "-"),
                _plain((d.get("commit") or "-")[:SHORT_SHA]),
                _plain(outcome),
                _objects_text(d.get("objects") or []),
            )
        )
    return "\n".join([*lines, *_aligned(rows)]) + "\n"


def render_detail_text(answer: dict[str, Any]) -> str:
    """One delivery from the detail API: its facts, then each object with its decision."""
    d: dict[str, Any] = answer.get("delivery") or {}
    facts = (
        ("replica", answer.get("replica")),
        ("delivery", d.get("id")),
        ("time", d.get("time")),
        ("endpoint", d.get("endpoint")),
        ("source", f"{d.get('source')} {d.get('event') or ''}".strip()),
        ("delivery id", d.get("delivery_id")),
        ("repository", d.get("repository")),
        ("ref", d.get("ref")),
        ("commit", d.get("commit")),
        ("verification", d.get("verification")),
        ("answer", f"{d.get('http_status')} {d.get('outcome')}"),
        ("message", d.get("message")),
        ("latency", f"{d.get('latency_ms')} ms"),
    )
    lines = [
        f"{name + ':':<13} {_plain(value if value is not None else '-')}" for name, value in facts
    ]
    objects: list[dict[str, Any]] = d.get("objects") or []
    lines.append("")
    if objects:
        table = [("OBJECT", "DECISION", "PATCH", "ATTEMPTS", "REASON")]
        for o in objects:
            reason = o.get("reason") or ""
            if o.get("error"):
                reason = f"{reason}; {o['error']}"
            table.append(
                (
                    _plain(o.get("object")),
                    _plain(o.get("decision")),
                    _plain(o.get("patch") or "-"),
                    str(o.get("attempts") or "-"),
                    _plain(reason),
                )
            )
        lines.extend(_aligned(table))
    else:
        lines.append("no candidate objects")
    for s in d.get("statuses") or []:
        lines.append(
            f"status: {_plain(s.get('name'))} {_plain(s.get('state'))} ({_plain(s.get('outcome'))})"
        )
    return "\n".join(lines) + "\n"
