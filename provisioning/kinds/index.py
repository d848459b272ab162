"""Kind `index`: settings, mappings and aliases, served through an alias over a versioned physical index.

Users query `name`, an ALIAS over `<name>-000001`, `<name>-000002` ... so a change ES cannot apply in place
(static setting, analysis, a field's type, a removed field) becomes a blue/green replacement: new physical
index, writes blocked on the old one, `_reindex`, document count check, one atomic `_aliases` swap, then the old
index is deleted. Readers never see a missing or empty index; when the copy fails the new index is deleted and
the old one serves (and takes writes) again.

The owner marker lives on the physical index: `mappings._meta` {managed_by, stack} (what was applied is in the
ownership record, so a settings change sends no mapping request).
"""

from __future__ import annotations

import re
from typing import Any, TypedDict

from provisioning.diffing import flat_settings
from provisioning.errors import ClusterError, Problem
from provisioning.kinds.index_rules import alias_diffs, mapping_diffs, normalise_alias, settings_diffs
from provisioning.model import Change, FieldDiff, Hazard, Request, Resource, Step
from provisioning.operations import segment
from provisioning.read_batch import add_search, send_unbatched

MANAGED_BY = "es-stack"
# characters of index expressions in the one GET: ES rejects request lines over 4kb (http.max_initial_line_length)
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


def covering_patterns(names: list[str], limit: int = MAX_URL_NAMES) -> list[str]:
    """Index expressions for ONE `GET /<expressions>` that cover every name and its generations, whatever the number
    and length of the names: each name with its generations (`<name>,<name>-00*`) while they fit in `limit`
    characters, else one `<prefix>*` per distinct prefix, with the longest prefix length that fits (at worst one
    character per name: a few dozen patterns).

    Why: ES takes index names only in the URL (GET <index> has no body; `_msearch` carries names in its body but
    cannot read settings or mappings), and `GET _all` would read every index of the cluster. The cost of a prefix
    pattern is the settings and mappings of the other indices sharing a prefix (filtered out here); it is bounded by
    the indices that start like the declared ones and is none when the names fit, as they do for up to about 200
    names of 10 characters."""
    exact = sorted({e for n in names for e in (n, f"{n}-00*")})
    if len(",".join(exact)) <= limit:
        return exact
    longest = max(len(n) for n in names)
    for length in range(longest, 0, -1):
        patterns = sorted({n[:length] + "*" for n in names})
        if len(",".join(patterns)) <= limit:
            return patterns
    return sorted({n[:1] + "*" for n in names})


def _mappings_body(resource: Resource, stack: str) -> dict[str, Any]:
    mappings = dict(resource.spec.get("mappings") or {})
    mappings["_meta"] = {**(mappings.get("_meta") or {}), "managed_by": MANAGED_BY, "stack": stack}
    return mappings


def _aliases_body(resource: Resource) -> dict[str, Any]:
    return {resource.name: {}, **{a: dict(p or {}) for a, p in (resource.spec.get("aliases") or {}).items()}}


