"""Model deployments: start (really loads the TorchScript), stop, update, infer, stats.

Evidence: ES TransportDeleteTrainedModelAction, TransportStartTrainedModelDeploymentAction (check order, error texts),
TextSimilarityProcessor, ml/3rd_party_deployment.yml (cache counters, multiple deployments, low priority).
One simulated ML node: allocations are granted at once, so a started deployment is always fully allocated.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sandbox.errors import ActionRequestValidation, EsError, ResourceNotFound, StatusException
from sandbox.versions import version_at_least

if TYPE_CHECKING:
    from sandbox.ml.runtime import LoadedModel
    from sandbox.ml.store import MlStore, TrainedModel

_WAIT_FOR = ("starting", "started", "fully_allocated")
_CACHE_ENTRIES = 10_000


class _WrapsJavaCause(EsError):
    """An ES exception caused by a plain Java one: ES's guessRootCauses stops at the last ElasticsearchException,
    so root_cause names this error, not its cause (ElasticsearchException#guessRootCauses)."""

    def root_cause(self) -> EsError:
        return self


def missing_deployment(deployment_id: str) -> ResourceNotFound:
    # ES ExceptionsHelper.missingModelDeployment
    return ResourceNotFound(f"No known model deployment with id [{deployment_id}]")


@dataclass
class Deployment:
    deployment_id: str
    model_id: str
    model_bytes: int
    number_of_allocations: int = 1
    threads_per_allocation: int = 1
    queue_capacity: int = 1024
    cache_size: str | None = None
    priority: str = "normal"
    adaptive_allocations: dict[str, Any] | None = None
    per_deployment_memory_bytes: int = 0
    per_allocation_memory_bytes: int = 0
    start_time: int = field(default_factory=lambda: int(time.time() * 1000))
    created_by_endpoint: str | None = None  # inference endpoint that started it (deployment id == endpoint id)
    inference_count: int = 0
    cache_hits: int = 0
    error_count: int = 0
    total_time_ms: float = 0.0
    last_access: int | None = None
    # transient: never dumped
    allocating_since: float = field(default_factory=time.monotonic)
    loaded: LoadedModel | None = None
    cache: dict[str, Any] = field(default_factory=dict)

    PERSISTED = ("deployment_id", "model_id", "model_bytes", "number_of_allocations", "threads_per_allocation",
                 "queue_capacity", "cache_size", "priority", "adaptive_allocations", "per_deployment_memory_bytes",
                 "per_allocation_memory_bytes", "start_time", "created_by_endpoint", "inference_count", "cache_hits",
                 "error_count", "total_time_ms", "last_access")

    def cache_enabled(self) -> bool:
        return self.cache_size not in ("0", "0b") and (self.cache_size is not None or self.model_bytes > 0)

    def cache_size_text(self) -> str:
        # ES TaskParams: an explicit cache_size echoes as given; the default is the model size in bytes
        return self.cache_size if self.cache_size is not None else f"{self.model_bytes}b"

    def task_parameters(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "deployment_id": self.deployment_id, "model_bytes": self.model_bytes,
                "threads_per_allocation": self.threads_per_allocation,
                "number_of_allocations": self.number_of_allocations, "queue_capacity": self.queue_capacity,
                "cache_size": self.cache_size_text(), "priority": self.priority,
                "per_deployment_memory_bytes": self.per_deployment_memory_bytes,
                "per_allocation_memory_bytes": self.per_allocation_memory_bytes}


class Deployments:
    def __init__(self, store: MlStore):
        self.store = store
        self.by_id: dict[str, Deployment] = {}

    def reset(self) -> None:
        self.by_id = {}

    def dump(self) -> dict[str, Any]:
        return {d: {k: getattr(dep, k) for k in Deployment.PERSISTED} for d, dep in self.by_id.items()}

    def load(self, data: dict[str, Any]) -> None:
        # Restarted lazily: the TorchScript module is reloaded from the stored parts on first inference.
        self.by_id = {d: Deployment(**values) for d, values in data.items()}

    @property
    def node_id(self) -> str:
        return self.store.cluster.node_id

    def of_model(self, model_id: str) -> list[Deployment]:
        return [d for _, d in sorted(self.by_id.items()) if d.model_id == model_id]

    def remove(self, deployment_id: str) -> None:
        self.by_id.pop(deployment_id, None)

    # ---- start -------------------------------------------------------------------------------------------------
    def start(self, model_id: str, *, deployment_id: str | None = None, number_of_allocations: int | None = None,
              threads_per_allocation: int | None = None, queue_capacity: int | None = None,
              cache_size: str | None = None, priority: str | None = None, wait_for: str | None = None,
              adaptive_allocations: dict[str, Any] | None = None, created_by_endpoint: str | None = None,
              ) -> Deployment:
        deployment_id = deployment_id or model_id
        priority = (priority or "normal").lower()
        self._validate_start(number_of_allocations, threads_per_allocation, queue_capacity, priority, wait_for,
                             adaptive_allocations)
        # ES checks the deployment id first, before looking at the model (TransportStartTrainedModelDeploymentAction)
        if deployment_id in self.by_id:
            raise StatusException(f"Could not start model deployment because an existing deployment with the same id "
                                  f"[{deployment_id}] exist", 400)
        endpoints = getattr(self.store.cluster.inference, "endpoints", {})
        if model_id in endpoints and created_by_endpoint is None:
            raise StatusException(f"Model IDs must be unique. Requested model ID [{model_id}] matches existing model "
                                  f"IDs but must not.", 400)
        model = self.store.require_model(model_id)
        model_id = model.model_id
        if model.model_type != "pytorch":
            raise StatusException(f"model [{model_id}] of type [{model.model_type}] cannot be deployed. Only PyTorch "
                                  f"models can be deployed", 400)
        if deployment_id != model_id and self.store.get_model(deployment_id) is not None:
            raise StatusException(f"Deployment id [{deployment_id}] is the same as an another model which is not the "
                                  f"model being deployed. Deployment id can be the same as the model being deployed "
                                  f"but cannot match a different model", 400)
        if model.downloading:
            raise StatusException(f"Model download task is currently running. Wait for trained model [{model_id}] "
                                  f"download task to complete then try again", 400)
        self._check_definition(model)
        self._check_capacity()
        adaptive = self._adaptive(adaptive_allocations)
        allocations = number_of_allocations or (max(1, adaptive.get("min_number_of_allocations", 1))
                                                if adaptive and adaptive.get("enabled") else 1)
        metadata = model.config.get("metadata") or {}
        deployment = Deployment(
            deployment_id=deployment_id, model_id=model_id, model_bytes=model.total_length or 0,
            number_of_allocations=allocations, threads_per_allocation=threads_per_allocation or 1,
            queue_capacity=queue_capacity or 1024, cache_size=cache_size, priority=priority,
            adaptive_allocations=adaptive,
            per_deployment_memory_bytes=int(metadata.get("per_deployment_memory_bytes", 0) or 0),
            per_allocation_memory_bytes=int(metadata.get("per_allocation_memory_bytes", 0) or 0),
            created_by_endpoint=created_by_endpoint,
        )
        deployment.loaded = self._load(model, deployment_id)
        self.by_id[deployment_id] = deployment
        return deployment

    @staticmethod
    def _validate_start(allocations: int | None, threads: int | None, queue: int | None, priority: str,
                        wait_for: str | None, adaptive: dict[str, Any] | None) -> None:
        problems = []
        if allocations is not None and allocations < 1:
            problems.append("[number_of_allocations] must be a positive integer")
        if threads is not None and (threads < 1 or threads > 32 or threads & (threads - 1)):
            problems.append("[threads_per_allocation] must be a power of 2 less than or equal to 32")
        if queue is not None and not 1 <= queue <= 1_000_000:
            problems.append("[queue_capacity] must be a positive integer")
        if priority not in ("normal", "low"):
            raise EsError(f"No enum constant Priority.{priority.upper()}", status=400,
                          type="illegal_argument_exception")
        if priority == "low":
            if allocations is not None and allocations > 1:
                problems.append("[number_of_allocations] must be 1 when [priority] is low")
            if threads is not None and threads > 1:
                problems.append("[threads_per_allocation] must be 1 when [priority] is low")
        if adaptive and adaptive.get("enabled") and allocations is not None:
            problems.append("[number_of_allocations] cannot be set if adaptive allocations is enabled")
        if problems:
            raise ActionRequestValidation(*problems)
        if wait_for is not None and wait_for not in _WAIT_FOR:
            raise EsError(f"unknown allocation status [{wait_for}]", status=400, type="illegal_argument_exception")

    @staticmethod
    def _adaptive(raw: dict[str, Any] | None) -> dict[str, Any] | None:
        if raw is None:
            return None
        allowed = {"enabled", "min_number_of_allocations", "max_number_of_allocations"}
        for key in raw:
            if key not in allowed:
                raise EsError(f"[adaptive_allocations_settings] unknown field [{key}]", status=400,
                              type="x_content_parse_exception")
        low, high = raw.get("min_number_of_allocations"), raw.get("max_number_of_allocations")
        if low is not None and high is not None and low > high:
            raise ActionRequestValidation("[max_number_of_allocations] must be greater than or equal to "
                                          "[min_number_of_allocations]")
        return dict(raw)

    def _check_definition(self, model: TrainedModel) -> None:
        """ES validateModelDefinition: no parts -> 404; lengths not adding up or last part missing -> 400."""
        model_id = model.model_id
        if not model.parts:
            raise ResourceNotFound(f"Could not find trained model definition [{model_id}]")
        if not model.fully_defined(self.store.cluster.pace.ml_refresh_seconds):
            raise StatusException(f"Model definition truncated. Unable to deserialize trained model definition "
                                  f"[{model_id}]", 400)

    def _check_capacity(self) -> None:
        """No ML memory = no ML node: ES TrainedModelAssignmentClusterService.checkModelIsFullyAllocatedIfScaling
        IsNotPossible fails the start with 429 and the rebalancer's reason "No ML nodes exist in the cluster"."""
        if self.store.ml_memory_bytes >= 1 << 20:
            return
        detail = EsError("Could not start deployment because no suitable nodes were found, allocation explanation "
                         "[No ML nodes exist in the cluster]", status=500, type="illegal_state_exception")
        raise _WrapsJavaCause("Could not start deployment because no ML nodes with sufficient capacity were found",
                              status=429, type="status_exception", caused_by=detail)

    def _load(self, model: TrainedModel, deployment_id: str) -> LoadedModel:
        """Load the definition like the ML node's pytorch_inference process; a failure fails the start (500)."""
        from sandbox.ml.runtime import LoadedModel, LoadError

        if model.vocabulary is None:
            reason = (f"[{deployment_id}] Could not find vocabulary document [{model.model_id}_vocabulary] for "
                      f"model [{model.model_id}]")
        else:
            try:
                return LoadedModel(model.definition_bytes(), model.vocabulary["vocabulary"], model.config)
            except LoadError as exc:
                reason = f"[{deployment_id}] pytorch_inference failed to load the model definition: {exc}"
        # ES DeploymentStartedPredicate: a failed node routing fails the start and the deployment is deleted.
        raise StatusException(f"Could not start trained model deployment, the following nodes failed with errors "
                              f"[{{{self.node_id}={reason}}}]", 500)

    # ---- stop / update ---------------------------------------------------------------------------------------
    def stop(self, deployment_id: str, *, force: bool = False, allow_no_match: bool = True) -> None:
        deployment = self.by_id.get(deployment_id)
        if deployment is None:
            if not allow_no_match:
                raise missing_deployment(deployment_id)
            return
        if not force:
            if self.store.pipeline_references({deployment_id}):
                raise StatusException(f"Cannot stop deployment [{deployment_id}] as it is referenced by ingest "
                                      f"processors; use force to stop the deployment", 409)
            for alias in self.store.aliases_of(deployment.model_id):
                if self.store.pipeline_references({alias}):
                    raise StatusException(f"Cannot stop deployment [{deployment_id}] as it has a model_alias [{alias}] "
                                          f"that is still referenced by ingest processors; use force to stop the "
                                          f"deployment", 409)
            users = self.store.cluster.inference.endpoints_using_deployment(deployment_id)
            if users:
                # ES CreateFromDeploymentIT / CustomElandModelIT: endpoint-owned or attached deployments need force
                raise StatusException(f"Cannot stop deployment [{deployment_id}] as it is used by inference endpoint "
                                      f"[{users[0]}]; use force to stop the deployment", 409)
        self.remove(deployment_id)

    def update(self, deployment_id: str, *, number_of_allocations: int | None,
               adaptive_allocations: dict[str, Any] | None, from_inference_api: bool = False) -> Deployment:
        deployment = self.by_id.get(deployment_id)
        if deployment is None:
            raise missing_deployment(deployment_id)
        if number_of_allocations is None and adaptive_allocations is None:
            raise ActionRequestValidation("[number_of_allocations] or [adaptive_allocations] is required")
        if number_of_allocations is not None and number_of_allocations < 1:
            raise ActionRequestValidation("[number_of_allocations] must be a positive integer")
        adaptive = self._adaptive(adaptive_allocations)
        if adaptive and adaptive.get("enabled") and number_of_allocations is not None:
            raise ActionRequestValidation("[number_of_allocations] cannot be set if adaptive allocations is enabled")
        if deployment.priority == "low" and (number_of_allocations or 1) > 1:
            raise ActionRequestValidation("[number_of_allocations] must be 1 when [priority] is low")
        if (not from_inference_api and deployment.created_by_endpoint is not None
                and version_at_least(self.store.cluster.version, (9, 2))):
            # ES 9.2+ (PR #130940) TransportUpdateTrainedModelDeploymentAction
            raise StatusException(f"Cannot update deployment [{deployment_id}] as it was created by inference endpoint "
                                  f"[{deployment.created_by_endpoint}]. This model deployment must be updated through "
                                  f"the inference API.", 409)
        if number_of_allocations is not None:
            deployment.number_of_allocations = number_of_allocations
            if adaptive is None and (deployment.adaptive_allocations or {}).get("enabled"):
                # ES 8.16+: setting allocations by hand turns adaptive allocations off [K]
                deployment.adaptive_allocations = {**deployment.adaptive_allocations, "enabled": False}
        if adaptive is not None:
            deployment.adaptive_allocations = adaptive
            if adaptive.get("enabled") and number_of_allocations is None:
                deployment.number_of_allocations = max(deployment.number_of_allocations,
                                                       adaptive.get("min_number_of_allocations") or 1)
        return deployment

    # ---- inference -------------------------------------------------------------------------------------------
    def resolve(self, id_or_alias: str) -> Deployment:
        """_infer target: a deployment id, else a model (or alias) with a deployment (its own id first)."""
        if id_or_alias in self.by_id:
            return self.by_id[id_or_alias]
        model = self.store.require_model(id_or_alias)
        deployments = self.of_model(model.model_id)
        if not deployments:
            if model.model_type != "pytorch":
                raise EsError("the sandbox does not run tree ensemble or lang_ident models", status=400,
                              type="sandbox_unsupported_exception")
            raise StatusException(f"Trained model [{model.model_id}] is not deployed", 409)
        own = [d for d in deployments if d.deployment_id == model.model_id]
        return (own or deployments)[0]

    def _module(self, deployment: Deployment) -> LoadedModel:
        if deployment.loaded is None:  # restored from a state file: restart lazily
            model = self.store.require_model(deployment.model_id)
            deployment.loaded = self._load(model, deployment.deployment_id)
        return deployment.loaded

    def infer_texts(self, deployment: Deployment, texts: list[str], update: dict[str, Any] | None) -> list[dict]:
        module = self._module(deployment)
        key_suffix = json.dumps(update or {}, sort_keys=True)
        results = []
        for text in texts:
            started = time.perf_counter()
            deployment.inference_count += 1
            deployment.last_access = int(time.time() * 1000)
            key = f"{text}\u0000{key_suffix}"
            if deployment.cache_enabled() and key in deployment.cache:
                deployment.cache_hits += 1
                results.append(dict(deployment.cache[key]))
                continue
            try:
                result = module.infer(text, update)
            except EsError:
                deployment.error_count += 1
                raise
            deployment.total_time_ms += (time.perf_counter() - started) * 1000
            if deployment.cache_enabled():
                deployment.cache[key] = result
                if len(deployment.cache) > _CACHE_ENTRIES:  # bounded, oldest first (ES: LRU by bytes)
                    deployment.cache.pop(next(iter(deployment.cache)))
            results.append(result)
        return results

    def infer(self, id_or_alias: str, docs: list[dict[str, Any]], config_update: dict[str, Any] | None,
              ) -> list[dict[str, Any]]:
        deployment = self.resolve(id_or_alias)
        model = self.store.require_model(deployment.model_id)
        field_names = (model.config.get("input") or {}).get("field_names")
        texts = []
        for doc in docs:
            if field_names:
                value = doc.get(field_names[0])
                if value is None:
                    raise StatusException(f"Input field [{field_names[0]}] does not exist in the source document", 400)
            else:
                # no `input` in the config (allowed for pytorch): the sandbox takes the document's only value
                value = next(iter(doc.values()), "")
            texts.append(str(value))
        update = None
        if config_update:
            (_, update), = config_update.items()
        return self.infer_texts(deployment, texts, update)

    # ---- allocation (Pace knobs) ----------------------------------------------------------------------------
    def allocated(self, deployment: Deployment) -> int:
        """Allocations running now. Normally the target; with the pace knobs, as ES reports a deployment that does
        not fit or is still starting (AllocationStatus: started with allocation_count < target): the first
        allocation starts at once and each further one `allocation_seconds` later, and all deployments together
        hold at most `max_allocations` (the earlier-started first)."""
        pace = self.store.cluster.pace
        target = deployment.number_of_allocations
        count = target
        if pace.allocation_seconds > 0:
            elapsed = time.monotonic() - deployment.allocating_since
            count = min(count, 1 + int(elapsed / pace.allocation_seconds))
        if pace.max_allocations is not None:
            earlier = [d for d in self.by_id.values() if d.allocating_since < deployment.allocating_since]
            taken = sum(self.allocated(d) for d in earlier)
            count = min(count, max(0, pace.max_allocations - taken))
        return count

    def allocation_status(self, deployment: Deployment) -> dict[str, Any]:
        """ES AllocationStatus: starting (none yet), started (some), fully_allocated (all of the target)."""
        count, target = self.allocated(deployment), deployment.number_of_allocations
        state = "fully_allocated" if count >= target else ("started" if count > 0 else "starting")
        return {"allocation_count": count, "target_allocation_count": target, "state": state}

    # ---- responses ---------------------------------------------------------------------------------------------
    def assignment(self, deployment: Deployment) -> dict[str, Any]:
        started = datetime.fromtimestamp(deployment.start_time / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        body = {
            "task_parameters": deployment.task_parameters(),
            "routing_table": {self.node_id: {"current_allocations": self.allocated(deployment),
                                             "target_allocations": deployment.number_of_allocations,
                                             "routing_state": "started", "reason": ""}},
            "assignment_state": "started",
            "start_time": started + "Z",
            "max_assigned_allocations": deployment.number_of_allocations,
        }
        if deployment.adaptive_allocations is not None:
            body["adaptive_allocations"] = deployment.adaptive_allocations
        return body

    def deployment_stats(self, deployment: Deployment) -> dict[str, Any]:
        count = deployment.inference_count
        computed = count - deployment.cache_hits
        average = deployment.total_time_ms / computed if computed else 0.0
        node = {
            "node": {self.node_id: {"name": "sandbox-node-1", "ephemeral_id": self.node_id,
                                    "transport_address": "127.0.0.1:9300", "external_id": "sandbox-node-1",
                                    "attributes": {}, "roles": ["data", "ingest", "master", "ml"],
                                    "version": self.store.cluster.version}},
            "routing_state": {"routing_state": "started"},
            "inference_count": count,
            "inference_cache_hit_count": deployment.cache_hits,
            "inference_cache_hit_count_last_minute": 0,
            "average_inference_time_ms": round(average, 3),
            "average_inference_time_ms_excluding_cache_hits": round(average, 3),
            "number_of_allocations": self.allocated(deployment),
            "threads_per_allocation": deployment.threads_per_allocation,
            "throughput_last_minute": 0,
            "number_of_pending_requests": 0,
            "start_time": deployment.start_time,
            "peak_throughput_per_minute": count,
            "error_count": deployment.error_count,
            "rejected_execution_count": 0,
            "timeout_count": 0,
        }
        if deployment.last_access is not None:
            node["last_access"] = deployment.last_access
        stats = {
            "deployment_id": deployment.deployment_id, "model_id": deployment.model_id,
            "threads_per_allocation": deployment.threads_per_allocation,
            "number_of_allocations": deployment.number_of_allocations,
            "queue_capacity": deployment.queue_capacity,
            "state": "started" if self.allocated(deployment) else "starting",
            "allocation_status": self.allocation_status(deployment),
            "cache_size": deployment.cache_size_text(), "priority": deployment.priority,
            "start_time": deployment.start_time, "peak_throughput_per_minute": count,
            "inference_count": count, "error_count": deployment.error_count,
            "rejected_execution_count": 0, "timeout_count": 0, "nodes": [node],
        }
        if deployment.adaptive_allocations is not None:
            stats["adaptive_allocations"] = deployment.adaptive_allocations
        return stats
