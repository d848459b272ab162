"""Dynamic mapping of new document fields (ES DocumentParser / DynamicFieldsBuilder / DynamicTemplate).

Default rules (ES docs: Dynamic field mapping): strings -> text with a keyword multi-field (ignore_above 256), date-like
strings -> date, integers -> long, floats -> float, booleans -> boolean, objects -> properties; `dynamic`
false/strict/runtime and `dynamic_templates` are honoured.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sandbox.errors import EsError
from sandbox.indices.mappings import OBJECT_TYPES, field_type, object_type

# ES default dynamic_date_formats: strict_date_optional_time and "yyyy/MM/dd HH:mm:ss||yyyy/MM/dd".
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}(?::\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?)?)?"
                      r"(?:Z|[+-]\d{2}(?::?\d{2})?)?$|^\d{4}/\d{2}/\d{2}(?: \d{2}:\d{2}:\d{2})?$")


class StrictDynamicMapping(EsError):
    status, type = 400, "strict_dynamic_mapping_exception"


def _dynamic_definition(value: Any, root: dict[str, Any]) -> dict[str, Any] | None:
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "long"}
    if isinstance(value, float):
        return {"type": "float"}
    if isinstance(value, str):
        if root.get("date_detection", True) and _DATE_RE.match(value):
            return {"type": "date"}
        if root.get("numeric_detection", False):
            if re.fullmatch(r"[+-]?\d+", value):
                return {"type": "long"}
            if re.fullmatch(r"[+-]?\d*\.\d+(?:[eE][+-]?\d+)?", value):
                return {"type": "float"}
        return {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
    if isinstance(value, dict):
        return {"type": "object"}
    return None


def _runtime_type(definition: dict[str, Any]) -> str:
    return {"text": "keyword", "float": "double"}.get(definition["type"], definition["type"])


def _expand_source_dots(source: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in source.items():
        if "." in key and key.strip("."):
            head, rest = key.split(".", 1)
            nested = out.get(head) if isinstance(out.get(head), dict) else {}
            out[head] = {**nested, **_expand_source_dots({rest: value})}
        else:
            out[key] = value
    return out


def _detected_type(definition: dict[str, Any]) -> str:
    """match_mapping_type names (ES DynamicTemplate.XContentFieldType)."""
    return {"text": "string", "long": "long", "float": "double", "boolean": "boolean", "date": "date",
            "object": "object"}[definition["type"]]


def _matches(patterns: Any, value: str, regex: bool) -> bool:
    items = patterns if isinstance(patterns, list) else [patterns]
    if regex:
        return any(re.search(p, value) for p in items)
    return any(re.fullmatch(".*".join(re.escape(x) for x in p.split("*")), value) for p in items)


def _dynamic_template(root: dict[str, Any], name: str, full: str,
                      definition: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The first matching dynamic template (ES DynamicTemplate.match), with {name}/{dynamic_type} filled in."""
    detected = _detected_type(definition)
    for entry in root.get("dynamic_templates") or []:
        if not isinstance(entry, dict) or len(entry) != 1:
            continue
        spec = next(iter(entry.values()))
        regex = spec.get("match_pattern") == "regex"
        kinds = spec.get("match_mapping_type")
        if kinds is not None and "*" not in (kinds if isinstance(kinds, list) else [kinds]) \
                and detected not in (kinds if isinstance(kinds, list) else [kinds]):
            continue
        if "unmatch_mapping_type" in spec and _matches(spec["unmatch_mapping_type"], detected, False):
            continue
        if "match" in spec and not _matches(spec["match"], name, regex):
            continue
        if "unmatch" in spec and _matches(spec["unmatch"], name, regex):
            continue
        if "path_match" in spec and not _matches(spec["path_match"], full, regex):
            continue
        if "path_unmatch" in spec and _matches(spec["path_unmatch"], full, regex):
            continue
        section = "runtime" if "runtime" in spec else "mapping"
        body = json.loads(json.dumps(spec.get(section) or {}).replace("{name}", name)
                          .replace("{dynamic_type}", definition["type"]))
        if "type" not in body and definition["type"] != "object":
            body = {"type": _runtime_type(definition) if section == "runtime" else definition["type"], **body}
        return section, body
    return None


