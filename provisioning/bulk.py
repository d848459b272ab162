"""The bulk steps of a documents change: index the planned documents of a data file, or delete planned ids.

The data file is read again at apply: a file that changed after the plan (its content hash differs) is refused,
so the documents loaded are the ones the plan listed.
"""

from __future__ import annotations

from typing import Any

from elasticsearch import helpers

from provisioning.diffing import spec_hash
from provisioning.errors import ClusterError, Refused
from provisioning.kinds.documents_data import field_value, read_source

BULK_CHUNK = 500


def _bulk(run: Any, actions: list[dict[str, Any]], what: str) -> None:
    if not actions:
        return
    errors = []
    with run.ctx.reporter.progress(f"{run.change.key}: {what}", total=len(actions)) as progress:
        # streaming_bulk retries 429 rejections itself with exponential backoff (max_retries)
        for ok, item in helpers.streaming_bulk(run.client, actions, chunk_size=BULK_CHUNK, max_retries=3,
                                               raise_on_error=False, raise_on_exception=True):
            progress.update(1)
            if not ok:
                op = next(iter(item.values()))
                if not (op.get("status") == 404 and what == "delete"):
                    errors.append(op)
    if errors:
        err = errors[0].get("error") or {}
        reason = err.get("reason", err) if isinstance(err, dict) else err
        raise ClusterError(f"{len(errors)} of {len(actions)} documents failed to {what}; first: id "
                           f"{errors[0].get('_id')}: {reason}", status=errors[0].get("status"),
                           es_type=err.get("type") if isinstance(err, dict) else None)


def bulk_index(run: Any, *, index: str, source: str, format: str, id_field: str, ids: list[str] | None,
               content_hash: str) -> None:
    docs = read_source(source, format)
    if spec_hash(docs) != content_hash:
        raise Refused(f"{run.change.key}: {source} changed after the plan was made; make a new plan")
    wanted = None if ids is None else set(ids)
    actions = [{"_op_type": "index", "_index": index, "_id": str(field_value(d, id_field)), "_source": d}
               for d in docs if wanted is None or str(field_value(d, id_field)) in wanted]
    _bulk(run, actions, "index")


def bulk_delete(run: Any, *, index: str, ids: list[str]) -> None:
    if not run.client.indices.exists(index=index):
        return  # nothing left to delete (and a bulk must never be what creates an index)
    _bulk(run, [{"_op_type": "delete", "_index": index, "_id": i} for i in ids], "delete")
