"""Facts about which index changes Elasticsearch applies in place, and the pure diff of an index spec.

Static vs dynamic settings follow terraform-provider-elasticstack `internal/elasticsearch/index/settings_keys.go`
(DynamicSettingsKeys) and the ES index-modules docs (lessons-from-peers.md §2a, §5a). Anything not known to be
dynamic is treated as static: a replacement (reindex + alias swap) is slower but never loses data, whereas an
in-place PUT _settings of a static key is rejected by ES for open indices (es-api-semantics.md §1.7).
"""

from __future__ import annotations

from typing import Any

from provisioning.diffing import declared_diffs, flat_settings, normalise_mapping, scalar_equal
from provisioning.model import FieldDiff

DYNAMIC_SETTINGS = frozenset({
    "index.number_of_replicas", "index.auto_expand_replicas", "index.refresh_interval",
    "index.max_result_window", "index.max_inner_result_window", "index.max_rescore_window",
    "index.max_docvalue_fields_search", "index.max_script_fields", "index.max_ngram_diff",
    "index.max_shingle_diff", "index.max_refresh_listeners", "index.analyze.max_token_count",
    "index.highlight.max_analyzed_offset", "index.max_terms_count", "index.max_regex_length",
    "index.query.default_field", "index.routing.rebalance.enable", "index.routing.allocation.enable",
    "index.gc_deletes", "index.default_pipeline", "index.final_pipeline", "index.hidden",
    "index.mapping.total_fields.limit", "index.mapping.depth.limit", "index.mapping.nested_fields.limit",
    "index.mapping.nested_objects.limit", "index.mapping.field_name_length.limit",
    "index.mapping.total_fields.ignore_dynamic_beyond_limit", "index.search.idle.after",
    "index.unassigned.node_left.delayed_timeout", "index.translog.durability", "index.translog.sync_interval",
    "index.translog.flush_threshold_size", "index.write.wait_for_active_shards", "index.max_slices_per_scroll",
    "index.blocks.read_only", "index.blocks.read_only_allow_delete", "index.blocks.read", "index.blocks.write",
    "index.blocks.metadata", "index.lifecycle.name", "index.lifecycle.rollover_alias",
})
DYNAMIC_PREFIXES = ("index.search.slowlog.", "index.indexing.slowlog.", "index.routing.allocation.include.",
                    "index.routing.allocation.exclude.", "index.routing.allocation.require.")

# Field parameters PUT _mapping may change on an existing field (ES put-mapping docs, §5b); others need a new index.
UPDATABLE_FIELD_PARAMS = frozenset({"ignore_above", "search_analyzer", "search_quote_analyzer", "dynamic", "meta",
                                    "search_inference_id", "ignore_malformed", "boost"})
# Top-level mapping keys updatable in place; `properties` is walked field by field.
UPDATABLE_MAPPING_KEYS = frozenset({"dynamic", "dynamic_templates", "runtime", "_meta", "date_detection",
                                    "numeric_detection", "dynamic_date_formats"})
MANAGED_META_KEYS = frozenset({"managed_by", "stack", "spec_hash"})
DEFAULT_FIELD_TYPE = "object"  # a field with `properties` and no `type`


def is_dynamic(key: str) -> bool:
    return key in DYNAMIC_SETTINGS or key.startswith(DYNAMIC_PREFIXES)


def _collapse_match_lists(mapping: dict[str, Any]) -> dict[str, Any]:
    """ES echoes a single-element dynamic-template `match*` list as a scalar (TF-ES mappings_value.go)."""
    templates = mapping.get("dynamic_templates")
    if not isinstance(templates, list):
        return mapping
    out = []
    for entry in templates:
        fixed = {}
        for name, body in (entry or {}).items():
            body = dict(body or {})
            for key in ("match", "unmatch", "path_match", "path_unmatch", "match_mapping_type"):
                if isinstance(body.get(key), list) and len(body[key]) == 1:
                    body[key] = body[key][0]
            fixed[name] = body
        out.append(fixed)
    return {**mapping, "dynamic_templates": out}


def normalise_index_mapping(mapping: dict[str, Any] | None) -> dict[str, Any]:
    return _collapse_match_lists(normalise_mapping(dict(mapping or {})))


def normalise_alias(props: dict[str, Any] | None) -> dict[str, Any]:
    """`routing: x` is stored as index_routing + search_routing (es-api-semantics.md §1.1 aliases)."""
    props = dict(props or {})
    if "routing" in props:
        routing = props.pop("routing")
        props.setdefault("index_routing", routing)
        props.setdefault("search_routing", routing)
    return props


