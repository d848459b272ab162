"""Kind `index`: settings, mappings and aliases, served through an alias over a versioned physical index."""

from __future__ import annotations

from typing import Any

from provisioning.errors import Problem
from provisioning.model import Resource


def _semantic_text_endpoints(properties: dict[str, Any]) -> list[str]:
    """inference_id of every semantic_text field, nested objects and multi-fields included."""
    found = []
    for field in (properties or {}).values():
        if not isinstance(field, dict):
            continue
        if field.get("type") == "semantic_text" and field.get("inference_id"):
            found.append(field["inference_id"])
        found += _semantic_text_endpoints(field.get("properties", {}))
        found += _semantic_text_endpoints(field.get("fields", {}))
    return found


class IndexKind:
    name = "index"

    def default_name(self, spec: dict[str, Any]) -> str | None:
        return None

    def references(self, resource: Resource) -> list[str]:
        properties = (resource.spec.get("mappings") or {}).get("properties", {})
        return [f"inference_endpoint/{e}" for e in _semantic_text_endpoints(properties)]

    def validate(self, resource: Resource, resources: dict[str, Resource]) -> list[Problem]:
        return []
