"""GET / and cluster-level endpoints."""

from __future__ import annotations

from typing import Any

from sandbox.http import EsRequest, Route


def info(sb: Any, req: EsRequest) -> dict:
    return sb.cluster.info()


ROUTES = [
    Route(("GET", "HEAD"), "/", info),
]
