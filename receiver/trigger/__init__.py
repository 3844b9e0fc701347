"""Reconcile requests: a coalescing queue and the workers that apply them with retries."""
