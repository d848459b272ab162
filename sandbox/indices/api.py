"""HTTP routes of the indices area: create/get/exists/delete, open/close, mappings, settings.

Aliases, templates and pipelines live in api_aliases.py and api_templates.py, blocks in api_blocks.py; ROUTES gathers
all of them.
es-api-semantics.md §1.1-1.7.
"""

from __future__ import annotations

import copy
from typing import Any

from sandbox import versions
from sandbox.errors import EsError, IllegalArgument, Unsupported
from sandbox.http import EsRequest, Reply, Route
from sandbox.indices import api_aliases, api_blocks, api_templates
from sandbox.indices import mappings as mapping_rules
from sandbox.indices import settings as settings_rules
from sandbox.indices.names import index_options, is_wildcard
from sandbox.indices.store import Index, IndexStore

_FEATURES = ("aliases", "mappings", "settings")

# Declared for GET /_capabilities and GET /_cluster/state (collected by sandbox/cluster_api.py).
CAPABILITIES = {
    # lookup_index_mode: index.mode=lookup accepted, one shard by default, more refused (settings.validate_create).
    # poorly_formatted_bad_request: non-object mappings/settings/aliases/properties are 400s.
    # hunspell_dict_400: a hunspell filter without a dictionary is a 400 (analysis.py; the sandbox has none).
    ("PUT", "/{index}"): {"lookup_index_mode", "poorly_formatted_bad_request", "hunspell_dict_400"},
}
CLUSTER_FEATURES = {
    "indices_alias_date_math",  # date-math alias names resolved (names.resolve_date_math)
    "index.throw_exception_on_index_creation_if_unsupported_value_type_in_alias",  # aliases.parse_alias
    "mapper.unknown_field_mapping_update_error_message",  # mappings._unknown_type
}


def store(sb: Any) -> IndexStore:
    return sb.cluster.indices


def _check_path_name(req: EsRequest, expression: str) -> None:
    """`GET /_foo` is most likely an ES API the sandbox lacks: say so (a 400, as ES's invalid_index_name_exception
    for such a name is) rather than looking for an index called `_foo`."""
    for part in expression.split(","):
        if part.startswith("_") and part != "_all":
            raise Unsupported(req.method, req.path, f"[{part}] is not an index name (ES answers 400 "
                                                    "invalid_index_name_exception for it)")


def _destructive_check(sb: Any, expression: str) -> None:
    """ES DestructiveOperations: action.destructive_requires_name (default true in 8.0+) refuses wildcards."""
    if store(sb).cluster_setting("action.destructive_requires_name", "true") != "true":
        return
    parts = [p for p in expression.split(",") if p]
    if not parts or any(p == "_all" or (is_wildcard(p) and not p.startswith("-")) for p in parts):
        raise IllegalArgument("Wildcard expressions or all indices are not allowed")


# ---- create / get / exists / delete -------------------------------------------------------------------------
def create_index(sb: Any, req: EsRequest, index: str) -> dict:
    # no _check_path_name: a name such as `_foo` gets ES's invalid_index_name_exception from the store
    created = store(sb).create(index, req.json({}))
    return {"acknowledged": True, "shards_acknowledged": True, "index": created.name}


def settings_view(sb: Any, index: Index, req: EsRequest, names: list[str] | None = None) -> dict[str, Any]:
    flat = settings_rules.filter_names(index.settings, names)
    if req.flag("human"):
        flat = dict(flat)
        if "index.creation_date" in flat:
            flat["index.creation_date_string"] = store(sb).creation_date_string(index)
        if "index.version.created" in flat:
            flat["index.version.created_string"] = sb.cluster.version
    return settings_rules.render(flat, req.flag("flat_settings"))


def get_index(sb: Any, req: EsRequest, index: str) -> dict:
    _check_path_name(req, index)
    features = req.list_arg("features") or list(_FEATURES)
    unknown = [f for f in features if f not in _FEATURES]
    if unknown:
        raise IllegalArgument(f"No feature for name [{unknown[0]}]")
    found = store(sb).resolve(index, **index_options(req))
    result = {}
    for item in found:
        entry: dict[str, Any] = {}
        if "aliases" in features:
            entry["aliases"] = store(sb).aliases_of(item.name)
        if "mappings" in features:
            entry["mappings"] = copy.deepcopy(item.mappings)
        elif versions.get_index_keeps_empty_mappings(sb.cluster.version):
            entry["mappings"] = {}  # 8.x (sandbox/versions.py DIFFERENCES get_index_features)
        if "settings" in features:
            entry["settings"] = settings_view(sb, item, req)
            if req.flag("include_defaults"):
                entry["defaults"] = settings_rules.render(settings_rules.defaults_for(item.settings),
                                                          req.flag("flat_settings"))
        result[item.name] = entry
    return result


def exists_index(sb: Any, req: EsRequest, index: str) -> Reply:
    try:
        _check_path_name(req, index)
        found = store(sb).resolve(index, **index_options(req, allow_no_indices=False))
    except EsError as error:
        return Reply(None, error.status)
    return Reply(None, 200 if found else 404)


def delete_index(sb: Any, req: EsRequest, index: str) -> dict:
    _check_path_name(req, index)
    _destructive_check(sb, index)
    options = index_options(req, expand_default="open,closed")
    for item in store(sb).resolve(index, allow_aliases=False, **options):
        store(sb).delete_index(item.name)
    return {"acknowledged": True}


