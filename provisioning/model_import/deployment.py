"""Trained model deployments: desired settings vs `_stats`, start/update/stop, readiness wait and probe, and the
ML capacity check made before anything is uploaded. Light (no torch): used by plan and by both model kinds.

ES facts (lessons-from-peers.md §5c, es-api-semantics.md §2.5-§2.7):
- `_update` changes only number_of_allocations or adaptive_allocations; threads, priority, queue capacity and the
  deployment id need stop + start (TF-ES models them as RequiresReplace).
- a `_start` timeout does not cancel the start (elasticsearch#109407): never retry `_start`, poll `_stats`.
- ready = deployment_stats.state "started" and allocation_status.state "fully_allocated" with
  allocation_count == target_allocation_count.
"""

from __future__ import annotations

import re
import time
from typing import Any

from elasticsearch import ApiError

from provisioning.errors import ClusterError, NotConverged

IN_PLACE = ("number_of_allocations", "adaptive_allocations")
RESTART = ("threads_per_allocation", "priority", "queue_capacity", "cache_size")
DEFAULTS = {"threads_per_allocation": 1, "priority": "normal", "queue_capacity": 1024}
MEMORY_OVERHEAD = 240 * 1024 * 1024  # ES StartTrainedModelDeploymentAction.MEMORY_OVERHEAD [K]
PROBE_QUERY = "what is a cross-encoder"
PROBE_DOCS = ["A cross-encoder scores a query and a passage together.", "Bananas are rich in potassium."]


def desired_deployment(spec: dict[str, Any] | None, model_id: str) -> dict[str, Any] | None:
    """The declared deployment with its id defaulted to the model id (ES's default), or None."""
    if spec is None:
        return None
    out = dict(spec)
    out.setdefault("deployment_id", model_id)
    return out


def live_deployment(stats: dict[str, Any]) -> dict[str, Any]:
    """The comparable part of one `deployment_stats` entry."""
    out = {k: stats.get(k) for k in ("deployment_id", "model_id", "state", "number_of_allocations",
                                     "threads_per_allocation", "priority", "queue_capacity", "cache_size")}
    out["adaptive_allocations"] = stats.get("adaptive_allocations")
    out["allocation_status"] = stats.get("allocation_status") or {}
    return out


def _adaptive_enabled(value: Any) -> bool:
    return isinstance(value, dict) and bool(value.get("enabled"))


Difference = tuple[str, Any, Any]  # (key, live, desired)


def compare(desired: dict[str, Any], live: dict[str, Any]) -> tuple[list[Difference], list[Difference]]:
    """(in-place differences, restart differences) as (key, live, desired), over declared keys only."""
    in_place, restart = [], []
    adaptive = desired.get("adaptive_allocations")
    for key in IN_PLACE:
        if key not in desired:
            continue
        if key == "number_of_allocations" and _adaptive_enabled(adaptive):
            continue  # adaptive allocations move the live count: not drift (lessons §5c)
        want, have = desired[key], live.get(key)
        if key == "adaptive_allocations":
            have = have or {"enabled": False}
            if not _adaptive_enabled(want) and not _adaptive_enabled(have):
                continue
            if any(have.get(k) != v for k, v in want.items()):
                in_place.append((key, have, want))
        elif want != have:
            in_place.append((key, have, want))
    for key in RESTART:
        if key in desired and desired[key] != live.get(key):
            restart.append((key, live.get(key), desired[key]))
    return in_place, restart


