"""Kind `index`: settings, mappings and aliases, served through an alias over a versioned physical index.

Users query `name`, an ALIAS over `<name>-000001`, `<name>-000002` ... so a change ES cannot apply in place
(static setting, analysis, a field's type, a removed field) becomes a blue/green replacement: new physical
index, `_reindex`, document count check, one atomic `_aliases` swap, then the old index is deleted. Readers
never see a missing or empty index; on any failure the new index is deleted and the old one keeps serving.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

from elasticsearch import ApiError

from provisioning.diffing import flat_settings, spec_hash
from provisioning.errors import ClusterError, Problem, Refused
from provisioning.kinds.index_rules import alias_diffs, mapping_diffs, normalise_alias, settings_diffs
from provisioning.model import Change, FieldDiff, Resource

MANAGED_BY = "es-stack"
# characters of index names per GET: ES rejects request lines over 4kb (http.max_initial_line_length)
MAX_URL_NAMES = 3000
_VERSIONED = re.compile(r"^(?P<base>.+)-(?P<n>\d{6})$")


def _semantic_text_endpoints(properties: dict[str, Any]) -> list[str]:
    """inference_id of every semantic_text field, nested objects and multi-fields included."""
    found = []
    for field in (properties or {}).values():
        if not isinstance(field, dict):
            continue
        if field.get("type") == "semantic_text" and field.get("inference_id"):
            found.append(field["inference_id"])
        found += _semantic_text_endpoints(field.get("properties", {}))
        found += _semantic_text_endpoints(field.get("fields", {}))
    return found


def physical_name(name: str, version: int) -> str:
    return f"{name}-{version:06d}"


def next_physical(name: str, current: str | None) -> str:
    match = _VERSIONED.match(current or "")
    return physical_name(name, int(match["n"]) + 1 if match and match["base"] == name else 1)


def chunk_names(names: list[str], limit: int = MAX_URL_NAMES) -> list[list[str]]:
    chunks: list[list[str]] = [[]]
    size = 0
    for name in names:
        if chunks[-1] and size + len(name) + 1 > limit:
            chunks.append([])
            size = 0
        chunks[-1].append(name)
        size += len(name) + 1
    return chunks


def _mappings_body(resource: Resource, stack: str) -> dict[str, Any]:
    mappings = dict(resource.spec.get("mappings") or {})
    mappings["_meta"] = {**(mappings.get("_meta") or {}), "managed_by": MANAGED_BY, "stack": stack,
                         "spec_hash": spec_hash(resource.spec)}
    return mappings


def _aliases_body(resource: Resource) -> dict[str, Any]:
    return {resource.name: {}, **{a: dict(p or {}) for a, p in (resource.spec.get("aliases") or {}).items()}}


class IndexKind:
    name = "index"

    def default_name(self, spec: dict[str, Any]) -> str | None:
        return None

    def references(self, resource: Resource) -> list[str]:
        properties = (resource.spec.get("mappings") or {}).get("properties", {})
        return [f"inference_endpoint/{e}" for e in _semantic_text_endpoints(properties)]

    def validate(self, resource: Resource, resources: dict[str, Resource]) -> list[Problem]:
        from provisioning.names import ALIAS_NAME, MANAGED_INDEX_NAME, name_problems  # ES naming rules, as data

        problems = name_problems(resource, MANAGED_INDEX_NAME)
        for alias in resource.spec.get("aliases") or {}:
            problems += name_problems(resource, ALIAS_NAME, alias, f"spec.aliases.{alias}")
            if alias == resource.name:
                where = resource.line_of(f"spec.aliases.{alias}")
                problems.append(Problem(where.file, where.line, f"alias {alias!r} is the index's own name",
                                        "the name is already an alias over the physical index; remove this one"))
        return problems

    # ---- read: one GET for all indices (per 3000 characters of names) + one _msearch for document counts -----
    def read(self, ctx: Any, resources: list[Resource], owned: dict[str, Any]) -> dict[str, Any]:
        names = sorted({r.name for r in resources} | set(owned))
        found: dict[str, dict[str, Any]] = {}
        generations: dict[str, list[str]] = {}
        # `<name>-00*` too (half the characters per GET): generations an interrupted replacement left behind
        # (`-00*`, not `-*`: generations are -000001 ..., and a user's `<name>-2025.01.01` stays out of the answer)
        for chunk in chunk_names(names, MAX_URL_NAMES // 2) if names else []:
            resp = ctx.client.indices.get(index=",".join(chunk + [f"{n}-00*" for n in chunk]),
                                          ignore_unavailable=True, allow_no_indices=True, flat_settings=True)
            for physical, data in resp.body.items():
                meta = (data.get("mappings") or {}).get("_meta") or {}
                match = _VERSIONED.match(physical)
                if match and match["base"] in chunk and meta.get("managed_by") == MANAGED_BY \
                        and meta.get("stack") == ctx.stack and match["base"] not in (data.get("aliases") or {}):
                    generations.setdefault(match["base"], []).append(physical)
                for name in chunk:
                    if name == physical or name in (data.get("aliases") or {}):
                        if name in found and found[name]["physical"] != physical:
                            raise ClusterError(f"alias {name} points at several indices ({found[name]['physical']}, "
                                               f"{physical}); point it at one index", resource=f"index/{name}")
                        found[name] = {"physical": physical, "concrete": name == physical, **data}
        counts = self._doc_counts(ctx, sorted({f["physical"] for f in found.values()}))
        live: dict[str, Any] = {}
        for name, data in found.items():
            meta = (data.get("mappings") or {}).get("_meta") or {}
            entry = owned.get(name)
            ours = meta.get("managed_by") == MANAGED_BY and meta.get("stack") == ctx.stack
            live[name] = {
                "physical": data["physical"], "concrete": data["concrete"],
                "settings": data.get("settings") or {}, "mappings": data.get("mappings") or {},
                "aliases": {a: p or {} for a, p in (data.get("aliases") or {}).items()},
                "doc_count": counts.get(data["physical"]), "entry": entry,
                "owned": not data["concrete"] and (ours or bool(entry and entry.get("physical") == data["physical"])),
                # ours, named like a generation of this index, not behind its alias: the old or the new index of a
                # replacement killed half-way (after the swap, or before it)
                "leftovers": sorted(p for p in generations.get(name, []) if p != data["physical"]),
            }
        return live

    @staticmethod
    def _doc_counts(ctx: Any, physicals: list[str]) -> dict[str, int]:
        if not physicals:
            return {}
        searches: list[dict[str, Any]] = []
        for physical in physicals:
            searches += [{"index": physical}, {"size": 0, "track_total_hits": True}]
        resp = ctx.client.msearch(searches=searches)
        return {p: r["hits"]["total"]["value"] for p, r in zip(physicals, resp["responses"], strict=True)
                if "hits" in r}

    # ---- diff (pure) -----------------------------------------------------------------------------------
    def diff(self, resource: Resource, live: Any | None) -> Change:
        if live is None:
            return Change(self.name, resource.name, "create", resource=resource,
                          reason=f"new physical index {physical_name(resource.name, 1)} behind alias "
                                 f"{resource.name}")
        if not live["owned"]:
            what = "an index" if live["concrete"] else f"an alias over index {live['physical']}"
            raise Refused(f"index/{resource.name} ({resource.source}): {what} named {resource.name} already exists "
                          f"and was not created by this stack; the tool never adopts or overwrites it. Rename the "
                          f"resource, or delete/rename the existing index yourself")
        previous = (live.get("entry") or {}).get("applied") or {}
        spec = resource.spec
        diffs = (settings_diffs(spec.get("settings") or {}, live["settings"], previous.get("settings"))
                 + mapping_diffs(spec.get("mappings") or {}, live["mappings"], previous.get("mappings"))
                 + alias_diffs(resource.name, spec.get("aliases") or {}, live["aliases"], previous.get("aliases")))
        if not live.get("entry"):
            # ours by the marker on the index, yet no ledger record: a run stopped between the create and its record
            # (or a create that timed out and still succeeded). Recording it keeps destroy from leaving it behind.
            diffs.append(FieldDiff("ownership_record", None, "recorded"))
        if live.get("leftovers"):
            diffs.append(FieldDiff("leftover_indices", live["leftovers"], []))
        blocked = str(live["settings"].get("index.blocks.write", "false")).lower() == "true"
        if blocked and "index.blocks.write" not in flat_settings(spec.get("settings")):
            # a replacement killed while it copied: the serving index still refuses writes
            diffs.append(FieldDiff("settings.index.blocks.write", "true", None))
        forcing = [d.path for d in diffs if d.forces_replacement]
        if forcing:
            return Change(self.name, resource.name, "replace", diffs, resource=resource, live=live,
                          reason=f"{', '.join(forcing)} cannot change in place: reindex into "
                                 f"{next_physical(resource.name, live['physical'])} and swap the alias")
        return Change(self.name, resource.name, "update" if diffs else "noop", diffs, resource=resource, live=live)

    def preflight(self, ctx: Any, change: Change) -> list[str]:
        """Refusals known at plan time (no I/O)."""
        if change.action != "delete" or change.live is None or ctx.options.allow_data_loss:
            return []
        count = change.live.get("doc_count")
        if count is None:  # the count failed: assume the worst
            return [f"index/{change.name} may hold documents (counting them failed); pass --allow-data-loss to "
                    f"delete it anyway"]
        if count:
            return [f"index/{change.name} holds {count} documents; deleting it loses them "
                    f"(pass --allow-data-loss to delete it anyway)"]
        return []

    # ---- writes -----------------------------------------------------------------------------------------
    def _record(self, ctx: Any, resource: Resource, physical: str) -> None:
        ctx.ledger.record(self.name, resource.name, spec_hash=spec_hash(resource.spec), applied=resource.spec,
                          physical=physical)

    def _create_physical(self, ctx: Any, resource: Resource, physical: str, *, aliases: bool) -> None:
        ctx.client.indices.create(index=physical, settings=flat_settings(resource.spec.get("settings")),
                                  mappings=_mappings_body(resource, ctx.stack),
                                  aliases=_aliases_body(resource) if aliases else None)

    def create(self, ctx: Any, change: Change) -> None:
        resource = change.resource
        entry = ctx.ledger.entry(self.name, resource.name)
        physical = next_physical(resource.name, (entry or {}).get("physical"))  # -000001 without a record
        # Owned BEFORE it exists (write-ahead): a run killed between the create and a later record would otherwise
        # leave an index no ledger knows, which destroy never removes. ES refusing the create undoes the record.
        self._record(ctx, resource, physical)
        try:
            self._create_physical(ctx, resource, physical, aliases=True)
        except ApiError as exc:
            if self._created_by_earlier_attempt(ctx, resource, physical, exc):
                return
            if entry is None and exc.meta.status in (400, 403, 404, 409):
                ctx.ledger.forget(self.name, resource.name)
            raise

    @staticmethod
    def _created_by_earlier_attempt(ctx: Any, resource: Resource, physical: str, exc: ApiError) -> bool:
        """"already exists" after the client retried a create whose answer was lost: it is ours when it carries
        our marker for this very spec (and serves the alias, created in the same request)."""
        if exc.meta.status != 400 or exc.error != "resource_already_exists_exception":
            return False
        found = ctx.client.options(ignore_status=404).indices.get(index=physical)
        body = found.body.get(physical) if found.meta.status == 200 else None
        meta = ((body or {}).get("mappings") or {}).get("_meta") or {}
        return bool(body) and meta.get("managed_by") == MANAGED_BY and meta.get("stack") == ctx.stack \
            and meta.get("spec_hash") == spec_hash(resource.spec) and resource.name in (body.get("aliases") or {})

    def update(self, ctx: Any, change: Change) -> None:
        resource, physical = change.resource, change.live["physical"]
        self._delete_leftovers(ctx, change)
        settings = {d.path.removeprefix("settings."): d.after for d in change.diffs if d.path.startswith("settings.")}
        if settings:  # null resets a key we set before to its default (es-api-semantics.md §1.7)
            ctx.client.indices.put_settings(index=physical, settings=settings)
        live_hash = ((change.live["mappings"] or {}).get("_meta") or {}).get("spec_hash")
        if any(d.path.startswith("mappings.") for d in change.diffs) or live_hash != spec_hash(resource.spec):
            # also keeps _meta.spec_hash (the marker on the object) in step with the ledger
            ctx.client.indices.put_mapping(index=physical, body=_mappings_body(resource, ctx.stack))
        actions = self._alias_actions(resource, physical, change)
        if actions:
            ctx.client.indices.update_aliases(actions=actions)
        self._record(ctx, resource, physical)

    @staticmethod
    def _alias_actions(resource: Resource, physical: str, change: Change) -> list[dict[str, Any]]:
        actions = []
        for d in change.diffs:
            if not d.path.startswith("aliases."):
                continue
            alias = d.path.split(".")[1]
            if d.after is None:
                actions.append({"remove": {"index": physical, "alias": alias}})
            else:
                props = normalise_alias((resource.spec.get("aliases") or {}).get(alias))
                actions.append({"add": {"index": physical, "alias": alias, **props}})
        # several diffs on one alias (filter and routing) need a single add
        unique = {str(sorted(a.items())): a for a in actions}
        return list(unique.values())

    @staticmethod
    def _delete_leftovers(ctx: Any, change: Change) -> None:
        """Generations an interrupted replacement left (ours, not behind the alias: their documents are in the
        serving index, or were never served)."""
        for leftover in (change.live or {}).get("leftovers") or []:
            ctx.reporter.info(f"{change.key}: deleting {leftover}, left by an interrupted replacement")
            ctx.client.options(ignore_status=404).indices.delete(index=leftover)

    def replace(self, ctx: Any, change: Change) -> None:
        resource, old = change.resource, change.live["physical"]
        new = next_physical(resource.name, old)
        client = ctx.client
        self._delete_leftovers(ctx, change)  # a previous attempt's `new` among them
        ctx.reporter.info(f"index/{resource.name}: creating {new}, reindexing from {old}")
        self._create_physical(ctx, resource, new, aliases=False)
        blocked = False
        try:
            # Writes stop on the old index while we copy, so no document written meanwhile is lost; readers go on.
            client.indices.put_settings(index=old, settings={"index.blocks.write": True})
            blocked = True
            result = client.options(request_timeout=ctx.options.wait_timeout).reindex(
                source={"index": old}, dest={"index": new}, wait_for_completion=True, refresh=True)
            if result.get("failures"):
                first = result["failures"][0]
                raise ClusterError(f"reindex from {old} into {new} failed: {first.get('cause', first)}",
                                   resource=change.key, location=str(resource.source))
            client.indices.refresh(index=new)
            before, after = client.count(index=old)["count"], client.count(index=new)["count"]
            if before != after:
                raise ClusterError(f"reindex copied {after} of {before} documents from {old} into {new}",
                                   resource=change.key, location=str(resource.source))
            ours = {a: normalise_alias(p) for a, p in _aliases_body(resource).items()}
            dropped = set(((change.live.get("entry") or {}).get("applied") or {}).get("aliases") or {})
            # aliases somebody else put on the old index move along; ones we applied and the manifest dropped go
            foreign = {a: p for a, p in change.live["aliases"].items() if a not in ours and a not in dropped}
            actions = [{"remove": {"index": old, "alias": a}} for a in change.live["aliases"]]
            actions += [{"add": {"index": new, "alias": a, **p}} for a, p in {**foreign, **ours}.items()]
            client.indices.update_aliases(actions=actions)  # atomic: readers switch from old to new at once
        except BaseException:
            with contextlib.suppress(ApiError):
                client.indices.delete(index=new)
            if blocked:
                with contextlib.suppress(ApiError):
                    client.indices.put_settings(index=old, settings={"index.blocks.write": None})
            raise
        self._record(ctx, resource, new)
        try:
            client.indices.delete(index=old)
        except ApiError as exc:  # the stack converged (alias on the new index); only a leftover remains
            ctx.reporter.warn(f"index/{resource.name}: the previous index {old} could not be deleted "
                              f"({exc.message}); it serves nothing, delete it by hand")

    def delete(self, ctx: Any, change: Change) -> None:
        live = change.live
        if live.get("doc_count", 1) != 0 and not ctx.options.allow_data_loss:
            raise Refused(f"index/{change.name} holds {live.get('doc_count', 'some')} documents; pass "
                          f"--allow-data-loss to delete it")
        ctx.client.indices.delete(index=live["physical"])
        self._delete_leftovers(ctx, change)
        ctx.ledger.forget(self.name, change.name)
