"""The model import steps the trained_model kind runs at apply time: prepare (trace or reuse the cached artifact,
check capacity), then make the cluster hold exactly that model (fresh upload, resume, or clean restart).

Order matters for "never half-done": everything that can be known in advance (source reachable, architecture and
task type supported, ML capacity, model size) is checked before the first write; a replacement traces the new
model before it deletes the old one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisioning.errors import ClusterError, Refused
from provisioning.model_import import deployment as dep
from provisioning.model_import.cache import Artifact, ArtifactCache, ModelSource, comparable, library_versions
from provisioning.model_import.upload import (
    Journal,
    UploadReport,
    definition_status,
    put_vocabulary,
    upload,
    upload_workers,
)

MANAGED_BY = "es-stack"  # metadata.managed_by on every model this tool uploads (the ownership marker)
RECORD_KEY = "es_stack"  # metadata.es_stack: source, revision, task type, cache key, artifact sha256


@dataclass
class Prepared:
    source: ModelSource
    identity: dict[str, Any]
    key: str
    artifact: Artifact
    cluster: str = ""  # journal scope: set by ensure_uploaded (journal_scope)


def base_dir(resource: Any) -> Path | None:
    file = getattr(getattr(resource, "source", None), "file", None)
    return Path(file).parent if file and not str(file).startswith("(") else None


def source_of(resource: Any) -> ModelSource:
    return ModelSource.from_spec(resource.spec, base_dir(resource))


def recorded(config: dict[str, Any] | None) -> dict[str, Any]:
    """What this tool recorded in a model's metadata at upload ({} for models uploaded otherwise)."""
    metadata = (config or {}).get("metadata") or {}
    record = metadata.get(RECORD_KEY)
    return record if isinstance(record, dict) else {}


def owner(config: dict[str, Any] | None) -> tuple[str | None, str | None]:
    metadata = (config or {}).get("metadata") or {}
    return metadata.get("managed_by"), metadata.get("stack")


def same_identity(record: dict[str, Any], identity: dict[str, Any]) -> bool:
    return comparable(record) == comparable(identity)


def cluster_info(client: Any) -> dict[str, Any]:
    """The cluster's version in GET /'s shape, read with privileges the stack's API key has (README: manage_ml).

    GET / is `cluster:monitor/main`, granted only by `monitor`/`manage`/`all` (ES ClusterPrivilegeResolver). GET
    _ml/info is `cluster:monitor/xpack/ml/info/get` (monitor_ml, inside manage_ml); its `native_code.version` is the
    version of the ML native controller (TransportMlInfoAction: NativeController#getNativeCodeInfo), released in
    lockstep with Elasticsearch. It is empty when the node answering runs no controller: only then GET / is asked.
    """
    native = (client.ml.info().body.get("native_code") or {}).get("version")
    if native:
        return {"version": {"number": str(native)}}
    return client.info().body


def journal_scope(ctx: Any) -> str:
    """Which cluster the upload journal belongs to: the ledger's random id (provisioning/ledger.py; read by every
    plan and written with the ledger, which an apply holds its lock in), so a journal is never reused on another
    cluster or after the ledger was lost. GET /'s cluster_uuid would need the `monitor` privilege."""
    if not ctx.ledger.identity:
        ctx.ledger.ensure_index()
    return ctx.ledger.identity or "unknown-cluster"


def prepare(ctx: Any, resource: Any, *, deployments: int = 0) -> Prepared:
    """Trace (or reuse) the artifact and check the cluster can take it. No write to the cluster."""
    from provisioning.model_import import tracing  # lazy: tracing imports torch/eland.ml when it runs

    client, label = ctx.client, resource.key
    limits = dep.ml_limits(client)
    problem = dep.capacity_problem(limits)
    if problem:
        raise ClusterError(problem + "; nothing was uploaded", resource=label, location=str(resource.source))
    info = cluster_info(client)
    version = tracing.es_version(client, info)
    source = source_of(resource)
    identity = source.identity()
    key = source.cache_key(identity)
    token = ctx.secret(source.token_env) if source.token_env else None
    cache = ArtifactCache(ctx.options.cache_dir)
    cached = cache.load(key)
    if cached is None:
        ctx.reporter.info(f"{label}: tracing {source.describe()} ({source.task_type}) with eland")
    artifact = cached or tracing.trace(source, cache=cache, key=key, identity=identity, version=version,
                                       label=label, token=token, reporter=ctx.reporter)
    needed = dep.estimated_memory(artifact.config, artifact.size, max(1, deployments))
    problem = dep.capacity_problem(limits, needed)
    if problem:
        raise ClusterError(problem + "; nothing was uploaded", resource=label, location=str(resource.source))
    return Prepared(source, identity, key, artifact)


