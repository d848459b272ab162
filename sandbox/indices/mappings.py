"""Mappings: validation and normalisation, put-mapping merge rules (dynamic mapping lives in dynamic.py).

ES references: MappingParser / ObjectMapper.TypeParser (parsing, dotted names), FieldMapper.merge and
Parameter.merge (conflicts), DocumentParser / DynamicFieldsBuilder (dynamic mapping). ES YAML REST tests
indices.get_mapping, indices.put_mapping.
"""

from __future__ import annotations

import copy
from typing import Any

from sandbox.errors import IllegalArgument, MapperParsing
from sandbox.indices.analysis import ANALYZERS

FIELD_TYPES = {
    "text", "keyword", "long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float",
    "unsigned_long", "date", "date_nanos", "boolean", "binary", "object", "nested", "flattened", "ip",
    "geo_point", "geo_shape", "point", "shape", "dense_vector", "sparse_vector", "rank_feature",
    "rank_features", "rank_vectors", "semantic_text", "completion", "search_as_you_type", "token_count",
    "alias", "join", "percolator", "match_only_text", "wildcard", "constant_keyword", "version", "histogram",
    "integer_range", "float_range", "long_range", "double_range", "date_range", "ip_range", "counted_keyword",
    "passthrough", "aggregate_metric_double", "murmur3", "patterned_text"
}
RUNTIME_TYPES = {"boolean", "composite", "date", "double", "geo_point", "geo_shape", "ip", "keyword", "long",
                 "lookup"}
OBJECT_TYPES = {"object", "nested"}
ROOT_KEYS = {"properties", "runtime", "dynamic", "_meta", "_source", "_routing", "dynamic_templates",
             "date_detection", "numeric_detection", "dynamic_date_formats", "enabled", "subobjects", "_field_names",
             "_data_stream_timestamp"}
# Parameters each common field type accepts (ES FieldMapper.Builder parameters; anything else is refused with
# "unknown parameter [x] on mapper [f] of type [t]"). Types not listed here are not checked.
_COMMON = {"type", "meta", "fields", "copy_to", "script", "on_script_error", "synthetic_source_keep"}
_NUMERIC = _COMMON | {"coerce", "doc_values", "ignore_malformed", "index", "null_value", "store",
                      "time_series_dimension", "time_series_metric"}
FIELD_PARAMS: dict[str, set[str]] = {
    "text": _COMMON | {"analyzer", "search_analyzer", "search_quote_analyzer", "eager_global_ordinals", "fielddata",
                       "fielddata_frequency_filter", "index", "index_options", "index_phrases", "index_prefixes",
                       "norms", "position_increment_gap", "similarity", "store", "term_vector"},
    "keyword": _COMMON | {"doc_values", "eager_global_ordinals", "ignore_above", "index", "index_options", "norms",
                          "null_value", "normalizer", "split_queries_on_whitespace", "similarity", "store",
                          "time_series_dimension"},
    **{t: _NUMERIC for t in ("long", "integer", "short", "byte", "double", "float", "half_float", "unsigned_long")},
    "scaled_float": _NUMERIC | {"scaling_factor"},
    **{t: _COMMON | {"doc_values", "format", "locale", "ignore_malformed", "index", "null_value", "store"}
       for t in ("date", "date_nanos")},
    "boolean": _COMMON | {"doc_values", "index", "null_value", "store", "ignore_malformed"},
    "ip": _COMMON | {"doc_values", "ignore_malformed", "index", "null_value", "store", "time_series_dimension"},
    "dense_vector": _COMMON | {"dims", "element_type", "index", "similarity", "index_options"},
    "semantic_text": {"type", "meta", "inference_id", "search_inference_id", "model_settings", "chunking_settings",
                      "index_options"},
}
# ObjectMapper.TypeParser / NestedObjectMapper.TypeParser parameters
OBJECT_PARAMS = {
    "object": {"type", "properties", "dynamic", "enabled", "subobjects", "store_array_source", "synthetic_source_keep"},
    "nested": {"type", "properties", "dynamic", "enabled", "include_in_parent", "include_in_root",
               "store_array_source", "synthetic_source_keep"},
}
# Parameters ES refuses to change on an existing field (FieldMapper parameters without `.updateable`/merge rules).
NOT_UPDATABLE = ("analyzer", "index", "store", "doc_values", "similarity", "term_vector", "format", "dims",
                 "element_type", "index_prefixes", "index_phrases", "position_increment_gap", "null_value",
                 "scaling_factor", "path", "enabled", "inference_id", "normalizer")
