"""The registry: the only place in the engine that names the resource kinds.

KINDS are reconciled by the planner (read, diff, operations). DECLARATIONS are every document type a manifest may
hold: the kinds, plus checks and evaluations (post-apply assertions: validated like a kind, never planned).
"""

from __future__ import annotations

from typing import Any

from provisioning.checks import CHECKS
from provisioning.evaluation.declaration import EVALUATIONS
from provisioning.kinds.base import Kind
from provisioning.kinds.documents import DocumentsKind
from provisioning.kinds.index import IndexKind
from provisioning.kinds.inference_endpoint import InferenceEndpointKind
from provisioning.kinds.trained_model import TrainedModelKind

# Order is the default apply order for independent resources (models before endpoints before indices ...).
KINDS: dict[str, Kind[Any]] = {
    kind.name: kind
    for kind in (TrainedModelKind(), InferenceEndpointKind(), IndexKind(), DocumentsKind())
}
DECLARATIONS: dict[str, Any] = {**KINDS, CHECKS.name: CHECKS, EVALUATIONS.name: EVALUATIONS}
