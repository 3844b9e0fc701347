"""Commit statuses back on the forge: pure request/reply per forge, the journey, the sender."""
