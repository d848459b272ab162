"""Kind `documents`: seed documents bulk-loaded from a JSON or NDJSON file or URL (gzip too), idempotent by id.

The ownership record keeps, per loaded document, its id and a short hash of its content (up to MAX_TRACKED
documents), so the plan lists exactly which ids are added, changed and removed without transferring a document.
Above MAX_TRACKED the record is constant-size: the hash of the whole content and the count.
Whether they are still in place is ONE `_msearch` for every resource (shared with the index kind's counts): per
resource a `size: 0` search with an `ids` query over its declared ids in its target index (above MAX_TRACKED: a
`match_all` count); `hits.total` says how many exist (documents deleted by someone, or an index recreated empty,
show up as missing). Data files are streamed, never read whole. Removing documents (from the data file, or the
whole resource) is data loss: shown, and refused by apply without --allow-data-loss.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, TypedDict

from provisioning.diffing import canonical_json
from provisioning.errors import ManifestError, Problem, Refused
from provisioning.kinds.base import NO_SLOT
from provisioning.kinds.documents_data import (
    SCANNED,
    DataFileError,
    Desired,
    Scan,
    check_documents,
    data_format,
    field_value,
    iter_source,
    remember,
    resolve_source,
    scan_key,
)
from provisioning.model import Change, FieldDiff, Hazard, Request, Resource, Step
from provisioning.operations import segment
from provisioning.read_batch import add_search, send_unbatched
from provisioning.report import hits_total

MAX_IDS_QUERY = 10_000
MAX_TRACKED = 10_000  # documents whose ids and hashes the ownership record keeps
SHOWN_IDS = 10
BULK_SENDS = ("PUT /_bulk", "POST /_bulk")


def scan_source(source: str | Path, fmt: str, id_field: str) -> tuple[Desired, int, int | None]:
    """One streamed pass over a data file: (Desired, entries without an id, position of the first)."""
    scan = Scan(id_field, MAX_TRACKED)
    for _, doc in iter_source(source, fmt):
        scan.add(doc)
    return scan.result()


def scanned(source: str, fmt: str, id_field: str) -> tuple[Desired, int, int | None]:
    """scan_source, remembered per file version in this process (validation, plan and apply of one run read a
    file once between them: load-time validation records the scan it made alongside its checks)."""
    key = scan_key(source, fmt, id_field, MAX_TRACKED)
    if key not in SCANNED:
        remember(key, scan_source(source, fmt, id_field))
    return SCANNED[key]


def desired_state(resource: Resource) -> Desired:
    """The data file of a resource (relative to the manifest; parsed by documents_data, the same reader load-time
    validation uses) or its http(s) URL (fetched at plan/apply time only), streamed."""
    source = str(resolve_source(resource))
    id_field = resource.spec["id_field"]
    try:
        desired, bad, first_bad = scanned(source, data_format(resource), id_field)
    except (OSError, ValueError, DataFileError) as exc:
        raise ManifestError([Problem(resource.source.file, resource.source.line,
                                     f"documents/{resource.name}: cannot read {source}: {exc}")]) from exc
    if bad:
        raise ManifestError([Problem(resource.source.file, resource.source.line,
                                     f"documents/{resource.name}: {bad} entries in {source} are not objects "
                                     f"with `{id_field}` (first at position {first_bad})",
                                     "every document needs an id")])
    return desired


def doc_id(resource: Resource, doc: dict[str, Any]) -> str:
    return str(field_value(doc, resource.spec["id_field"]))


def doc_hash(doc: Any) -> str:
    return hashlib.sha256(canonical_json(doc).encode()).hexdigest()[:12]


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
        return check_documents(resource, resources, MAX_TRACKED)

    # ---- read: ONE _msearch for every loaded resource -----------------------------------------------------------
    def read(self, ctx: Any, resources: list[Resource], owned: dict[str, Any]) -> dict[str, DocumentsLive]:
        live: dict[str, DocumentsLive] = {
            name: {"index": (entry.get("applied") or {}).get("index") or entry.get("index")}
            for name, entry in owned.items()}
        loaded = [r for r in resources if r.name in owned]
        for resource in loaded:
            hashes = desired_state(resource).hashes
            # up to MAX_TRACKED documents: which declared ids exist; above, how many documents the index holds
            # (a count, whatever the number of documents: no document and no id is transferred)
            query = {"ids": {"values": sorted(hashes)}} if hashes is not None and len(hashes) <= MAX_IDS_QUERY \
                else {"match_all": {}}

            def fill(response: dict[str, Any], item: DocumentsLive = live[resource.name]) -> None:
                item["present"] = hits_total(response)  # size 0: 0 when the search failed

            add_search(ctx, {"index": resource.spec["index"], "ignore_unavailable": True},
                       {"size": 0, "track_total_hits": True, "query": query}, fill)
        send_unbatched(ctx)  # within a plan, the plan's one _msearch (read_batch.py) carries them
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
        desired = desired_state(resource)
        # above MAX_TRACKED documents the record is constant-size (content hash and count, no ids): a changed file
        # reloads every document (idempotent by id) and cannot name the ids it added, changed or removed
        tracked, count, content_hash = desired.hashes is not None, desired.count, desired.content_hash
        hashes = desired.hashes or {}
        target = resource.spec["index"]
        change = Change(self.name, resource.name, "noop", resource=resource, live=live,
                        record={"content_hash": content_hash, "count": count, "index": target,
                                "docs": desired.hashes})
        if live is None or entry is None:
            change.action, change.reason = "create", f"bulk load {count} documents into {target}"
            change.diffs = [FieldDiff("documents.added", None,
                                      f"{count}: {_listed(sorted(hashes))}" if tracked else f"{count}")]
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
        if entry.get("content_hash") == content_hash and live.get("present", 0) >= count:
            return change
        added = sorted(set(hashes) - set(recorded))
        removed = sorted(set(recorded) - set(hashes))
        changed = sorted(i for i in set(hashes) & set(recorded) if hashes[i] != recorded[i])
        if not tracked:
            added, removed, changed = [], [], []
        missing = count - live.get("present", 0)
        for label, ids in (("added", added), ("changed", changed), ("removed", removed)):
            if ids:
                change.diffs.append(FieldDiff(f"documents.{label}", None if label != "removed" else f"{len(ids)}: "
                                              f"{_listed(ids)}", f"{len(ids)}: {_listed(ids)}"
                                              if label != "removed" else None))
        if missing > 0:
            change.diffs.append(FieldDiff("documents.present", f"{count - missing} of {count}",
                                          f"{count} of {count}"))
        if (not recorded or not tracked) and entry.get("content_hash") != content_hash:  # beyond the record's ids
            change.diffs.append(FieldDiff("content", entry.get("content_hash"), content_hash))
        change.action = "update"
        reload = None if missing > 0 or not recorded or not tracked else added + changed
        change.reason = (f"bulk load {count if reload is None else len(reload)} documents into {target} "
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
