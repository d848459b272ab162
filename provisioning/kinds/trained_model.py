"""Kind `trained_model`: a Hugging Face model traced by eland and uploaded, optionally with a deployment."""

from __future__ import annotations

from typing import Any

from provisioning.errors import Problem
from provisioning.model import Resource


def eland_model_id(hub_id: str) -> str:
    """eland's derivation of a model id from a hub id (eland/ml/pytorch/transformers.py:
    `elasticsearch_model_id`): lower case, "/" -> "__"."""
    return hub_id.replace("/", "__").lower()[-64:]


class TrainedModelKind:
    name = "trained_model"

    def default_name(self, spec: dict[str, Any]) -> str | None:
        hub = (spec.get("source") or {}).get("hub")
        return eland_model_id(hub) if isinstance(hub, str) else None

    def references(self, resource: Resource) -> list[str]:
        return []

    def validate(self, resource: Resource, resources: dict[str, Resource]) -> list[Problem]:
        return []
