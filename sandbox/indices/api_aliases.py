"""Alias routes: POST /_aliases, PUT/DELETE /{index}/_alias/{name}, GET/HEAD _alias variants. es-api-semantics §1.8."""

from __future__ import annotations

import copy
from typing import Any

from sandbox.errors import ActionRequestValidation, EsError, IllegalArgument, IndexNotFound, RawError
from sandbox.http import EsRequest, Reply, Route
from sandbox.indices.aliases import AliasesNotFound, parse_alias
from sandbox.indices.names import (
    InvalidAliasName,
    glob_match,
    index_options,
    is_wildcard,
    resolve_date_math,
    validate_alias_name,
)
from sandbox.indices.store import IndexStore

_ACTIONS = ("add", "remove", "remove_index")
_ADD_EXTRA = ("index", "indices", "alias", "aliases", "must_exist")
_ADD_ONLY = ("filter", "routing", "index_routing", "search_routing", "is_write_index", "is_hidden")


def _store(sb: Any) -> IndexStore:
    return sb.cluster.indices


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _alias_matches(pattern: str, alias: str) -> bool:
    return pattern in ("_all", "*") or glob_match(resolve_date_math(pattern), alias)


class _Plan:
    """The alias table and deleted indices after applying actions to a copy (nothing changes until commit)."""

    def __init__(self, store: IndexStore):
        self.store = store
        self.aliases = copy.deepcopy(store.aliases)
        self.removed: set[str] = set()

    def add(self, index: str, alias: str, props: dict[str, Any]) -> None:
        self.aliases.setdefault(alias, {})[index] = props

    def remove(self, index: str, patterns: list[str]) -> list[str]:
        removed = []
        for alias in list(self.aliases):
            if index in self.aliases[alias] and any(_alias_matches(p, alias) for p in patterns):
                del self.aliases[alias][index]
                removed.append(alias)
                if not self.aliases[alias]:
                    del self.aliases[alias]
        return removed

    def remove_index(self, index: str) -> None:
        self.removed.add(index)
        self.remove(index, ["*"])

    def validate(self) -> None:
        for alias, members in self.aliases.items():
            writers = sorted(i for i, p in members.items() if p.get("is_write_index"))
            if len(writers) > 1:
                raise IllegalArgument(f"alias [{alias}] has more than one write index [{','.join(writers)}]")

    def commit(self) -> None:
        self.store.aliases = self.aliases
        for index in self.removed:
            self.store.delete_index(index)


def _resolve_indices(store: IndexStore, expressions: list[str]) -> list[str]:
    """ES IndicesAliasesRequest INDICES_OPTIONS: every named index must exist, wildcards expand to open indices
    and must match something, and expressions resolve against indices only (an alias name is a missing index)."""
    names: list[str] = []
    for expression in expressions:
        if resolve_date_math(expression) in store.aliases:
            raise IndexNotFound(expression)
        for index in store.resolve(expression, expand_wildcards="open", allow_aliases=False, allow_no_indices=False):
            if index.name not in names:
                names.append(index.name)
    return names


