"""Webhook sources: one module per forge or registry, each a pure `Source` (verify, then parse)."""
