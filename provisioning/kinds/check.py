"""Kind `check`: a search run after apply (and by `invoke check`) with expectations on its hits."""

from __future__ import annotations

from typing import Any

from provisioning.errors import Problem
from provisioning.model import Resource


def _inference_ids(node: Any) -> list[str]:
    """Every inference_id inside a search body (retrievers nest arbitrarily)."""
    if isinstance(node, dict):
        found = [node["inference_id"]] if isinstance(node.get("inference_id"), str) else []
        for value in node.values():
            found += _inference_ids(value)
        return found
    if isinstance(node, list):
        return [i for item in node for i in _inference_ids(item)]
    return []


class CheckKind:
    name = "check"

    def default_name(self, spec: dict[str, Any]) -> str | None:
        return None

    def references(self, resource: Resource) -> list[str]:
        refs = [f"index/{resource.spec['index']}"] if resource.spec.get("index") else []
        return refs + [f"inference_endpoint/{i}" for i in _inference_ids(resource.spec.get("request"))]

    def validate(self, resource: Resource, resources: dict[str, Resource]) -> list[Problem]:
        return []
