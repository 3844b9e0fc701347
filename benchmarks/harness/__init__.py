"""Shared harness of the end-to-end benchmarks (webhook_throughput.py, push_burst.py, ...).

payloads: objects and signed pushes (pure) · processes: pinned children and their CPU/RSS ·
cluster: kube-apiserver + etcd, seeding, the watch that times patches · load: wrk or the Python
load generator · minimal: the reference (a) handler · servers: gitops-receiver, (a), Flux's
notification-controller · measure: one measured row · bed: set-up, shared options, clean exit.
Scripts add the repository root to sys.path (they run as `python benchmarks/<script>.py`).
"""
