"""Kubernetes objects as plain data: the one reader of raw objects, and the Flux kinds.

Pure: no I/O. The watches (`kube/`) and the dry-run inventory hand raw dicts to `raw.py`;
`resources.py` names the kinds and the API paths that `kube/` then calls.
"""
