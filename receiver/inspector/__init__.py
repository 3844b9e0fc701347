"""The delivery inspector: a bounded journal of recent deliveries and its read-only views."""
