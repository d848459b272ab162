"""Field types of an index as search sees them: the mapping, plus ES's dynamic defaults for unmapped source fields.

The indices area owns the mapping (and dynamic mapping via Index.update_mapping_for); this module only reads it.
When a source field is not in the mapping (e.g. dynamic mapping not applied yet) we infer what ES's dynamic
mapping would have produced: strings -> text with a `.keyword` sub-field (ignore_above 256), integers -> long,
floats -> float, booleans -> boolean, objects -> sub-fields.
"""

from __future__ import annotations

from typing import Any

TEXT = "text"
KEYWORD = "keyword"
NUMBER = "number"
DATE = "date"
BOOLEAN = "boolean"
OTHER = "other"

_TYPE_FAMILY = {
    "text": TEXT, "match_only_text": TEXT, "search_as_you_type": TEXT,
    "keyword": KEYWORD, "constant_keyword": KEYWORD, "wildcard": KEYWORD,
    "long": NUMBER, "integer": NUMBER, "short": NUMBER, "byte": NUMBER, "double": NUMBER, "float": NUMBER,
    "half_float": NUMBER, "scaled_float": NUMBER, "unsigned_long": NUMBER,
    "date": DATE, "date_nanos": DATE, "boolean": BOOLEAN,
}


class FieldInfo:
    __slots__ = ("path", "family", "es_type", "ignore_above", "source_path", "analyzer", "search_analyzer",
                 "normalizer")

    def __init__(self, path: str, family: str, es_type: str, ignore_above: int | None = None,
                 source_path: str | None = None, spec: dict[str, Any] | None = None):
        self.path, self.family, self.es_type, self.ignore_above = path, family, es_type, ignore_above
        self.source_path = source_path or path  # a multi-field (`title.keyword`) indexes its parent's value
        spec = spec or {}
        self.analyzer = spec.get("analyzer")  # None: the index default analyzer (standard)
        self.search_analyzer = spec.get("search_analyzer", self.analyzer)
        self.normalizer = spec.get("normalizer") if family == KEYWORD else None


def _flatten_mapping(properties: dict[str, Any], prefix: str, out: dict[str, FieldInfo]) -> None:
    for name, spec in (properties or {}).items():
        if not isinstance(spec, dict):
            continue
        path = f"{prefix}{name}"
        es_type = spec.get("type", "object" if "properties" in spec else None)
        if "properties" in spec:
            _flatten_mapping(spec["properties"], path + ".", out)
        if es_type and es_type not in ("object", "nested"):
            out[path] = FieldInfo(path, _TYPE_FAMILY.get(es_type, OTHER), es_type, spec.get("ignore_above"),
                                  spec=spec)
        for sub, sub_spec in (spec.get("fields") or {}).items():
            if isinstance(sub_spec, dict) and sub_spec.get("type"):
                sub_type = sub_spec["type"]
                out[f"{path}.{sub}"] = FieldInfo(f"{path}.{sub}", _TYPE_FAMILY.get(sub_type, OTHER), sub_type,
                                                 sub_spec.get("ignore_above"), path, sub_spec)


def _infer(value: Any, path: str, out: dict[str, FieldInfo]) -> None:
    if isinstance(value, list):
        for item in value:
            if item is not None:
                _infer(item, path, out)
                return
        return
    if path in out or value is None:
        return
    if isinstance(value, dict):
        for key, sub in value.items():
            _infer(sub, f"{path}.{key}", out)
    elif isinstance(value, bool):
        out[path] = FieldInfo(path, BOOLEAN, "boolean")
    elif isinstance(value, int):
        out[path] = FieldInfo(path, NUMBER, "long")
    elif isinstance(value, float):
        out[path] = FieldInfo(path, NUMBER, "float")
    elif isinstance(value, str):
        # ES dynamic mapping for strings: text + keyword sub-field with ignore_above 256 (date detection ignored)
        out[path] = FieldInfo(path, TEXT, "text")
        out.setdefault(f"{path}.keyword", FieldInfo(f"{path}.keyword", KEYWORD, "keyword", 256, path))


def field_infos(mappings: dict[str, Any], sources: list[dict[str, Any]]) -> dict[str, FieldInfo]:
    """All searchable fields: mapped ones, runtime fields (read from _source), then ES-dynamic-style inference
    for unmapped source fields unless the mapping says `dynamic: false|strict` (ES: unmapped fields are then
    kept in _source but not searchable)."""
    mappings = mappings or {}
    out: dict[str, FieldInfo] = {}
    _flatten_mapping(mappings.get("properties") or {}, "", out)
    for path, spec in (mappings.get("runtime") or {}).items():
        if isinstance(spec, dict) and path not in out:
            es_type = spec.get("type", "keyword")
            out[path] = FieldInfo(path, _TYPE_FAMILY.get(es_type, OTHER), es_type)
    if str(mappings.get("dynamic", "true")).lower() in ("false", "strict"):
        return out
    mapped = set(out)
    for source in sources:
        for key, value in source.items():
            if key not in mapped:
                _infer(value, key, out)
    return out


def values_at(source: dict[str, Any], path: str) -> list[Any]:
    """Leaf values of a dotted path in a source document (objects, arrays and dotted keys), like ES extracts them."""
    found: list[Any] = []

    def walk(node: Any, parts: list[str]) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item, parts)
            return
        if not parts:
            if node is not None:
                found.append(node)
            return
        if not isinstance(node, dict):
            return
        for i in range(1, len(parts) + 1):
            key = ".".join(parts[:i])
            if key in node:
                walk(node[key], parts[i:])

    walk(source, path.split("."))
    return found