def _parse_action(entry: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(entry, dict) or len(entry) != 1 or next(iter(entry)) not in _ACTIONS:
        raise EsError("[aliases] failed to parse field [actions]", status=400, type="x_content_parse_exception")
    kind, spec = next(iter(entry.items()))
    if not isinstance(spec, dict):
        raise EsError(f"[{kind}] failed to parse", status=400, type="x_content_parse_exception")
    # ES IndicesAliasesRequest.AliasActions parser and setters
    for one, many in (("index", "indices"), ("alias", "aliases")):
        if one in spec and many in spec:
            raise IllegalArgument(f"Only one of [{one}] and [{many}] is supported")
    unsupported = {"add": ("must_exist",), "remove": _ADD_ONLY, "remove_index": ("alias", "aliases", "must_exist",
                                                                              *_ADD_ONLY)}[kind]
    for key in spec:
        if key in unsupported:
            raise IllegalArgument(f"[{key}] is unsupported for [{kind.upper()}]")
    indices = _as_list(spec.get("index")) + _as_list(spec.get("indices"))
    aliases = _as_list(spec.get("alias")) + _as_list(spec.get("aliases"))
    problems = []
    if not indices:
        problems.append("One of [index] or [indices] is required")
    if kind != "remove_index" and not aliases:
        problems.append("One of [alias] or [aliases] is required")
    if problems:
        raise ActionRequestValidation(*problems)
    return kind, {"spec": spec, "indices": indices, "aliases": aliases}


def _echo(kind: str, parsed: dict[str, Any], indices: list[str]) -> dict[str, Any]:
    """IndicesAliasesResponse.AliasActionResult#toXContent: the type, the RESOLVED concrete indices sorted (not the
    request's expressions), and the request's original aliases (an empty array when none)."""
    return {"type": kind, "indices": sorted(set(indices)), "aliases": list(parsed["aliases"] or [])}


def update_aliases(sb: Any, req: EsRequest) -> dict:
    body = req.json(None)
    if not isinstance(body, dict) or not body.get("actions"):
        raise ActionRequestValidation("Must specify at least one alias action")
    store = _store(sb)
    plan = _Plan(store)
    parsed_actions = [_parse_action(entry) for entry in body["actions"]]
    # ES runs every remove_index of the request first, whatever its place in the array, so an index can be replaced
    # by an alias of its name in one request (MetadataIndexAliasesService#applyAliasActions; "Every remove_index
    # action in the request runs first", https://www.elastic.co/docs/api/elasticsearch/operation/operation-indices-update-aliases)
    order = sorted(range(len(parsed_actions)), key=lambda i: parsed_actions[i][0] != "remove_index")
    results: list[dict[str, Any]] = [{}] * len(parsed_actions)
    for i in order:
        kind, parsed = parsed_actions[i]
        results[i] = _apply(store, plan, kind, parsed)
    plan.validate()
    plan.commit()
    errors = any(r["status"] != 200 for r in results)
    reply: dict[str, Any] = {"acknowledged": True, "errors": errors}
    if errors:  # ES 8.14+: per-action results only when something failed
        reply["action_results"] = results
    return reply


def _apply(store: IndexStore, plan: _Plan, kind: str, parsed: dict[str, Any]) -> dict[str, Any]:
    spec = parsed["spec"]
    indices = _resolve_indices(store, parsed["indices"])
    result: dict[str, Any] = {"action": _echo(kind, parsed, indices), "status": 200}
    if kind == "remove_index":
        for index in indices:
            plan.remove_index(index)
        return result
    if kind == "add":
        aliases = [resolve_date_math(a) for a in parsed["aliases"]]
        props = parse_alias(aliases[0], {k: v for k, v in spec.items() if k not in _ADD_EXTRA})
        for alias in aliases:
            validate_alias_name(alias)
            if alias in store.indices and alias not in plan.removed:
                raise InvalidAliasName(alias, "an index or data stream exists with the same name as the alias")
            for index in indices:
                plan.add(index, alias, props)
        return result
    removed: list[str] = []
    for index in indices:
        removed += plan.remove(index, parsed["aliases"])
    missing = [a for a in parsed["aliases"] if not any(_alias_matches(a, r) for r in removed)]
    if missing and (not removed or not all(is_wildcard(a) for a in missing)):
        error = AliasesNotFound(sorted(missing))
        if spec.get("must_exist") is True:
            raise error  # nothing in the request is applied
        result.update(status=404, error=error.cause_dict())
    return result


def put_alias(sb: Any, req: EsRequest, index: str, name: str) -> dict:
    store = _store(sb)
    plan = _Plan(store)
    indices = [i.name for i in store.resolve(index, **index_options(req, expand_default="open,closed"))]
    for alias in [resolve_date_math(a) for a in name.split(",") if a]:
        validate_alias_name(alias)
        if alias in store.indices:
            raise InvalidAliasName(alias, "an index or data stream exists with the same name as the alias")
        props = parse_alias(alias, req.json({}))
        for item in indices:
            plan.add(item, alias, props)
    plan.validate()
    plan.commit()
    return {"acknowledged": True, "errors": False}


def delete_alias(sb: Any, req: EsRequest, index: str, name: str) -> dict:
    store = _store(sb)
    plan = _Plan(store)
    patterns = [a for a in name.split(",") if a]
    removed: list[str] = []
    for item in store.resolve(index, **index_options(req, expand_default="open,closed")):
        removed += plan.remove(item.name, patterns)
    missing = [p for p in patterns if not is_wildcard(p) and p != "_all"
               and resolve_date_math(p) not in removed]
    if missing or not removed:
        raise AliasesNotFound(sorted(missing or patterns))
    plan.commit()
    return {"acknowledged": True, "errors": False}


def _collect(sb: Any, req: EsRequest, index: str | None, name: str | None) -> tuple[dict[str, Any], list[str]]:
    store = _store(sb)
    options = index_options(req, expand_default="all")
    found = store.resolve(index, **options)
    patterns = [p for p in (name or "").split(",") if p]
    result: dict[str, Any] = {}
    matched: set[str] = set()
    for item in found:
        aliases = store.aliases_of(item.name)
        if patterns:
            aliases = {a: p for a, p in aliases.items() if any(_alias_matches(q, a) for q in patterns)}
            if not aliases:
                continue
        matched.update(aliases)
        result[item.name] = {"aliases": copy.deepcopy(aliases)}
    missing = sorted(resolve_date_math(p) for p in patterns
                     if not is_wildcard(p) and p != "_all" and not p.startswith("-")
                     and resolve_date_math(p) not in matched)
    return result, missing


def get_alias(sb: Any, req: EsRequest, index: str | None = None, name: str | None = None) -> dict:
    result, missing = _collect(sb, req, index, name)
    if missing:
        # ES RestGetAliasesAction: a plain string error plus the aliases that were found (§0.4)
        what = "aliases" if len(missing) > 1 else "alias"
        raise RawError(404, {"error": f"{what} [{','.join(missing)}] missing", "status": 404, **result})
    return result


def exists_alias(sb: Any, req: EsRequest, index: str | None = None, name: str | None = None) -> Reply:
    try:
        result, missing = _collect(sb, req, index, name)
    except EsError as error:
        return Reply(None, error.status)
    return Reply(None, 200 if result and not missing else 404)


ROUTES: list[Route] = [
    Route(("POST",), "/_aliases", update_aliases, api="indices.update_aliases"),
    Route(("GET",), "/_alias", get_alias, api="indices.get_alias"),
    Route(("GET",), "/_alias/<name>", get_alias, api="indices.get_alias"),
    Route(("GET",), "/<index>/_alias", get_alias, api="indices.get_alias"),
    Route(("GET",), "/<index>/_alias/<name>", get_alias, api="indices.get_alias"),
    Route(("HEAD",), "/_alias/<name>", exists_alias, api="indices.exists_alias"),
    Route(("HEAD",), "/<index>/_alias/<name>", exists_alias, api="indices.exists_alias"),
    Route(("PUT", "POST"), "/<index>/_alias/<name>", put_alias, api="indices.put_alias"),
    Route(("PUT", "POST"), "/<index>/_aliases/<name>", put_alias, api="indices.put_alias"),
    Route(("DELETE",), "/<index>/_alias/<name>", delete_alias, api="indices.delete_alias"),
    Route(("DELETE",), "/<index>/_aliases/<name>", delete_alias, api="indices.delete_alias"),
]
