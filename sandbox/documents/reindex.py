"""`POST _reindex` (synchronous only): read the source through search (so only refreshed documents, as ES's scroll
does), write each document to the destination with the same id. Response shape: ES BulkByScrollResponse."""

from __future__ import annotations

import time
from typing import Any

from sandbox.documents import writes
from sandbox.errors import ActionRequestValidation, EsError, Unsupported
from sandbox.http import EsRequest, Reply
from sandbox.search import view
from sandbox.search.source import filter_source, source_spec

_SOURCE_KEYS = {"index", "query", "size", "_source", "sort", "remote", "slice", "runtime_mappings"}
_DEST_KEYS = {"index", "op_type", "version_type", "pipeline", "routing"}


def reindex(sb: Any, req: EsRequest) -> dict[str, Any] | Reply:
    from sandbox.search.execute import matching_docs, resolve_indices

    started = time.perf_counter()
    if req.args.get("wait_for_completion", "true").lower() == "false":
        raise Unsupported(req.method, req.path, "wait_for_completion=false (tasks) is not supported")
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
    conflicts = body.get("conflicts", "abort")
    max_docs = body.get("max_docs", body.get("size"))
    op_type = dest.get("op_type", "index")
    expression = source["index"] if isinstance(source["index"], str) else ",".join(source["index"])
    indices = resolve_indices(sb, expression, {})
    if any(i.name == dest["index"] for i in indices):
        raise ActionRequestValidation(f"reindex cannot write into an index its reading from [{dest['index']}]")
    docs = matching_docs(sb, indices, source.get("query"))
    if max_docs is not None:
        docs = docs[:int(max_docs)]
    _, includes, excludes = source_spec(source.get("_source"))
    batch_size = int(source.get("size", 1000))
    created = updated = conflicts_count = 0
    failures: list[dict[str, Any]] = []
    target = writes.target_index(sb, dest["index"]) if docs else None
    if target is not None:
        writes.check_pipelines(sb, target, dest.get("pipeline"))
    # ES AbstractAsyncBulkByScrollAction.onBulkResponse: each scroll batch is one bulk request, so a failing
    # document does not stop the rest of its batch; failures (conflicts too, unless conflicts=proceed:
    # recordFailure) end the reindex after that batch.
    batches = 0
    for offset in range(0, len(docs), max(1, batch_size)):
        batches += 1
        for _, doc_id, doc in docs[offset:offset + max(1, batch_size)]:
            try:
                result, _ = writes.index_doc(target, doc_id, filter_source(doc.source, includes, excludes), op_type)
            except EsError as error:
                if error.status == 409:
                    conflicts_count += 1
                    if conflicts == "proceed":
                        continue
                failures.append({"index": target.name, "id": doc_id, "cause": error.cause_dict(),
                                 "status": error.status})
                continue
            if result["result"] == "created":
                created += 1
            else:
                updated += 1
        if failures:
            break
    if target is not None and req.args.get("refresh") in ("", "true", "wait_for"):
        view.refresh(target)
    body = {
        "took": int((time.perf_counter() - started) * 1000), "timed_out": False, "total": len(docs),
        "updated": updated, "created": created, "deleted": 0,
        "batches": batches,
        "version_conflicts": conflicts_count, "noops": 0, "retries": {"bulk": 0, "search": 0},
        "throttled_millis": 0, "requests_per_second": -1.0, "throttled_until_millis": 0, "failures": failures,
    }
    # ES: a reindex that stopped on failures answers with the failures' status (e.g. 409), body unchanged
    return Reply(body, max(f["status"] for f in failures)) if failures else body
