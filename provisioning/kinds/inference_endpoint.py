"""Kind `inference_endpoint`: an inference endpoint of any task type and service (secrets write-only)."""

from __future__ import annotations

from typing import Any

from provisioning.errors import Problem
from provisioning.model import Resource


class InferenceEndpointKind:
    name = "inference_endpoint"

    def default_name(self, spec: dict[str, Any]) -> str | None:
        return None

    def references(self, resource: Resource) -> list[str]:
        settings = resource.spec.get("service_settings") or {}
        model_id = settings.get("model_id")
        return [f"trained_model/{model_id}"] if model_id and resource.spec.get("service") == "elasticsearch" else []

    def validate(self, resource: Resource, resources: dict[str, Resource]) -> list[Problem]:
        return []