class IndexLive(TypedDict):
    """An index as read: the physical index behind the alias (or a concrete index of that name)."""

    physical: str
    concrete: bool  # a concrete index named like the resource (never one of ours: ours hide behind an alias)
    settings: dict[str, Any]  # flat, as GET ?flat_settings=true answers
    mappings: dict[str, Any]
    aliases: dict[str, dict[str, Any]]
    doc_count: int | None  # None: counting failed
    stack: str | None  # the owner marker (mappings._meta), None when it carries none of ours
    leftovers: list[str]  # generations an interrupted replacement left behind


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

    # ---- read: ONE GET for all indices (names or covering patterns) + one _msearch for document counts ---------
    def read(self, ctx: Any, resources: list[Resource], owned: dict[str, Any]) -> dict[str, IndexLive]:
        names = sorted({r.name for r in resources} | set(owned))
        wanted = set(names)
        found: dict[str, dict[str, Any]] = {}
        generations: dict[str, list[str]] = {}
        if names:
            # `<name>-00*` too: generations an interrupted replacement left behind (`-00*`, not `-*`: generations
            # are -000001 ..., and a user's `<name>-2025.01.01` stays out of the answer); expand_wildcards=all as
            # explicit names would (closed and hidden indices too)
            resp = ctx.client.indices.get(index=",".join(covering_patterns(names)), ignore_unavailable=True,
                                          allow_no_indices=True, expand_wildcards="all", flat_settings=True)
            for physical, data in resp.body.items():
                meta = (data.get("mappings") or {}).get("_meta") or {}
                match = _VERSIONED.match(physical)
                aliases = data.get("aliases") or {}
                if match and match["base"] in wanted and meta.get("managed_by") == MANAGED_BY \
                        and meta.get("stack") == ctx.stack and match["base"] not in aliases:
                    generations.setdefault(match["base"], []).append(physical)
                for name in ({physical} | set(aliases)) & wanted:
                    if name in found and found[name]["physical"] != physical:
                        raise ClusterError(f"alias {name} points at several indices ({found[name]['physical']}, "
                                           f"{physical}); point it at one index", resource=f"index/{name}")
                    found[name] = {"physical": physical, "concrete": name == physical, **data}
        live: dict[str, IndexLive] = {}
        for name, data in found.items():
            meta = (data.get("mappings") or {}).get("_meta") or {}
            entry = owned.get(name)
            ours = meta.get("managed_by") == MANAGED_BY and meta.get("stack") == ctx.stack
            live[name] = {
                "physical": data["physical"], "concrete": data["concrete"],
                "settings": data.get("settings") or {}, "mappings": data.get("mappings") or {},
                "aliases": {a: p or {} for a, p in (data.get("aliases") or {}).items()},
                "doc_count": None,  # filled by the count below
                # the marker on the object, or an older record naming this very physical index
                "stack": ctx.stack if not data["concrete"] and (ours or bool(
                    entry and entry.get("physical") == data["physical"])) else
                (meta.get("stack") if meta.get("managed_by") == MANAGED_BY and not data["concrete"] else None),
                # ours, named like a generation of this index, not behind its alias: the old or the new index of a
                # replacement killed half-way (after the swap, or before it)
                "leftovers": sorted(p for p in generations.get(name, []) if p != data["physical"]),
            }
        self._count_documents(ctx, live)
        return live

    @staticmethod
    def _count_documents(ctx: Any, live: dict[str, IndexLive]) -> None:
        """doc_count of each physical index: a size-0 search each, in the plan's one _msearch (read_batch.py);
        left None when its search failed."""
        by_physical: dict[str, list[IndexLive]] = {}
        for item in live.values():
            by_physical.setdefault(item["physical"], []).append(item)
        for physical, items in sorted(by_physical.items()):
            def fill(response: dict[str, Any], items: list[IndexLive] = items) -> None:
                if "hits" in response:
                    for item in items:
                        item["doc_count"] = response["hits"]["total"]["value"]
            add_search(ctx, {"index": physical}, {"size": 0, "track_total_hits": True}, fill)
        send_unbatched(ctx)

    def marker(self, live: IndexLive) -> str | None:
        return live.get("stack")

    def is_recorded(self, live: IndexLive, entry: dict[str, Any], desired: dict[str, Any] | None) -> bool:
        """The recorded physical index (an index without our marker, adopted): not another one that took its name."""
        return entry.get("physical") in (None, live["physical"])

    def describe(self, live: IndexLive) -> str:
        return "an index" if live["concrete"] else f"an alias over index {live['physical']}"

    def view(self, live: IndexLive) -> Any:
        # whether it holds documents matters (deleting it loses them), not how many: writes go on meanwhile
        return {k: live[k] for k in ("physical", "concrete", "settings", "mappings", "aliases", "leftovers")} | {
            "has_documents": live.get("doc_count") != 0}

    # ---- diff (pure): the operations ------------------------------------------------------------------------------
    def diff(self, resource: Resource, live: IndexLive | None, entry: dict[str, Any] | None, ctx: Any) -> Change:
        if live is None:
            physical = next_physical(resource.name, (entry or {}).get("physical"))  # -000001 without a record
            return Change(self.name, resource.name, "create", resource=resource, record={"physical": physical},
                          reason=f"new physical index {physical} behind alias {resource.name}",
                          operations=[self._create_request(resource, physical, ctx.stack, aliases=True)])
        previous = (entry or {}).get("applied") or {}
        spec, physical = resource.spec, live["physical"]
        diffs = (settings_diffs(spec.get("settings") or {}, live["settings"], previous.get("settings"))
                 + mapping_diffs(spec.get("mappings") or {}, live["mappings"], previous.get("mappings"))
                 + alias_diffs(None if live["concrete"] else resource.name, spec.get("aliases") or {},
                               live["aliases"], previous.get("aliases")))
        if live.get("leftovers"):
            diffs.append(FieldDiff("leftover_indices", live["leftovers"], []))
        blocked = str(live["settings"].get("index.blocks.write", "false")).lower() == "true"
        if blocked and "index.blocks.write" not in flat_settings(spec.get("settings")):
            # a replacement killed while it copied: the serving index still refuses writes
            diffs.append(FieldDiff("settings.index.blocks.write", "true", None))
        change = Change(self.name, resource.name, "noop", diffs, resource=resource, live=live,
                        record={"physical": physical})
        cleanup = [Request("DELETE", f"/{segment(p)}", ignore=(404,)) for p in live.get("leftovers") or []]
        if any(d.forces_replacement for d in diffs):
            return self._replacement(change, resource, live, entry, ctx, cleanup)
        # an adopted index gets the marker with its first mapping update, not by adoption (which never writes it)
        if not diffs:
            return change
        change.action = "update"
        change.operations = cleanup + self._update_requests(resource, live, diffs, ctx.stack)
        return change

    def _replacement(self, change: Change, resource: Resource, live: IndexLive, entry: dict[str, Any] | None,
                     ctx: Any, cleanup: list[Request]) -> Change:
        old = live["physical"]
        new = next_physical(resource.name, old)
        forcing = [d.path for d in change.diffs if d.forces_replacement]
        ours = {a: normalise_alias(p) for a, p in _aliases_body(resource).items()}
        dropped = set(((entry or {}).get("applied") or {}).get("aliases") or {})
        # aliases somebody else put on the old index move along; ones we applied and the manifest dropped go
        foreign = {a: p for a, p in live["aliases"].items() if a not in ours and a not in dropped}
        change.action, change.record = "replace", {"physical": new}
        if live["concrete"]:
            return self._migration(change, resource, live, new, forcing, {**foreign, **ours}, ctx, cleanup)
        actions = [{"remove": {"index": old, "alias": a}} for a in sorted(live["aliases"])]
        actions += [{"add": {"index": new, "alias": a, **p}} for a, p in {**foreign, **ours}.items()]
        change.reason = f"{', '.join(forcing)} cannot change in place: reindex into {new} and swap the alias"
        change.hazards.append(Hazard("interruption", f"writes to {resource.name} are refused while its documents "
                                                     f"are copied from {old} into {new} (searches go on)"))
        change.operations = cleanup + [
            self._create_request(resource, new, ctx.stack, aliases=False),
            Step("reindex_and_count", {"source": old, "dest": new}, sends=REINDEX_SENDS,
                 summary=f"block writes on {old}, copy its documents into {new}, check both counts agree "
                         f"(on failure {new} is deleted and {old} takes writes again)"),
            Request("POST", "/_aliases", body={"actions": actions}),  # atomic: readers switch at once
            Request("DELETE", f"/{segment(old)}", ignore=(404,)),
        ]
        return change

    def _migration(self, change: Change, resource: Resource, live: IndexLive, new: str, forcing: list[str],
                   aliases: dict[str, dict[str, Any]], ctx: Any, cleanup: list[Request]) -> Change:
        """The replacement of a concrete index named like the resource (adopted): the documents are copied into
        `<name>-000001`, then ONE `_aliases` request deletes the concrete index (`remove_index`) and makes its name
        an alias of the new index. ES runs every remove_index of the request before its adds, and applies the
        request as one cluster state update ("Update aliases and delete indices atomically",
        https://www.elastic.co/docs/api/elasticsearch/operation/operation-indices-update-aliases; added by
        elastic/elasticsearch#20064 to swap an index for an alias of the same name)."""
        old = live["physical"]
        change.reason = (f"{', '.join(forcing)} cannot change in place: migrate the concrete index {old} to the alias "
                         f"scheme (reindex into {new}, then delete {old} and add the alias {resource.name} in one "
                         f"_aliases request)")
        change.hazards.append(Hazard("interruption", f"writes to {old} are refused while its documents are copied "
                                                     f"into {new}; then {old} is deleted and the alias "
                                                     f"{resource.name} added in one atomic _aliases request (requests "
                                                     f"racing that swap may briefly find no {resource.name})"))
        actions = [{"remove_index": {"index": old}}]
        actions += [{"add": {"index": new, "alias": a, **p}} for a, p in aliases.items()]
        change.operations = cleanup + [
            self._create_request(resource, new, ctx.stack, aliases=False),
            Step("reindex_and_count", {"source": old, "dest": new}, sends=REINDEX_SENDS,
                 summary=f"block writes on {old}, copy its documents into {new}, check both counts agree "
                         f"(on failure {new} is deleted and {old} takes writes again)"),
            Request("POST", "/_aliases", body={"actions": actions}),
        ]
        return change

    @staticmethod
    def _create_request(resource: Resource, physical: str, stack: str, *, aliases: bool) -> Request:
        body: dict[str, Any] = {"settings": flat_settings(resource.spec.get("settings")),
                                "mappings": _mappings_body(resource, stack)}
        if aliases:
            body["aliases"] = _aliases_body(resource)
        return Request("PUT", f"/{segment(physical)}", body=body)

    @staticmethod
    def _update_requests(resource: Resource, live: IndexLive, diffs: list[FieldDiff], stack: str
                         ) -> list[Request]:
        physical = live["physical"]
        requests = []
        settings = {d.path.removeprefix("settings."): d.after for d in diffs if d.path.startswith("settings.")}
        if settings:  # null resets a key we set before to its default (ES YAML test indices.put_settings/11_reset.yml)
            requests.append(Request("PUT", f"/{segment(physical)}/_settings", body=settings))
        if any(d.path.startswith("mappings.") for d in diffs):
            requests.append(Request("PUT", f"/{segment(physical)}/_mapping", body=_mappings_body(resource, stack)))
        actions = []
        for d in diffs:
            if not d.path.startswith("aliases."):
                continue
            alias = d.path.split(".")[1]
            if d.after is None:
                actions.append({"remove": {"index": physical, "alias": alias}})
            else:
                props = normalise_alias((resource.spec.get("aliases") or {}).get(alias))
                actions.append({"add": {"index": physical, "alias": alias, **props}})
        # several diffs on one alias (filter and routing) need a single add
        unique = list({str(sorted(a.items())): a for a in actions}.values())
        if unique:
            requests.append(Request("POST", "/_aliases", body={"actions": unique}))
        return requests

    def delete(self, name: str, live: IndexLive | None, entry: dict[str, Any] | None, ctx: Any) -> Change:
        change = Change(self.name, name, "delete", live=live)
        if live is None:
            return change
        count = live.get("doc_count")
        if count != 0:
            held = "may hold documents (counting them failed)" if count is None else f"holds {count} documents"
            change.hazards.append(Hazard("data_loss", f"{held}; deleting it loses them"))
        change.operations = [Request("DELETE", f"/{segment(p)}", ignore=(404,))
                             for p in [live["physical"], *(live.get("leftovers") or [])]]
        return change

    def dependency_changed(self, change: Change, dependency: Change, ctx: Any) -> Change:
        return change

    def preflight(self, ctx: Any, change: Change) -> list[str]:
        return []

    # ---- facts for adoption and renames (lifecycle.py decides) ----------------------------------------------
    def adopt(self, resource: Resource, live: IndexLive, ctx: Any) -> Change:
        compared = self.diff(resource, live, None, ctx)
        what = (f"the concrete index {live['physical']} (not behind an alias: it stays as it is; the first change "
                f"that needs a new index migrates it to an alias over {physical_name(resource.name, 1)})"
                if live["concrete"] else f"index {live['physical']} behind alias {resource.name}")
        differs = (f"; {len(compared.diffs)} differences from the manifest are planned after adoption"
                   if compared.diffs else "; settings, mappings and aliases match the manifest")
        return Change(self.name, resource.name, "adopt", compared.diffs, resource=resource, live=live,
                      record={"physical": live["physical"]},
                      reason=f"{what}{differs}; its documents are not managed (not verified)")

    def rename(self, resource: Resource, old_name: str, live: IndexLive, entry: dict[str, Any], ctx: Any) -> Change:
        from provisioning.errors import Refused

        if live["concrete"]:
            raise Refused(f"{resource.key} ({resource.source}): moved_from index/{old_name}, a concrete index, cannot "
                          f"be renamed without copying it; remove moved_from (the index is then replaced) or apply a "
                          f"change that migrates it to an alias first")
        physical = live["physical"]
        # one _aliases request: the new name appears as the old one disappears (ES docs "Aliases": atomic actions)
        actions = [{"add": {"index": physical, "alias": resource.name}},
                   {"remove": {"index": physical, "alias": old_name}}]
        return Change(self.name, resource.name, "move", resource=resource, live=live, record={"physical": physical},
                      reason=f"moved from index/{old_name}: alias {old_name} over {physical} becomes "
                             f"{resource.name} (same physical index, documents kept)",
                      diffs=[FieldDiff("name", old_name, resource.name)],
                      operations=[Request("POST", "/_aliases", body={"actions": actions})])


# block, copy as a task and poll it, refresh, count (provisioning/reindex.py), and the clean-up of a failed copy
REINDEX_SENDS = ("PUT /*/_block/write", "POST /_reindex", "POST /*/_refresh", "POST /_tasks/*/_cancel",
                 "DELETE /*", "PUT /*/_settings")
