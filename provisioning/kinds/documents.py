"""Kind `documents`: seed documents bulk-loaded from a JSON or NDJSON file or URL, idempotent by id.

Whether the documents are in place is known without one request per resource: the ledger records the content
hash, the count and the ids of what we loaded; the plan compares them with ONE `_msearch` holding, per resource,
a `size: 0` search with an `ids` query over the declared ids in its target index. `hits.total` then says exactly
how many of our documents exist (documents deleted by someone, or an index recreated empty, show up as missing),
without transferring any document. Above 10,000 ids (index.max_terms_count is 65,536, but bodies grow) the
search counts the whole index instead, which still detects an emptied index.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

from elasticsearch import helpers

from provisioning.diffing import spec_hash
from provisioning.errors import ClusterError, ManifestError, Problem
from provisioning.kinds.documents_data import (
    DataFileError,
    check_documents,
    data_format,
    field_value,
    is_url,
    parse_documents,
    read_documents,
    resolve_source,
)
from provisioning.model import Change, FieldDiff, Resource
from provisioning.report import hits_total

MAX_IDS_QUERY = 10_000
BULK_CHUNK = 500
URL_TIMEOUT = 60


def load_documents(resource: Resource) -> list[dict[str, Any]]:
    """The documents of a resource, from its file (relative to the manifest; parsed by documents_data, the same
    reader load-time validation uses) or its http(s) URL (fetched at plan/apply time only)."""
    source = resolve_source(resource)
    try:
        if is_url(str(source)):
            with urllib.request.urlopen(str(source), timeout=URL_TIMEOUT) as response:  # noqa: S310 (http(s) only)
                parsed = parse_documents(response.read().decode("utf-8"), data_format(resource))
        else:
            parsed = read_documents(Path(source), data_format(resource))
    except (OSError, ValueError, DataFileError) as exc:
        raise ManifestError([Problem(resource.source.file, resource.source.line,
                                     f"documents/{resource.name}: cannot read {source}: {exc}")]) from exc
    docs = [doc for _, doc in parsed]
    id_field = resource.spec["id_field"]
    bad = [i for i, d in enumerate(docs) if not isinstance(d, dict) or field_value(d, id_field) in (None, "")]
    if bad:
        raise ManifestError([Problem(resource.source.file, resource.source.line,
                                     f"documents/{resource.name}: {len(bad)} entries in {source} are not objects "
                                     f"with `{id_field}` (first at position {bad[0]})", "every document needs an id")])
    return docs


def doc_id(resource: Resource, doc: dict[str, Any]) -> str:
    return str(field_value(doc, resource.spec["id_field"]))


def _ids(resource: Resource, docs: list[dict[str, Any]]) -> list[str]:
    return [doc_id(resource, d) for d in docs]


class DocumentsKind:
    name = "documents"

    def default_name(self, spec: dict[str, Any]) -> str | None:
        return None

    def references(self, resource: Resource) -> list[str]:
        return [f"index/{resource.spec['index']}"] if resource.spec.get("index") else []

    def validate(self, resource: Resource, resources: dict[str, Resource]) -> list[Problem]:
        # file exists and parses, every document has its id, values fit the declared target index's mapping
        return check_documents(resource, resources)

    # ---- read: sources from disk/URL, then ONE _msearch for every resource -------------------------------
    def read(self, ctx: Any, resources: list[Resource], owned: dict[str, Any]) -> dict[str, Any]:
        live: dict[str, Any] = {name: {"entry": entry} for name, entry in owned.items()}
        searches: list[dict[str, Any]] = []
        for resource in resources:
            docs = load_documents(resource)
            ids = sorted(set(_ids(resource, docs)))
            live[resource.name] = {"entry": owned.get(resource.name), "docs": docs, "ids": ids,
                                   "content_hash": spec_hash(docs), "expected": len(ids),
                                   "index": resource.spec["index"]}
            query = {"ids": {"values": ids}} if len(ids) <= MAX_IDS_QUERY else {"match_all": {}}
            searches += [{"index": resource.spec["index"], "ignore_unavailable": True},
                         {"size": 0, "track_total_hits": True, "query": query}]
        if searches:
            responses = ctx.client.msearch(searches=searches)["responses"]
            for resource, response in zip(resources, responses, strict=True):
                live[resource.name]["present"] = hits_total(response)  # size 0: 0 when the search failed
        return live

    # ---- diff (pure) -----------------------------------------------------------------------------------
    def diff(self, resource: Resource, live: Any | None) -> Change:
        live = live or {}
        entry = live.get("entry")
        present, expected = live.get("present", 0), live.get("expected", 0)
        target = resource.spec["index"]
        if entry is None:
            return Change(self.name, resource.name, "create", resource=resource, live=live,
                          diffs=[FieldDiff("documents", None, f"{expected} documents into {target}")],
                          reason=f"bulk load {expected} documents into {target}")
        diffs = []
        previous_index = (entry.get("applied") or {}).get("index")
        if previous_index and previous_index != target:
            return Change(self.name, resource.name, "replace", resource=resource, live=live,
                          diffs=[FieldDiff("index", previous_index, target, forces_replacement=True)],
                          reason=f"move the documents from {previous_index} to {target}")
        if entry.get("content_hash") != live.get("content_hash"):
            diffs.append(FieldDiff("content", f"{entry.get('count', '?')} documents ({entry.get('content_hash')})",
                                   f"{expected} documents ({live.get('content_hash')})"))
        if present < expected:
            diffs.append(FieldDiff("present", f"{present} of {expected}", f"{expected} of {expected}"))
        if not diffs:
            return Change(self.name, resource.name, "noop", resource=resource, live=live)
        return Change(self.name, resource.name, "update", diffs, resource=resource, live=live,
                      reason=f"bulk load {expected} documents into {target} (idempotent by id)")

    # ---- writes -----------------------------------------------------------------------------------------
    @staticmethod
    def _bulk(ctx: Any, actions: list[dict[str, Any]], what: str, change: Change) -> None:
        if not actions:
            return
        errors = []
        progress = ctx.reporter.progress(f"{change.key}: {what}", total=len(actions))
        with progress:
            # streaming_bulk retries 429 rejections itself with exponential backoff (max_retries)
            for ok, item in helpers.streaming_bulk(ctx.client, actions, chunk_size=BULK_CHUNK, max_retries=3,
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

    def _load(self, ctx: Any, change: Change) -> None:
        resource, live = change.resource, change.live
        target = resource.spec["index"]
        actions = [{"_op_type": "index", "_index": target, "_id": doc_id(resource, d), "_source": d}
                   for d in live["docs"]]
        self._bulk(ctx, actions, "index", change)
        stale = sorted(set((live.get("entry") or {}).get("ids") or []) - set(live["ids"]))
        self._bulk(ctx, [{"_op_type": "delete", "_index": target, "_id": i} for i in stale], "delete", change)
        ctx.client.indices.refresh(index=target)
        ctx.ledger.record(self.name, resource.name, spec_hash=spec_hash(resource.spec), applied=resource.spec,
                          content_hash=live["content_hash"], count=live["expected"], index=target,
                          ids=live["ids"] if len(live["ids"]) <= MAX_IDS_QUERY else None)

    def create(self, ctx: Any, change: Change) -> None:
        self._load(ctx, change)

    def update(self, ctx: Any, change: Change) -> None:
        self._load(ctx, change)

    def replace(self, ctx: Any, change: Change) -> None:
        entry = change.live.get("entry") or {}
        self._delete_ids(ctx, change, entry)
        fresh = Change(change.kind, change.name, change.action, change.diffs, change.reason, change.resource,
                       {**change.live, "entry": None})  # nothing of ours in the new index yet
        self._load(ctx, fresh)

    def _delete_ids(self, ctx: Any, change: Change, entry: dict[str, Any]) -> bool:
        index = entry.get("index") or (entry.get("applied") or {}).get("index")
        plan = getattr(ctx, "plan", None)
        if index and plan is not None and any(c.key == f"index/{index}" and c.action == "delete"
                                              for c in plan.changes):
            ctx.reporter.info(f"{change.key}: index {index} is being deleted too; no document deletes needed")
            return False
        ids = entry.get("ids") or []
        if not ids:
            if entry.get("count"):
                ctx.reporter.warn(f"{change.key}: too many ids recorded to delete them one by one; left in {index}")
            return False
        if not ctx.client.indices.exists(index=index):
            return False  # nothing left to delete (and a bulk delete must not be what creates the index)
        self._bulk(ctx, [{"_op_type": "delete", "_index": index, "_id": i} for i in ids], "delete", change)
        ctx.client.indices.refresh(index=index)
        return True

    def delete(self, ctx: Any, change: Change) -> None:
        self._delete_ids(ctx, change, (change.live or {}).get("entry") or {})
        ctx.ledger.forget(self.name, change.name)
