"""Routing: from a parsed event to the Flux objects it affects. Pure: no I/O."""
