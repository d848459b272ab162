"""`POST _reindex` (synchronously, or as a task with wait_for_completion=false): read the source through search
(so only refreshed documents, as ES's scroll does), write each document to the destination with the same id.
Response shape: ES BulkByScrollResponse."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sandbox.documents import writes
from sandbox.errors import ActionRequestValidation, EsError, Unsupported
from sandbox.http import EsRequest, Reply
from sandbox.search import view
from sandbox.search.execute import matching_docs, resolve_indices
from sandbox.search.source import filter_source, source_spec
from sandbox.tasks import Task

_SOURCE_KEYS = {"index", "query", "size", "_source", "sort", "remote", "slice", "runtime_mappings"}
_DEST_KEYS = {"index", "op_type", "version_type", "pipeline", "routing"}


@dataclass
class _Plan:
    docs: list[Any]
    target: Any
    includes: Any
    excludes: Any
    op_type: str
    conflicts: str
    batch_size: int
    refresh: bool
    description: str


def _prepare(sb: Any, req: EsRequest) -> _Plan:
    """Validate the request and list the documents to copy (a search of the source: refreshed documents only)."""
    body = req.json({})
    unknown = set(body) - {"source", "dest", "max_docs", "conflicts", "script", "size"}
    if unknown:
        raise EsError(f"[reindex] unknown field [{sorted(unknown)[0]}]", status=400, type="x_content_parse_exception")
    source, dest = body.get("source") or {}, body.get("dest") or {}
    problems = []
    if not source.get("index"):
        problems.append("use _all if you really want to copy from all existing indexes")
    if not dest.get("index"):
        problems.append("index must be specified")
    if problems:
        raise ActionRequestValidation(*problems)
    if "script" in body or "remote" in source or "slice" in source:
        raise Unsupported(req.method, req.path, "reindex scripts, remote sources and slices are not supported")
    bad = (set(source) - _SOURCE_KEYS) or (set(dest) - _DEST_KEYS)
    if bad:
        raise EsError(f"[reindex] unknown field [{sorted(bad)[0]}]", status=400, type="x_content_parse_exception")
    max_docs = body.get("max_docs", body.get("size"))
    expression = source["index"] if isinstance(source["index"], str) else ",".join(source["index"])
    indices = resolve_indices(sb, expression, {})
    if any(i.name == dest["index"] for i in indices):
        raise ActionRequestValidation(f"reindex cannot write into an index its reading from [{dest['index']}]")
    docs = matching_docs(sb, indices, source.get("query"))
    if max_docs is not None:
        docs = docs[:int(max_docs)]
    _, includes, excludes = source_spec(source.get("_source"))
    target = writes.target_index(sb, dest["index"]) if docs else None
    if target is not None:
        writes.check_pipelines(sb, target, dest.get("pipeline"))
    return _Plan(docs, target, includes, excludes, dest.get("op_type", "index"), body.get("conflicts", "abort"),
                 int(source.get("size", 1000)), req.args.get("refresh") in ("", "true", "wait_for"),
                 f"reindex from [{expression}] to [{dest['index']}]")  # ReindexRequest#getDescription


def _status(plan: _Plan, counts: dict[str, int], batches: int) -> dict[str, Any]:
    """BulkByScrollTask.Status fields (also the counters of the final BulkByScrollResponse)."""
    return {"total": len(plan.docs), "updated": counts["updated"], "created": counts["created"], "deleted": 0,
            "batches": batches, "version_conflicts": counts["conflicts"], "noops": 0,
            "retries": {"bulk": 0, "search": 0}, "throttled_millis": 0, "requests_per_second": -1.0,
            "throttled_until_millis": 0}


def _copy(sb: Any, plan: _Plan, task: Task | None = None) -> tuple[dict[str, Any], int | None]:
    """Copy the documents: (BulkByScrollResponse body, failure status or None). With a task, the cluster lock is
    taken per document, progress goes to task.status, the pace knob throttles and a cancel stops the copy."""
    started = time.perf_counter()
    counts = {"created": 0, "updated": 0, "conflicts": 0}
    failures: list[dict[str, Any]] = []
    # ES AbstractAsyncBulkByScrollAction.onBulkResponse: each scroll batch is one bulk request, so a failing
    # document does not stop the rest of its batch; failures (conflicts too, unless conflicts=proceed:
    # recordFailure) end the reindex after that batch.
    batches = 0
    size = max(1, plan.batch_size)
    cancelled = False
    for offset in range(0, len(plan.docs), size):
        batches += 1
        for _, doc_id, doc in plan.docs[offset:offset + size]:
            if task is not None:
                pace = sb.cluster.pace.reindex_docs_per_second
                if pace:
                    time.sleep(1 / pace)
                if task.cancelled:
                    cancelled = True
                    break
            with sb.cluster.lock:
                _copy_one(plan, doc_id, doc, counts, failures)
            if task is not None:
                task.status = _status(plan, counts, batches)
        if failures or cancelled:
            break
    if plan.target is not None and plan.refresh:
        with sb.cluster.lock:
            view.refresh(plan.target)
    status = _status(plan, counts, batches)
    if cancelled:
        # AbstractAsyncBulkByScrollAction: a cancelled task stops and finishes normally; its response (and status)
        # carry the cancel reason (BulkByScrollTask.Status "canceled")
        status["canceled"] = "by user request"
        task.status = status
    body = {"took": int((time.perf_counter() - started) * 1000), "timed_out": False, **status, "failures": failures}
    return body, (max(f["status"] for f in failures) if failures else None)


def _copy_one(plan: _Plan, doc_id: str, doc: Any, counts: dict[str, int], failures: list[dict[str, Any]]) -> None:
    try:
        result, _ = writes.index_doc(plan.target, doc_id, filter_source(doc.source, plan.includes, plan.excludes),
                                     plan.op_type)
    except EsError as error:
        if error.status == 409:
            counts["conflicts"] += 1
            if plan.conflicts == "proceed":
                return
        failures.append({"index": plan.target.name, "id": doc_id, "cause": error.cause_dict(),
                         "status": error.status})
        return
    counts["created" if result["result"] == "created" else "updated"] += 1


def reindex(sb: Any, req: EsRequest) -> dict[str, Any] | Reply:
    plan = _prepare(sb, req)
    if not req.flag("wait_for_completion", True):
        # ES RestReindexAction: the request becomes a task; the answer is its id only
        task = sb.cluster.tasks.start("indices:data/write/reindex", plan.description,
                                      lambda t: _copy(sb, plan, t)[0])
        task.status = _status(plan, {"created": 0, "updated": 0, "conflicts": 0}, 0)
        return {"task": task.task_id}
    body, failed = _copy(sb, plan)
    # ES: a reindex that stopped on failures answers with the failures' status (e.g. 409), body unchanged
    return Reply(body, failed) if failed else body
