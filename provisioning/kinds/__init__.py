"""The registry: the only place in the engine that names the resource kinds."""

from __future__ import annotations

from provisioning.kinds.base import Kind
from provisioning.kinds.check import CheckKind
from provisioning.kinds.documents import DocumentsKind
from provisioning.kinds.index import IndexKind
from provisioning.kinds.inference_endpoint import InferenceEndpointKind
from provisioning.kinds.trained_model import TrainedModelKind

# Order is the default apply order for independent resources (models before endpoints before indices ...).
KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (TrainedModelKind(), InferenceEndpointKind(), IndexKind(), DocumentsKind(), CheckKind())
}
