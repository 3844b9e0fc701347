"""Fallback poller: `git ls-remote` each GitRepository's remote and reconcile what moved.

`refs` is the pure core (ls-remote output, `spec.ref` resolution, artifact revisions, grouping);
`credentials` and `runner` are the edges (temporary credential files, git processes, schedule).
"""
