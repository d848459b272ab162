"""The model steps of a plan: prepare (trace or reuse the cached artifact), upload, and wait for a deployment or an
endpoint to serve. Each gets its arguments from the plan; what it learns (the artifact's checksum) goes into the
run's notes, which the ownership record written after it keeps.
"""

from __future__ import annotations

from typing import Any

from provisioning.errors import ClusterError, Refused
from provisioning.model import Resource, SourceLocation
from provisioning.model_import import deployment as dep
from provisioning.model_import import importer
from provisioning.model_import.cache import comparable

# What upload_model may send besides reads (GET _ml/info, GET the model's definition_status).
UPLOAD_SENDS = ("PUT /_ml/trained_models/*", "PUT /_ml/trained_models/*/definition/*",
                "PUT /_ml/trained_models/*/vocabulary", "DELETE /_ml/trained_models/*")
WAIT_SENDS = ("POST /_ml/trained_models/*/_infer", "POST /_inference/*/*")


def _resource(model_id: str, spec: dict[str, Any], source_file: str) -> Resource:
    return Resource("trained_model", model_id, spec, SourceLocation(source_file))


def _prepare(run: Any, resource: Resource, identity: dict[str, Any], allocations: int) -> importer.Prepared:
    prepared = importer.prepare(run.ctx, resource, deployments=allocations)
    if comparable(prepared.identity) != comparable(identity):
        raise Refused(f"{resource.key}: the model's files changed after the plan was made (planned "
                      f"{identity.get('revision')}, found {prepared.identity.get('revision')}); make a new plan")
    return prepared


def prepare_model(run: Any, *, model_id: str, spec: dict[str, Any], source_file: str, identity: dict[str, Any],
                  allocations: int = 1) -> None:
    """Trace (or reuse the cached artifact) and check ML capacity: no write. Runs before a replacement deletes the
    model in place, so a model that cannot be imported does not cost the one serving."""
    _prepare(run, _resource(model_id, spec, source_file), identity, allocations)


def upload_model(run: Any, *, model_id: str, spec: dict[str, Any], source_file: str, identity: dict[str, Any],
                 allocations: int = 1) -> None:
    """Make the cluster hold exactly the prepared model: nothing to do, resume an interrupted upload, or upload."""
    resource = _resource(model_id, spec, source_file)
    prepared = _prepare(run, resource, identity, allocations)
    importer.ensure_uploaded(run.ctx, resource, prepared)
    run.notes.update(sha256=prepared.artifact.sha256, cache_key=prepared.key, identity=prepared.identity,
                     upload_complete=True)


def wait_deployment(run: Any, *, model_id: str, deployment_id: str, task_type: str) -> None:
    """Poll the deployment until it serves (started, allocations as ES's docs advise), then one real inference."""
    timeout = float(run.ctx.options.wait_timeout)
    dep.wait_ready(run.client, model_id, deployment_id, timeout, resource=run.change.key,
                   wait_for=run.ctx.options.wait_for, reporter=run.ctx.reporter)
    dep.probe_model(run.client, deployment_id, task_type, timeout)
    run.ctx.reporter.info(f"{run.change.key}: deployment {deployment_id} ready (probe inference answered)")


def wait_endpoint(run: Any, *, inference_id: str, task_type: str, model_id: str, deployment_id: str) -> None:
    """An in-cluster endpoint's deployment serves, and the endpoint answers one real request."""
    timeout = float(run.ctx.options.wait_timeout)
    dep.wait_ready(run.client, model_id, deployment_id, timeout, resource=run.change.key,
                   wait_for=run.ctx.options.wait_for, reporter=run.ctx.reporter)
    client = run.client.options(request_timeout=timeout + 30)
    if task_type == "rerank":
        result = client.inference.rerank(inference_id=inference_id, query=dep.PROBE_QUERY, input=dep.PROBE_DOCS,
                                         timeout=f"{int(timeout)}s")
        if len(result.body.get("rerank", [])) != len(dep.PROBE_DOCS):
            raise ClusterError(f"the readiness probe (POST _inference/rerank/{inference_id}) answered "
                               f"{len(result.body.get('rerank', []))} results for {len(dep.PROBE_DOCS)} documents",
                               resource=run.change.key)
    elif task_type in ("text_embedding", "sparse_embedding"):
        client.inference.inference(task_type=task_type, inference_id=inference_id, input=[dep.PROBE_DOCS[0]],
                                   timeout=f"{int(timeout)}s")
    run.ctx.reporter.info(f"{run.change.key}: deployment {deployment_id} ready (probe answered)")
