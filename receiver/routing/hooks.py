"""Flux's webhook path: `/hook/` + hex SHA-256 of (token + receiver name + namespace).

Pure. This must match notification-controller byte for byte: the forge side and GitLab's
agent for Kubernetes only know the path Flux would compute (`Receiver.GetWebhookPath`).
"""

from __future__ import annotations

import hashlib
from typing import NewType

WebhookPath = NewType("WebhookPath", str)

HOOK_PREFIX = "/hook/"


def webhook_path(*, token: bytes, name: str, namespace: str) -> WebhookPath:
    digest = hashlib.sha256(token + name.encode() + namespace.encode()).hexdigest()
    return WebhookPath(HOOK_PREFIX + digest)