def config_body(ctx: Any, prepared: Prepared) -> dict[str, Any]:
    """eland's config with our ownership and provenance added to `metadata` (ES keeps metadata verbatim)."""
    body = dict(prepared.artifact.config)
    metadata = dict(body.get("metadata") or {})
    metadata.update({"managed_by": MANAGED_BY, "stack": ctx.stack, RECORD_KEY: {
        **prepared.identity, "cache_key": prepared.key, "sha256": prepared.artifact.sha256,
        "definition_length": prepared.artifact.size, **library_versions()}})
    body["metadata"] = metadata
    return body


def delete_model(client: Any, model_id: str) -> None:
    """DELETE with force: ES force-stops every deployment of the model first (TransportDeleteTrainedModelAction)."""
    client.options(ignore_status=404).ml.delete_trained_model(model_id=model_id, force=True)


def ensure_uploaded(ctx: Any, resource: Any, prepared: Prepared) -> UploadReport | None:
    """Make the cluster hold the prepared model under resource.name: nothing to do, resume, or (re)upload.

    An interrupted upload leaves a config and some parts. With the same artifact it is resumed (ES refuses to
    overwrite a stored part, so re-sent parts are harmless); with another artifact it is deleted and restarted.
    """
    client, name, label = ctx.client, resource.name, resource.key
    prepared.cluster = prepared.cluster or journal_scope(ctx)
    journal = Journal.for_model(ctx.options.cache_dir, prepared.cluster, name, prepared.artifact.sha256)
    status = definition_status(client, name)
    if status is not None:
        managed_by, stack = owner(status)
        record = recorded(status)
        if managed_by != MANAGED_BY or stack != ctx.stack:
            raise Refused(f"{label}: a trained model with this id already exists and was not uploaded by stack "
                          f"{ctx.stack!r}; delete it (DELETE _ml/trained_models/{name}?force=true) or declare the "
                          f"model under another name")
        if same_identity(record, prepared.identity) and status.get("fully_defined"):
            if put_vocabulary(client, name, prepared.artifact.vocabulary):
                ctx.reporter.info(f"{label}: definition complete; vocabulary uploaded")
            return None
        if same_identity(record, prepared.identity) and record.get("sha256") == prepared.artifact.sha256:
            ctx.reporter.info(f"{label}: resuming an interrupted upload")
            return _upload(ctx, resource, prepared, journal, resume=True)
        ctx.reporter.info(f"{label}: discarding a partial upload of another artifact; uploading again")
        delete_model(client, name)
    # A fresh upload: whatever the journal remembers is gone from the cluster (a model deleted after an interrupted
    # upload), so it must not make us skip parts.
    journal.discard()
    journal = Journal.for_model(ctx.options.cache_dir, prepared.cluster, name, prepared.artifact.sha256)
    return _upload(ctx, resource, prepared, journal, resume=False)


def _upload(ctx: Any, resource: Any, prepared: Prepared, journal: Journal, *, resume: bool) -> UploadReport:
    workers = upload_workers(getattr(ctx.options, "upload_workers", None))
    report = upload(ctx.client, resource.name, prepared.artifact, None if resume else config_body(ctx, prepared),
                    workers=workers, journal=journal, reporter=ctx.reporter)
    ctx.reporter.info(f"{resource.key}: uploaded {report.sent} of {report.total_parts} definition parts "
                      f"({workers} workers)" + (f", {report.already_stored + report.skipped} were already stored"
                                                if resume else ""))
    return report
