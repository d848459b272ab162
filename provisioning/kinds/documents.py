"""Kind `documents`: seed documents bulk-loaded from a JSON or NDJSON file or URL, idempotent by id."""

from __future__ import annotations

from typing import Any

from provisioning.errors import Problem
from provisioning.model import Resource


class DocumentsKind:
    name = "documents"

    def default_name(self, spec: dict[str, Any]) -> str | None:
        return None

    def references(self, resource: Resource) -> list[str]:
        return [f"index/{resource.spec['index']}"] if resource.spec.get("index") else []

    def validate(self, resource: Resource, resources: dict[str, Resource]) -> list[Problem]:
        return []