def start_request(desired: dict[str, Any], timeout: float = 600) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Query and body of POST _start (wait_for=started). Adaptive allocations go in the body and exclude
    number_of_allocations (StartTrainedModelDeploymentAction.Request)."""
    query: dict[str, Any] = {"deployment_id": desired["deployment_id"], "wait_for": "started",
                             "timeout": f"{int(max(1, timeout))}s"}
    for key in ("threads_per_allocation", "priority", "queue_capacity", "cache_size"):
        if key in desired:
            query[key] = desired[key]
    body = None
    if _adaptive_enabled(desired.get("adaptive_allocations")):
        body = {"adaptive_allocations": desired["adaptive_allocations"]}
    elif "number_of_allocations" in desired:
        query["number_of_allocations"] = desired["number_of_allocations"]
    return query, body


def update_body(desired: dict[str, Any]) -> dict[str, Any]:
    """Body of POST _update: only the allocations change in place."""
    body: dict[str, Any] = {}
    if "adaptive_allocations" in desired:
        body["adaptive_allocations"] = desired["adaptive_allocations"]
    if "number_of_allocations" in desired and not _adaptive_enabled(desired.get("adaptive_allocations")):
        body["number_of_allocations"] = desired["number_of_allocations"]
    return body


WAIT_FOR = ("fully_allocated", "started")
PROGRESS_EVERY = 10.0  # seconds between progress lines while waiting (never silent for more than 30 s)


def _is_ready(stats: dict[str, Any], wait_for: str = "fully_allocated") -> bool:
    """started, and (fully_allocated, as Elastic's docs advise before sending traffic) every target allocation
    allocated. wait_for="started" accepts a deployment that serves with fewer allocations than its target (a
    cluster that can place only some of them, or ML autoscaling still adding nodes)."""
    status = stats.get("allocation_status") or {}
    if stats.get("state") != "started":
        return False
    target = status.get("target_allocation_count")
    if target == 0:  # adaptive allocations scaled to zero: started is all there is to wait for
        return True
    if wait_for == "started":
        return (status.get("allocation_count") or 0) >= 1
    return status.get("state") == "fully_allocated" and status.get("allocation_count") == target


def describe(stats: dict[str, Any]) -> str:
    """What a deployment looks like right now: state, allocations, nodes."""
    if not stats:
        return "not started yet"
    status = stats.get("allocation_status") or {}
    nodes = [n for n in stats.get("nodes") or [] if (n.get("routing_state") or {}).get("routing_state")]
    routing = ", ".join(sorted({(n.get("routing_state") or {}).get("routing_state") for n in nodes}))
    return (f"state {stats.get('state', '?')}, allocation {status.get('state', '?')} "
            f"{status.get('allocation_count', '?')}/{status.get('target_allocation_count', '?')}, "
            f"{len(nodes)} node(s)" + (f" ({routing})" if routing else ""))


def _failure(stats: dict[str, Any]) -> str | None:
    if stats.get("state") == "failed":
        return stats.get("reason") or "the deployment failed"
    for node in stats.get("nodes") or []:
        routing = node.get("routing_state") or {}
        if routing.get("routing_state") == "failed":
            return routing.get("reason") or "an allocation failed on a node"
    return None


def wait_ready(client: Any, model_id: str, deployment_id: str, timeout: float, *, resource: str,
               poll: float = 0.5, wait_for: str = "fully_allocated", reporter: Any = None) -> dict[str, Any]:
    """Poll `_stats` until the deployment is ready (see _is_ready); its deployment_stats. Says what it sees every
    PROGRESS_EVERY seconds, and on a timeout what it saw last."""
    started = time.monotonic()
    deadline = started + timeout
    last: dict[str, Any] = {}
    reported = started
    while True:
        response = client.options(ignore_status=404).ml.get_trained_models_stats(model_id=model_id)
        entries = response.body.get("trained_model_stats", []) if response.meta.status == 200 else []
        last = next((e["deployment_stats"] for e in entries
                     if (e.get("deployment_stats") or {}).get("deployment_id") == deployment_id), {})
        if last:
            failure = _failure(last)
            if failure:
                raise ClusterError(f"deployment {deployment_id} of model {model_id} failed: {failure}",
                                   resource=resource)
            if _is_ready(last, wait_for):
                return last
        now = time.monotonic()
        if now >= deadline:
            raise NotConverged(
                f"{resource}: deployment {deployment_id} of model {model_id} is not {wait_for.replace('_', ' ')} "
                f"after {timeout:.0f}s (last seen: {describe(last)}); check the cluster's ML capacity, raise "
                f"--wait-timeout, or accept a partly allocated deployment with --wait-for started")
        if reporter is not None and now - reported >= getattr(reporter, "interval", PROGRESS_EVERY):
            reporter.info(f"{resource}: waiting for deployment {deployment_id} to be {wait_for.replace('_', ' ')} "
                          f"({now - started:.0f}s): {describe(last)}")
            reported = now
        time.sleep(poll)


def probe_model(client: Any, deployment_id: str, task_type: str, timeout: float) -> Any:
    """One real inference through the deployment (POST _ml/trained_models/<id>/_infer) as a readiness probe."""
    docs = [{"text_field": PROBE_DOCS[0]}]
    config = {"text_similarity": {"text": PROBE_QUERY}} if task_type == "text_similarity" else None
    kwargs = {"inference_config": config} if config else {}
    return client.options(request_timeout=timeout + 30).ml.infer_trained_model(
        model_id=deployment_id, docs=docs, timeout=f"{int(max(1, timeout))}s", **kwargs)


# ---- capacity -------------------------------------------------------------------------------------------------
_UNITS = {"b": 1, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40, "pb": 1 << 50}


def parse_bytes(value: Any) -> int | None:
    if isinstance(value, int | float):
        return int(value)
    # ES writes a byte size without a unit when it is zero (`"total_ml_memory": "0"`)
    match = re.fullmatch(r"\s*([\d.]+)\s*([kmgtp]?b)?\s*", str(value if value is not None else "").lower())
    return int(float(match.group(1)) * _UNITS[match.group(2) or "b"]) if match else None


def estimated_memory(config: dict[str, Any], definition_length: int, allocations: int = 1) -> int:
    """ES's estimate of a deployment's native memory (StartTrainedModelDeploymentAction.estimateMemoryUsageBytes
    [K]): eland's per-deployment/per-allocation figures when present, else twice the definition."""
    metadata = config.get("metadata") or {}
    per_deployment = int(metadata.get("per_deployment_memory_bytes") or 0)
    per_allocation = int(metadata.get("per_allocation_memory_bytes") or 0)
    if per_deployment > 0 and per_allocation > 0:
        return MEMORY_OVERHEAD + per_deployment + per_allocation * allocations
    return MEMORY_OVERHEAD + 2 * definition_length


def ml_limits(client: Any) -> dict[str, Any] | None:
    """`GET _ml/info` limits, or None when the cluster does not say (then nothing is checked in advance)."""
    try:
        return dict(client.ml.info().body.get("limits") or {})
    except ApiError:
        return None


def capacity_problem(limits: dict[str, Any] | None, needed: int | None = None) -> str | None:
    """Why the cluster cannot run a model, when that is known in advance (GET _ml/info limits, MlInfoAction):
    no ML memory at all and no autoscaling headroom, or less ML memory than the model needs. With ML autoscaling
    ES reports an effective_max_model_memory_limit beyond the current total: then nothing is refused."""
    if not limits:
        return None
    total = parse_bytes(limits.get("total_ml_memory"))
    headroom = parse_bytes(limits.get("effective_max_model_memory_limit")) or 0
    if total == 0 and not headroom:
        return ("the cluster has no machine learning capacity (GET _ml/info: total_ml_memory is 0 and no ML "
                "autoscaling); add an ML node or enable ML autoscaling")
    if needed and total and needed > total and headroom <= total:
        return (f"the model needs about {needed / (1 << 20):.0f} MB of ML memory to deploy but the cluster has "
                f"{total / (1 << 20):.0f} MB (GET _ml/info total_ml_memory)")
    return None