# ---- the pure diff --------------------------------------------------------------------------------------
def settings_diffs(desired: dict[str, Any], live: dict[str, Any], previous: dict[str, Any] | None) -> list[FieldDiff]:
    want, have = flat_settings(desired), live
    diffs = [FieldDiff(f"settings.{k}", have.get(k), v, forces_replacement=not is_dynamic(k))
             for k, v in sorted(want.items()) if not scalar_equal(v, have.get(k))]
    # kubectl-style: a key removed from the manifest is reset only if we set it last time
    for key in sorted(set(flat_settings(previous)) - set(want)):
        if have.get(key) is not None:
            diffs.append(FieldDiff(f"settings.{key}", have[key], None, forces_replacement=not is_dynamic(key)))
    return diffs


def _field_diffs(path: str, want: dict[str, Any], have: dict[str, Any] | None, prev: dict[str, Any] | None
                 ) -> list[FieldDiff]:
    """Diffs of one declared field. `prev` is the field as we last applied it: a parameter we applied whose
    value equals ES's default is not echoed by GET _mapping (FieldMapper.Parameter serialises only values that
    differ from the default), so "applied last time, absent now, unchanged in the manifest" is not drift."""
    if have is None:
        return [FieldDiff(path, None, want)]
    prev = prev or {}
    want_type = want.get("type", DEFAULT_FIELD_TYPE if "properties" in want else "text")
    have_type = have.get("type", DEFAULT_FIELD_TYPE if "properties" in have else None)
    if want_type != have_type:
        return [FieldDiff(f"{path}.type", have_type, want_type, forces_replacement=True)]
    diffs: list[FieldDiff] = []
    for key in sorted(want):
        if key == "type":
            continue
        if key in ("properties", "fields"):
            for sub, sub_want in sorted((want[key] or {}).items()):
                diffs += _field_diffs(f"{path}.{key}.{sub}", sub_want or {}, (have.get(key) or {}).get(sub),
                                      (prev.get(key) or {}).get(sub))
            continue
        if key not in have and key in prev and scalar_equal(prev[key], want[key]):
            continue  # a default ES does not echo
        for d in declared_diffs(want[key], have.get(key), f"{path}.{key}"):
            d.forces_replacement = key not in UPDATABLE_FIELD_PARAMS
            diffs.append(d)
    return diffs


def _declared_fields(properties: dict[str, Any] | None, prefix: str = "") -> set[str]:
    out: set[str] = set()
    for name, body in (properties or {}).items():
        path = f"{prefix}{name}"
        out.add(path)
        out |= _declared_fields((body or {}).get("properties"), f"{path}.properties.")
        out |= _declared_fields((body or {}).get("fields"), f"{path}.fields.")
    return out


def mapping_diffs(desired: dict[str, Any], live: dict[str, Any], previous: dict[str, Any] | None) -> list[FieldDiff]:
    want, have = normalise_index_mapping(desired), normalise_index_mapping(live)
    before = normalise_index_mapping(previous)
    diffs: list[FieldDiff] = []
    for key in sorted(want):
        if key == "properties":
            for name, body in sorted((want["properties"] or {}).items()):
                diffs += _field_diffs(f"mappings.properties.{name}", body or {},
                                      (have.get("properties") or {}).get(name), (before.get("properties") or {})
                                      .get(name))
        elif key not in have and key in before and scalar_equal(before[key], want[key]):
            continue  # e.g. `dynamic: true`, the default, is not echoed
        elif key == "_meta":
            user_meta = {k: v for k, v in (want["_meta"] or {}).items() if k not in MANAGED_META_KEYS}
            diffs += declared_diffs(user_meta, have.get("_meta") or {}, "mappings._meta")
        else:
            for d in declared_diffs(want[key], have.get(key), f"mappings.{key}"):
                d.forces_replacement = key not in UPDATABLE_MAPPING_KEYS
                diffs.append(d)
    # a field we declared last time and the manifest dropped: only a new index removes it (ES cannot)
    removed = _declared_fields(before.get("properties")) - _declared_fields(want.get("properties"))
    live_fields = _declared_fields(have.get("properties"))
    for gone in sorted(removed):
        if gone in live_fields and not any(gone.startswith(f"{r}.") for r in removed):
            diffs.append(FieldDiff(f"mappings.properties.{gone}", "(declared before)", None,
                                   forces_replacement=True))
    return diffs


def alias_diffs(name: str | None, desired: dict[str, Any], live: dict[str, Any], previous: dict[str, Any] | None
                ) -> list[FieldDiff]:
    """name None: a concrete index of the resource's name (adopted), which cannot also be an alias of itself."""
    want = {**({name: {}} if name else {}), **{a: normalise_alias(p) for a, p in (desired or {}).items()}}
    diffs = []
    for alias, props in sorted(want.items()):
        have = live.get(alias)
        if have is None:
            diffs.append(FieldDiff(f"aliases.{alias}", None, props))
        else:
            diffs += declared_diffs(props, have, f"aliases.{alias}")
    for alias in sorted(set(previous or {}) - set(want)):
        if alias in live:
            diffs.append(FieldDiff(f"aliases.{alias}", live[alias], None))
    return diffs