def _apply_dynamic(properties: dict[str, Any], source: dict[str, Any], path: str, dynamic: str,
                   root: dict[str, Any]) -> bool:
    changed = False
    for name, value in _expand_source_dots(source).items():
        full = f"{path}.{name}" if path else name
        if isinstance(value, list):
            value = next((v for v in value if v is not None), None)
        if value is None:
            continue
        existing = properties.get(name)
        if existing is None and name in root.get("runtime", {}):
            continue
        if existing is not None:
            if field_type(existing) in OBJECT_TYPES and isinstance(value, dict):
                sub = dict(existing.get("properties", {}))
                if _apply_dynamic(sub, value, full, str(existing.get("dynamic", dynamic)), root):
                    if existing.get("type") == "object":
                        del existing["type"]
                    existing["properties"] = dict(sorted(sub.items()))
                    changed = True
            continue
        if dynamic == "false":
            continue
        if dynamic == "strict":
            parent = path.rsplit(".", 1)[-1] if path else "_doc"
            raise StrictDynamicMapping(f"[1:2] mapping set to strict, dynamic introduction of [{name}] within "
                                       f"[{parent}] is not allowed")
        definition = _dynamic_definition(value, root)
        if definition is None:
            continue
        matched = _dynamic_template(root, name, full, definition)
        if matched is not None:
            section, mapping = matched
            if section == "runtime":
                root.setdefault("runtime", {})[full] = mapping
            elif definition["type"] == "object" and mapping.get("type", "object") == "object":
                sub = {}
                _apply_dynamic(sub, value, full, str(mapping.get("dynamic", dynamic)), root)
                extra = {k: v for k, v in mapping.items() if k != "type"}
                properties[name] = object_type({**extra, **({"properties": dict(sorted(sub.items()))} if sub
                                                             else {})})
            else:
                properties[name] = mapping
            changed = True
            continue
        if dynamic == "runtime" and definition["type"] != "object":
            root.setdefault("runtime", {})[full] = {"type": _runtime_type(definition)}
            changed = True
            continue
        if definition["type"] == "object":
            sub: dict[str, Any] = {}
            _apply_dynamic(sub, value, full, dynamic, root)
            definition = {"properties": dict(sorted(sub.items()))} if sub else {"type": "object"}
        properties[name] = definition
        changed = True
    return changed


def _copy_to_values(properties: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    """{target: value} for the `copy_to` targets of the document's mapped fields."""
    copies: dict[str, Any] = {}
    for name, value in _expand_source_dots(source).items():
        definition = properties.get(name)
        if not isinstance(definition, dict) or value is None:
            continue
        if field_type(definition) in OBJECT_TYPES:
            if isinstance(value, dict):
                copies.update(_copy_to_values(definition.get("properties", {}), value))
            continue
        targets = definition.get("copy_to") or []
        for target in targets if isinstance(targets, list) else [targets]:
            copies.setdefault(target, value)
    return copies


def dynamic_update(mapping: dict[str, Any], source: dict[str, Any]) -> bool:
    """Add mappings for the new fields of a document (in place). Returns whether the mapping changed."""
    dynamic = str(mapping.get("dynamic", "true"))
    properties = mapping.get("properties", {})
    changed = _apply_dynamic(properties, source, "", dynamic, mapping)
    # ES checks copy_to targets when it indexes a document, not when the mapping is put: DocumentParser copies
    # the value to the target, which is parsed like a field of the document, so an unmapped target follows the
    # dynamic setting (mapped under true, refused with strict_dynamic_mapping_exception under strict).
    copies = _copy_to_values(properties, source)
    if copies:
        nested: dict[str, Any] = {}
        for target, value in copies.items():
            nested = {**nested, **_expand_source_dots({target: value})}
        changed = _apply_dynamic(properties, nested, "", dynamic, mapping) or changed
    if changed and properties:
        mapping["properties"] = dict(sorted(properties.items()))
    return changed


