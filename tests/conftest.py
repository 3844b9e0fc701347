"""Suite-wide fixtures. The Kubernetes ones live in `tests/support/kube_fixtures.py` so unit,
integration and e2e tests share one API server per session."""

pytest_plugins = ["tests.support.kube_fixtures", "tests.support.argocd_fixtures"]
