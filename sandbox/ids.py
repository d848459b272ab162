"""Identifiers and clock shared by every store (kept out of cluster.py, which imports the stores)."""

from __future__ import annotations

import base64
import time
import uuid


def new_uuid() -> str:
    """ES-style 22-character url-safe base64 id."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def now_millis() -> int:
    return int(time.time() * 1000)
