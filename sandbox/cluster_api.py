"""GET / and cluster-level endpoints: health, capabilities, cluster settings."""

from __future__ import annotations

from typing import Any

from sandbox import versions
from sandbox.errors import IllegalArgument
from sandbox.http import EsRequest, Route
from sandbox.indices.settings import nest

# Capabilities and cluster features are declared by each API module beside the behaviour they name:
#   CAPABILITIES: dict[(method, path), set[str]]  as ES's RestHandler.supportedCapabilities() reports them
#   CLUSTER_FEATURES: set[str]                     NodeFeature ids, as GET /_cluster/state shows nodes_features
# Only names whose behaviour the sandbox implements belong there (the answers must be honest).


def _declared(attribute: str) -> list[Any]:
    import importlib

    from sandbox.server import ROUTE_MODULES

    return [getattr(importlib.import_module(name), attribute) for name in ROUTE_MODULES
            if hasattr(importlib.import_module(name), attribute)]


def all_capabilities() -> dict[tuple[str, str], set[str]]:
    merged: dict[tuple[str, str], set[str]] = {}
    for table in _declared("CAPABILITIES"):
        for key, names in table.items():
            merged.setdefault(key, set()).update(names)
    return merged


def all_features() -> set[str]:
    return set().union(*_declared("CLUSTER_FEATURES"))


# Cluster settings the sandbox understands (anything else is refused rather than silently stored).
_CLUSTER_SETTINGS = {"action.destructive_requires_name", "action.auto_create_index"}
_STATUS_RANK = {"green": 0, "yellow": 1, "red": 2}


def info(sb: Any, req: EsRequest) -> dict:
    return sb.cluster.info()


def license_info(sb: Any, req: EsRequest) -> dict:
    """GET _license (RestGetLicenseAction): the cluster's licence. The sandbox runs as a trial (every feature on)
    unless a test sets `cluster.license_type` (e.g. "basic", what a fresh self-managed cluster has)."""
    kind = sb.cluster.license_type
    return {"license": {"status": "active", "uid": sb.cluster.cluster_uuid, "type": kind, "issue_date_in_millis": 0,
                        "expiry_date_in_millis": 4102444800000 if kind != "basic" else None,
                        "max_nodes": 1000, "issued_to": sb.cluster.cluster_name, "issuer": "elasticsearch",
                        "start_date_in_millis": -1}}


def health(sb: Any, req: EsRequest, index: str | None = None) -> dict:
    wanted = req.args.get("wait_for_status")
    if wanted is not None and wanted not in _STATUS_RANK:
        raise IllegalArgument(f"unknown cluster health status [{wanted}]")
    store = sb.cluster.indices
    indices = store.resolve(index, expand_wildcards="all") if index else list(store.indices.values())
    opened = [i for i in indices if not i.closed]
    primaries = sum(int(i.settings.get("index.number_of_shards", "1")) for i in opened)
    replicas = sum(int(i.settings.get("index.number_of_shards", "1")) *
                   int(i.settings.get("index.number_of_replicas", "0")) for i in opened)
    # The stand-in behaves as a cluster with enough nodes for every copy: all shards are assigned, status green.
    return {
        "cluster_name": sb.cluster.cluster_name, "status": "green", "timed_out": False,
        "number_of_nodes": 1, "number_of_data_nodes": 1,
        "active_primary_shards": primaries, "active_shards": primaries + replicas,
        "relocating_shards": 0, "initializing_shards": 0, "unassigned_shards": 0,
        "unassigned_primary_shards": 0, "delayed_unassigned_shards": 0, "number_of_pending_tasks": 0,
        "number_of_in_flight_fetch": 0, "task_max_waiting_in_queue_millis": 0,
        "active_shards_percent_as_number": 100.0,
    }


def capabilities(sb: Any, req: EsRequest) -> dict:
    method = req.args.get("method", "GET").upper()
    path = req.args.get("path", "")
    wanted = {c for c in req.args.get("capabilities", "").split(",") if c}
    parameters = {p for p in req.args.get("parameters", "").split(",") if p}
    known = all_capabilities().get((method, path))
    if known is None or parameters:
        return {"supported": False}
    return {"supported": wanted <= known}


def get_cluster_settings(sb: Any, req: EsRequest) -> dict:
    current = sb.cluster.indices.cluster_settings
    flat = req.flag("flat_settings")
    out = {scope: _render(current[scope], flat) for scope in ("persistent", "transient")}
    if req.flag("include_defaults"):
        out["defaults"] = _render({"action.destructive_requires_name": "true", "action.auto_create_index": "true"},
                                  flat)
    return out


def _render(values: dict[str, Any], flat: bool) -> dict[str, Any]:
    return dict(sorted(values.items())) if flat else nest(values)


def put_cluster_settings(sb: Any, req: EsRequest) -> dict:
    body = req.json({}) or {}
    current = sb.cluster.indices.cluster_settings
    changed: dict[str, dict[str, Any]] = {"persistent": {}, "transient": {}}
    for scope in ("persistent", "transient"):
        for key, value in (body.get(scope) or {}).items():
            if key not in _CLUSTER_SETTINGS:
                raise IllegalArgument(f"{scope} setting [{key}], not recognized")
            if value is None:
                current[scope].pop(key, None)
            else:
                text = str(value).lower() if isinstance(value, bool) else str(value)
                current[scope][key] = text
                changed[scope][key] = text
    return {"acknowledged": True, **{scope: nest(values) for scope, values in changed.items()}}


def cluster_state(sb: Any, req: EsRequest) -> dict:
    """Only what clients and test runners read: names and the node's cluster features."""
    features = sorted(versions.cluster_features(sb.cluster.version, all_features()))
    return {"cluster_name": sb.cluster.cluster_name, "cluster_uuid": sb.cluster.cluster_uuid,
            "nodes_features": [{"node_id": sb.cluster.node_id, "features": features}]}


ROUTES = [
    Route(("GET",), "/_cluster/state", cluster_state, api="cluster.state"),
    Route(("GET", "HEAD"), "/", info, api={"GET": "info", "HEAD": "ping"}),
    Route(("GET",), "/_cluster/health", health, api="cluster.health"),
    Route(("GET",), "/_license", license_info, api="license.get"),
    Route(("GET",), "/_cluster/health/<index>", health, api="cluster.health"),
    Route(("GET",), "/_capabilities", capabilities, api="capabilities"),
    Route(("GET",), "/_cluster/settings", get_cluster_settings, api="cluster.get_settings"),
    Route(("PUT",), "/_cluster/settings", put_cluster_settings, api="cluster.put_settings"),
]
