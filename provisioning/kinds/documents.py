"""Kind `documents`: seed documents bulk-loaded from a JSON or NDJSON file or URL, idempotent by id.

The ownership record keeps, per loaded document, its id and a short hash of its content (up to MAX_TRACKED
documents), so the plan lists exactly which ids are added, changed and removed without transferring a document.
Whether they are still in place is ONE `_msearch` for every resource: per resource a `size: 0` search with an
`ids` query over its declared ids in its target index; `hits.total` says how many exist (documents deleted by
someone, or an index recreated empty, show up as missing). Removing documents (from the data file, or the whole
resource) is data loss: shown, and refused by apply without --allow-data-loss.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any, TypedDict

from provisioning.diffing import canonical_json, spec_hash
from provisioning.errors import ManifestError, Problem, Refused
from provisioning.kinds.base import NO_SLOT
from provisioning.kinds.documents_data import (
    DataFileError,
    check_documents,
    data_format,
    field_value,
    is_url,
    read_source,
    resolve_source,
)
from provisioning.model import Change, FieldDiff, Hazard, Request, Resource, Step
from provisioning.operations import segment
from provisioning.report import hits_total

MAX_IDS_QUERY = 10_000
MAX_TRACKED = 10_000  # documents whose ids and hashes the ownership record keeps
SHOWN_IDS = 10
BULK_SENDS = ("PUT /_bulk", "POST /_bulk")


@lru_cache(maxsize=64)
def _cached(source: str, fmt: str, stamp: tuple[int, int] | None) -> list[Any]:
    return read_source(source, fmt)


def load_documents(resource: Resource) -> list[dict[str, Any]]:
    """The documents of a resource, from its file (relative to the manifest; parsed by documents_data, the same
    reader load-time validation uses) or its http(s) URL (fetched at plan/apply time only)."""
    source = str(resolve_source(resource))
    try:
        stat = None if is_url(source) else Path(source).stat()
        docs = _cached(source, data_format(resource), (stat.st_mtime_ns, stat.st_size) if stat else None)
    except (OSError, ValueError, DataFileError) as exc:
        raise ManifestError([Problem(resource.source.file, resource.source.line,
                                     f"documents/{resource.name}: cannot read {source}: {exc}")]) from exc
    id_field = resource.spec["id_field"]
    bad = [i for i, d in enumerate(docs) if not isinstance(d, dict) or field_value(d, id_field) in (None, "")]
    if bad:
        raise ManifestError([Problem(resource.source.file, resource.source.line,
                                     f"documents/{resource.name}: {len(bad)} entries in {source} are not objects "
                                     f"with `{id_field}` (first at position {bad[0]})", "every document needs an id")])
    return docs


def doc_id(resource: Resource, doc: dict[str, Any]) -> str:
    return str(field_value(doc, resource.spec["id_field"]))


def doc_hash(doc: Any) -> str:
    return hashlib.sha256(canonical_json(doc).encode()).hexdigest()[:12]


def desired_state(resource: Resource) -> tuple[dict[str, str], str]:
    """{id: content hash} of the data file (the last document of an id wins, as a bulk does), and its hash."""
    docs = load_documents(resource)
    hashes = {doc_id(resource, d): doc_hash(d) for d in docs}
    return hashes, spec_hash(docs)


def _listed(ids: list[str]) -> str:
    shown = ", ".join(ids[:SHOWN_IDS])
    return shown + (f" and {len(ids) - SHOWN_IDS} more" if len(ids) > SHOWN_IDS else "")


class DocumentsLive(TypedDict, total=False):
    """Loaded documents as read: the index they were loaded into and how many of the declared ids it holds."""

    index: str | None
    present: int  # declared ids found in the index (declared resources only)


class DocumentsKind:
    name = "documents"

    def default_name(self, spec: dict[str, Any]) -> str | None:
        return None

    def references(self, resource: Resource) -> list[str]:
        return [f"index/{resource.spec['index']}"] if resource.spec.get("index") else []

    def validate(self, resource: Resource, resources: dict[str, Resource]) -> list[Problem]:
        # file exists and parses, every document has its id, values fit the declared target index's mapping
        return check_documents(resource, resources)

    # ---- read: ONE _msearch for every loaded resource -----------------------------------------------------------
    def read(self, ctx: Any, resources: list[Resource], owned: dict[str, Any]) -> dict[str, DocumentsLive]:
        live: dict[str, DocumentsLive] = {
            name: {"index": (entry.get("applied") or {}).get("index") or entry.get("index")}
            for name, entry in owned.items()}
        loaded = [r for r in resources if r.name in owned]
        searches: list[dict[str, Any]] = []
        for resource in loaded:
            ids = sorted(desired_state(resource)[0])
            query = {"ids": {"values": ids}} if len(ids) <= MAX_IDS_QUERY else {"match_all": {}}
            searches += [{"index": resource.spec["index"], "ignore_unavailable": True},
                         {"size": 0, "track_total_hits": True, "query": query}]
        if searches:
            responses = ctx.client.msearch(searches=searches)["responses"]
            for resource, response in zip(loaded, responses, strict=True):
                live[resource.name]["present"] = hits_total(response)  # size 0: 0 when the search failed
        return live

    def marker(self, live: DocumentsLive) -> str | None:
        return NO_SLOT

    def is_recorded(self, live: DocumentsLive, entry: dict[str, Any], desired: dict[str, Any] | None) -> bool:
        return True  # documents are ids in an index: the record is all there is

    def describe(self, live: DocumentsLive) -> str:
        return f"documents in {live.get('index')}"

    def view(self, live: DocumentsLive) -> Any:
        return live

    # ---- diff (pure): the operations ------------------------------------------------------------------------------
    def diff(self, resource: Resource, live: DocumentsLive | None, entry: dict[str, Any] | None, ctx: Any) -> Change:
        hashes, content_hash = desired_state(resource)
        target = resource.spec["index"]
        change = Change(self.name, resource.name, "noop", resource=resource, live=live,
                        record={"content_hash": content_hash, "count": len(hashes), "index": target,
                                "docs": hashes if len(hashes) <= MAX_TRACKED else None})
        if live is None or entry is None:
            change.action, change.reason = "create", f"bulk load {len(hashes)} documents into {target}"
            change.diffs = [FieldDiff("documents.added", None, f"{len(hashes)}: {_listed(sorted(hashes))}")]
            change.operations = self._load_ops(resource, None, content_hash)
            return change
        previous_index = (entry.get("applied") or {}).get("index") or entry.get("index")
        recorded = entry.get("docs") or {}
        if previous_index and previous_index != target:
            change.action, change.reason = "replace", f"move the documents from {previous_index} to {target}"
            change.diffs = [FieldDiff("index", previous_index, target, forces_replacement=True)]
            change.operations = self._delete_ops(previous_index, sorted(recorded)) + \
                self._load_ops(resource, None, content_hash)
            change.hazards.append(Hazard("data_loss", f"removes {len(recorded)} documents from {previous_index}"))
            return change
        if entry.get("content_hash") == content_hash and live.get("present", 0) >= len(hashes):
            return change
        added = sorted(set(hashes) - set(recorded))
        removed = sorted(set(recorded) - set(hashes))
        changed = sorted(i for i in set(hashes) & set(recorded) if hashes[i] != recorded[i])
        missing = len(hashes) - live.get("present", 0)
        for label, ids in (("added", added), ("changed", changed), ("removed", removed)):
            if ids:
                change.diffs.append(FieldDiff(f"documents.{label}", None if label != "removed" else f"{len(ids)}: "
                                              f"{_listed(ids)}", f"{len(ids)}: {_listed(ids)}"
                                              if label != "removed" else None))
        if missing > 0:
            change.diffs.append(FieldDiff("documents.present", f"{len(hashes) - missing} of {len(hashes)}",
                                          f"{len(hashes)} of {len(hashes)}"))
        if not recorded and entry.get("content_hash") != content_hash:  # more documents than the record tracks
            change.diffs.append(FieldDiff("content", entry.get("content_hash"), content_hash))
        change.action = "update"
        reload = None if missing > 0 or not recorded else added + changed
        change.reason = (f"bulk load {len(hashes) if reload is None else len(reload)} documents into {target} "
                         f"(idempotent by id)" + (f", delete {len(removed)}" if removed else ""))
        change.operations = (self._load_ops(resource, reload, content_hash) if reload != [] else []) + \
            self._delete_ops(target, removed, refresh=False)
        if removed:
            change.operations.append(Request("POST", f"/{segment(target)}/_refresh"))
            change.hazards.append(Hazard("data_loss", f"removes {len(removed)} documents from {target}: "
                                                      f"{_listed(removed)}"))
        return change

    @staticmethod
    def _load_ops(resource: Resource, ids: list[str] | None, content_hash: str) -> list[Any]:
        target = resource.spec["index"]
        what = "every document" if ids is None else f"{len(ids)} documents"
        return [Step("bulk_index", {"index": target, "source": str(resolve_source(resource)),
                                    "format": data_format(resource), "id_field": resource.spec["id_field"],
                                    "ids": ids, "content_hash": content_hash}, sends=BULK_SENDS,
                     summary=f"bulk index {what} of {resource.spec['source']} into {target} (by id)"),
                Request("POST", f"/{segment(target)}/_refresh")]

    @staticmethod
    def _delete_ops(index: str, ids: list[str], *, refresh: bool = True) -> list[Any]:
        if not ids:
            return []
        ops: list[Any] = [Step("bulk_delete", {"index": index, "ids": ids}, sends=BULK_SENDS,
                               summary=f"bulk delete {len(ids)} documents from {index}: {_listed(ids)}")]
        return ops + ([Request("POST", f"/{segment(index)}/_refresh", ignore=(404,))] if refresh else [])

    def delete(self, name: str, live: DocumentsLive | None, entry: dict[str, Any] | None, ctx: Any) -> Change:
        change = Change(self.name, name, "delete", live=live)
        index = (live or {}).get("index")
        ids = sorted((entry or {}).get("docs") or {})
        if index and ids:
            change.operations = self._delete_ops(index, ids)
            change.hazards.append(Hazard("data_loss", f"removes {len(ids)} documents from {index}: {_listed(ids)}"))
        elif index and (entry or {}).get("count"):
            change.hazards.append(Hazard("data_loss", f"{entry['count']} documents stay in {index}: too many to "
                                                      f"delete one by one"))
        return change

    def dependency_changed(self, change: Change, dependency: Change, ctx: Any) -> Change:
        """The index goes too: its documents go with it, no deletes needed (and none may recreate it)."""
        if change.action == "delete" and dependency.action == "delete" and \
                dependency.key == f"index/{(change.live or {}).get('index')}":
            change.operations, change.hazards = [], []
            change.reason = f"deleted with {dependency.key}"
        return change

    def preflight(self, ctx: Any, change: Change) -> list[str]:
        return []

    # ---- facts for adoption and renames (lifecycle.py decides) ----------------------------------------------
    def adopt(self, resource: Resource, live: DocumentsLive, ctx: Any) -> Change:
        raise Refused(f"{resource.key} ({resource.source}): documents are not adopted: remove `adopt` (loading "
                      f"them by id overwrites the documents already there, never duplicates them)")

    def rename(self, resource: Resource, old_name: str, live: DocumentsLive, entry: dict[str, Any],
               ctx: Any) -> Change:
        return Change(self.name, resource.name, "move", resource=resource, live=live,
                      diffs=[FieldDiff("name", old_name, resource.name)],
                      reason=f"moved from documents/{old_name}: only its ownership record is re-keyed")
