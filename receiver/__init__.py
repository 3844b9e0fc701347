"""gitops-receiver: forge and registry webhooks in, Flux reconcile requests out."""

__version__ = "0.1.0"