_NOT_EXISTS = ("does not exist. It might have been created within a future version or requires a plugin to be "
               "installed. Check the documentation.")


def _unknown_type(type_name: Any, field: str, runtime: bool = False) -> MapperParsing:
    where = "runtime field" if runtime else "field"
    return MapperParsing(f"The mapper type [{type_name}] declared on {where} [{field}] {_NOT_EXISTS}")


def field_type(definition: dict[str, Any]) -> str:
    return definition.get("type", "object")


# ---- parsing / normalisation --------------------------------------------------------------------------------
def _expand_dots(properties: dict[str, Any]) -> dict[str, Any]:
    """{"a.b": {...}} -> {"a": {"properties": {"b": {...}}}} (ES expands dotted field names in mappings)."""
    out: dict[str, Any] = {}
    for name, definition in properties.items():
        if "." in name and name.strip("."):
            head, rest = name.split(".", 1)
            target = out.setdefault(head, {"properties": {}})
            if not isinstance(target, dict) or "properties" not in target:
                target = out[head] = {"properties": {}}
            target["properties"] = _expand_dots({**target["properties"], rest: definition})
        else:
            out[name] = definition
    return out


def _parse_properties(properties: Any, path: str, ctx: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(properties, dict):
        raise MapperParsing(f"Expected map for property [properties] on field [{path or '_doc'}] but got "
                            f"[{properties!r}]")
    parsed = {}
    for name, definition in _expand_dots(properties).items():
        if name == "" or name.strip() == "":
            raise IllegalArgument("field name cannot be an empty string")
        if name.strip(".") == "":
            raise IllegalArgument(f"field name cannot contain only dots: [{name}]")
        full = f"{path}.{name}" if path else name
        parsed[name] = _parse_field(name, full, definition, ctx)
    return dict(sorted(parsed.items()))


def _parse_field(name: str, full: str, definition: Any, ctx: dict[str, Any], multi: bool = False) -> dict[str, Any]:
    if not isinstance(definition, dict):
        raise MapperParsing(f"Expected map for property [fields] on field [{name}] but got a class "
                            f"java.lang.{type(definition).__name__}")
    definition = dict(definition)
    type_name = definition.get("type")
    if type_name is None and not multi:
        # ObjectMapper.TypeParser#parseProperties: without a type, only `properties` or a lone `enabled` make an
        # object; anything else is "No type specified for field [x]"
        if "properties" not in definition and set(definition) != {"enabled"}:
            raise MapperParsing(f"No type specified for field [{name}]")
        type_name = "object"
    if type_name is not None and (not isinstance(type_name, str) or type_name not in FIELD_TYPES):
        raise _unknown_type(type_name, name)
    if multi and type_name in OBJECT_TYPES:
        raise MapperParsing(f"Type [{type_name}] cannot be used in multi field")
    if type_name in OBJECT_TYPES or type_name is None:
        unsupported = [k for k in definition if k not in OBJECT_PARAMS.get(type_name or "object", ())]
        if unsupported:  # ObjectMapper.TypeParser leaves them in the node: checkNoRemainingFields
            listed = ", ".join(f"{k} : {_show(definition[k])}" for k in unsupported)
            raise MapperParsing(f"Mapping definition for [{name}] has unsupported parameters:  [{listed}]")
        if "properties" in definition:
            properties = _parse_properties(definition.pop("properties"), full, ctx)
            if properties:  # ES does not print an empty properties object
                definition["properties"] = properties
        if "dynamic" in definition:
            definition["dynamic"] = _dynamic_value(definition["dynamic"])
        return object_type(definition)
    allowed = FIELD_PARAMS.get(type_name)
    unknown = [p for p in definition if p not in allowed] if allowed else []
    if "properties" in definition and "properties" not in unknown:
        unknown.insert(0, "properties")
    if unknown:
        raise MapperParsing(f"unknown parameter [{unknown[0]}] on mapper [{full}] of type [{type_name}]")
    for param in ("analyzer", "search_analyzer", "search_quote_analyzer"):
        analyzer = definition.get(param)
        if analyzer is not None and analyzer not in ANALYZERS and analyzer not in ctx["analyzers"]:
            raise MapperParsing(f"analyzer [{analyzer}] has not been configured in mappings")
    if "fields" in definition:
        fields = definition["fields"]
        if not isinstance(fields, dict):
            raise MapperParsing(f"Expected map for property [fields] on field [{name}] but got a class "
                                f"java.lang.{type(fields).__name__}")
        sub = {}
        for sub_name, sub_def in fields.items():
            if sub_name == "":
                raise IllegalArgument("field name cannot be an empty string")
            parsed = _parse_field(sub_name, f"{full}.{sub_name}", sub_def, ctx, multi=True)
            if "type" not in parsed:
                raise MapperParsing(f"No type specified for field [{sub_name}]")
            sub[sub_name] = parsed
        definition["fields"] = dict(sorted(sub.items()))
    if "meta" in definition and not isinstance(definition["meta"], dict):
        raise MapperParsing(f"[meta] must be an object, got {definition['meta']!r} for field [{full}]")
    return definition


def object_type(definition: dict[str, Any]) -> dict[str, Any]:
    """ES prints `type: object` only for an object without sub-fields (ObjectMapper.toXContent)."""
    if definition.get("type", "object") == "object":
        if "properties" in definition:
            definition.pop("type", None)
        else:
            definition = {"type": "object", **{k: v for k, v in definition.items() if k != "type"}}
    return definition


def _dynamic_value(value: Any) -> str:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if text not in ("true", "false", "strict", "runtime"):
        raise MapperParsing(f"Unknown value [{value}] for dynamic; must be one of [true, false, strict, runtime]")
    return text


def parse_mapping(body: Any, analyzers: set[str] | frozenset = frozenset()) -> dict[str, Any]:
    """Validate a mappings object (no `_doc` wrapper) and return its normalised form. Raises ES errors."""
    if body is None:
        return {}
    if not isinstance(body, dict):
        # capability poorly_formatted_bad_request: a non-object mapping is a 400
        raise MapperParsing(f"Failed to parse mapping: expected an object for [mappings] but got [{body!r}]")
    unknown = [k for k in body if k not in ROOT_KEYS]
    if unknown:
        listed = ", ".join(f"{k} : {body[k]}" for k in unknown)
        raise MapperParsing(f"Root mapping definition has unsupported parameters:  [{listed}]")
    ctx = {"analyzers": set(analyzers)}
    out = copy.deepcopy(body)
    if "properties" in out:
        out["properties"] = _parse_properties(out["properties"], "", ctx)
        if not out["properties"]:
            del out["properties"]  # `{"properties": {}}` reads back as `{}`
    if "dynamic" in out:
        out["dynamic"] = _dynamic_value(out["dynamic"])
    if "runtime" in out:
        runtime = out["runtime"]
        if not isinstance(runtime, dict):
            raise MapperParsing("Expected map for property [runtime] but got a class java.lang.String")
        for name, definition in runtime.items():
            if not isinstance(definition, dict):
                raise MapperParsing(f"Expected map for runtime field [{name}] definition but got a "
                                    f"{type(definition).__name__}")
            if definition.get("type") not in RUNTIME_TYPES:
                if "type" not in definition:
                    raise MapperParsing(f"No type specified for runtime field [{name}]")
                raise _unknown_type(definition["type"], name, runtime=True)
    if "_meta" in out and not isinstance(out["_meta"], dict):
        raise MapperParsing("[_meta] must be an object")
    source = out.get("_source")
    if source is not None and not isinstance(source, dict):
        raise MapperParsing("Expected map for property [_source] but got a class java.lang.String")
    return out


def strip_doc_wrapper(body: Any) -> Any:
    """Create index tolerates `{"_doc": {...}}` (the only type name left); put mapping does not."""
    if isinstance(body, dict) and len(body) == 1 and isinstance(body.get("_doc"), dict):
        return body["_doc"]
    return body


# ---- merging ------------------------------------------------------------------------------------------------
def _merge_field(path: str, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    old_type, new_type = field_type(old), field_type(new)
    old_object, new_object = old_type in OBJECT_TYPES, new_type in OBJECT_TYPES
    if old_object and not new_object:  # ES ObjectMapper.merge
        raise IllegalArgument(f"can't merge a non object mapping [{path}] with an object mapping")
    if new_object and not old_object:  # ES FieldMapper.merge names the Java class of the new mapper
        java = "NestedObjectMapper" if new_type == "nested" else "ObjectMapper"
        raise IllegalArgument(f"mapper [{path}] cannot be changed from type [{old_type}] to [{java}]")
    if old_type != new_type:
        raise IllegalArgument(f"mapper [{path}] cannot be changed from type [{old_type}] to [{new_type}]")
    if old_object:
        merged = {**old, **{k: v for k, v in new.items() if k != "properties"}}
        if old.get("enabled", True) != new.get("enabled", old.get("enabled", True)):
            raise IllegalArgument(f"the [enabled] parameter can't be updated for the object mapping [{path}]")
        props = _merge_properties(path, old.get("properties", {}), new.get("properties", {}))
        if props:
            merged["properties"] = props
        return object_type(merged)
    conflicts = []
    for param in NOT_UPDATABLE:
        before, after = old.get(param, "default"), new.get(param, "default")
        if before != after:
            conflicts.append(f"Cannot update parameter [{param}] from [{_show(before)}] to [{_show(after)}]")
    if conflicts:
        raise IllegalArgument(f"Mapper for [{path}] conflicts with existing mapper:\n\t" + "\n\t".join(conflicts))
    merged = dict(new)  # updatable parameters (meta, ignore_above, copy_to, ...) take the new definition
    if "fields" in old or "fields" in new:
        fields = dict(old.get("fields", {}))
        for sub_name, sub_def in new.get("fields", {}).items():
            fields[sub_name] = (_merge_field(f"{path}.{sub_name}", fields[sub_name], sub_def)
                                if sub_name in fields else sub_def)
        merged["fields"] = dict(sorted(fields.items()))
    return merged


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _merge_properties(path: str, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    merged = dict(old)
    for name, definition in new.items():
        full = f"{path}.{name}" if path else name
        merged[name] = _merge_field(full, old[name], definition) if name in old else definition
    return dict(sorted(merged.items()))


def merge(existing: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Put-mapping merge (ES MapperService.merge with MergeReason.MAPPING_UPDATE). Both already parsed."""
    result = copy.deepcopy(existing)
    for key, value in update.items():
        if key == "properties":
            result["properties"] = _merge_properties("", existing.get("properties", {}), value)
        elif key == "runtime":
            runtime = dict(existing.get("runtime", {}))
            for name, definition in value.items():
                if definition is None:
                    runtime.pop(name, None)  # ES: a null runtime field definition removes it
                else:
                    runtime[name] = definition
            result["runtime"] = runtime
        elif key == "_source":
            old_mode = existing.get("_source", {}).get("mode")
            new_mode = value.get("mode")
            if old_mode == "synthetic" and new_mode not in (None, "synthetic"):
                raise IllegalArgument(f"Mapper for [_source] conflicts with existing mapper:\n\tCannot update "
                                      f"parameter [mode] from [synthetic] to [{new_mode}]")
            result["_source"] = {**existing.get("_source", {}), **value}
        else:
            result[key] = copy.deepcopy(value)  # _meta, dynamic, dynamic_templates, ... are replaced
    return result


def field_definitions(mapping: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Flat view: {"a.b": definition, "title.keyword": definition} for every leaf field and multi-field."""
    out: dict[str, dict[str, Any]] = {}

    def walk(props: dict[str, Any], prefix: str) -> None:
        for name, definition in props.items():
            full = f"{prefix}{name}"
            if field_type(definition) in OBJECT_TYPES:
                walk(definition.get("properties", {}), f"{full}.")
                continue
            out[full] = definition
            for sub_name, sub_def in definition.get("fields", {}).items():
                out[f"{full}.{sub_name}"] = sub_def

    walk(mapping.get("properties", {}), "")
    return out