def close_index(sb: Any, req: EsRequest, index: str) -> dict:
    _check_path_name(req, index)
    _destructive_check(sb, index)
    found = store(sb).resolve(index, **index_options(req))
    for item in found:
        item.closed = True
        # ES MetadataIndexStateService marks indices it closed (and removes the mark when opening them)
        item.settings = dict(sorted({**item.settings, "index.verified_before_close": "true"}.items()))
    return {"acknowledged": True, "shards_acknowledged": True,
            "indices": {item.name: {"closed": True} for item in found}}


def open_index(sb: Any, req: EsRequest, index: str) -> dict:
    _check_path_name(req, index)
    for item in store(sb).resolve(index, **index_options(req, expand_default="closed")):
        item.closed = False
        item.settings.pop("index.verified_before_close", None)
    return {"acknowledged": True, "shards_acknowledged": True}


# ---- mappings -----------------------------------------------------------------------------------------------
def get_mapping(sb: Any, req: EsRequest, index: str | None = None) -> dict:
    if index:
        _check_path_name(req, index)
    found = store(sb).resolve(index, **index_options(req))
    return {item.name: {"mappings": copy.deepcopy(item.mappings)} for item in found}


def put_mapping(sb: Any, req: EsRequest, index: str) -> dict:
    _check_path_name(req, index)
    body = req.json(None)
    if body is None:
        raise EsError("mapping source is required", status=400, type="action_request_validation_exception")
    if isinstance(body, dict) and "_doc" in body and isinstance(body["_doc"], dict):
        raise IllegalArgument("Types cannot be provided in put mapping requests")
    found = store(sb).resolve(index, **index_options(req))
    updates = []
    for item in found:
        parsed = mapping_rules.parse_mapping(body, item.analyzers())
        updates.append((item, mapping_rules.merge(item.mappings, parsed)))
    for item, merged in updates:  # all indices validated before any changes (ES applies the batch atomically)
        item.mappings = merged
    return {"acknowledged": True}


# ---- settings -----------------------------------------------------------------------------------------------
def get_settings(sb: Any, req: EsRequest, index: str | None = None, name: str | None = None) -> dict:
    if index:
        _check_path_name(req, index)
    names = [n for n in (name or "").split(",") if n] or None
    result = {}
    for item in store(sb).resolve(index, **index_options(req)):
        entry: dict[str, Any] = {"settings": settings_view(sb, item, req, names)}
        if req.flag("include_defaults"):
            defaults = settings_rules.filter_names(settings_rules.defaults_for(item.settings), names)
            entry["defaults"] = settings_rules.render(defaults, req.flag("flat_settings"))
        result[item.name] = entry
    return result


def put_settings(sb: Any, req: EsRequest, index: str | None = None) -> dict:
    if index:
        _check_path_name(req, index)
    body = req.json(None)
    if body is None:
        raise EsError("Validation Failed: 1: no settings to update;", status=400,
                      type="action_request_validation_exception")
    if isinstance(body, dict) and set(body) == {"settings"} and isinstance(body["settings"], dict):
        body = body["settings"]
    update = settings_rules.normalise(body)
    if not update:
        raise EsError("Validation Failed: 1: no settings to update;", status=400,
                      type="action_request_validation_exception")
    preserve = req.flag("preserve_existing")
    reopen = req.flag("reopen")
    found = store(sb).resolve(index, **index_options(req))
    settings_rules.check_update(update, found, reopen)
    plans = []
    for item in found:
        new = dict(item.settings)
        for key, value in update.items():
            if preserve and key in item.settings:
                continue
            if value is None:
                new.pop(key, None)  # null resets to the default (it then disappears from GET)
            else:
                new[key] = value
        # ES keeps an explicit number_of_replicas: a reset puts the default back (updateIndexSettings)
        new.setdefault("index.number_of_replicas", "1")
        plans.append((item, dict(sorted(new.items()))))
    for item, new in plans:
        item.settings = new
    return {"acknowledged": True}


ROUTES: list[Route] = [
    Route(("GET",), "/_mapping", get_mapping, api="indices.get_mapping"),
    Route(("GET",), "/<index>/_mapping", get_mapping, api="indices.get_mapping"),
    Route(("PUT", "POST"), "/<index>/_mapping", put_mapping, api="indices.put_mapping"),
    Route(("GET",), "/_settings", get_settings, api="indices.get_settings"),
    Route(("GET",), "/_settings/<name>", get_settings, api="indices.get_settings"),
    Route(("GET",), "/<index>/_settings", get_settings, api="indices.get_settings"),
    Route(("GET",), "/<index>/_settings/<name>", get_settings, api="indices.get_settings"),
    Route(("PUT",), "/_settings", put_settings, api="indices.put_settings"),
    Route(("PUT",), "/<index>/_settings", put_settings, api="indices.put_settings"),
    Route(("POST",), "/<index>/_close", close_index, api="indices.close"),
    Route(("POST",), "/<index>/_open", open_index, api="indices.open"),
    *api_aliases.ROUTES,
    *api_templates.ROUTES,
    *api_blocks.ROUTES,
    Route(("PUT",), "/<index>", create_index, api="indices.create"),
    Route(("GET",), "/<index>", get_index, api="indices.get"),
    Route(("HEAD",), "/<index>", exists_index, api="indices.exists"),
    Route(("DELETE",), "/<index>", delete_index, api="indices.delete"),
]
