"""Alias definitions: parsing with ES 9.x strict value types, and the shape GET _alias returns."""

from __future__ import annotations

from typing import Any

from sandbox.errors import EsError, IllegalArgument

_TYPE_NAMES = {bool: "boolean", str: "String", int: "Integer", float: "Double", list: "ArrayList",
               dict: "LinkedHashMap"}
OUTPUT_ORDER = ("filter", "index_routing", "search_routing", "is_write_index", "is_hidden")


class AliasesNotFound(EsError):
    status, type = 404, "aliases_not_found_exception"

    def __init__(self, names: list[str]):
        what = "aliases" if len(names) > 1 else "alias"
        super().__init__(f"{what} [{','.join(names)}] missing", **{"resource.type": "aliases",
                                                                   "resource.id": ",".join(names)})


def _unsupported(value: Any, field: str, alias: str) -> IllegalArgument:
    # ES 9.x (feature index.throw_exception_on_index_creation_if_unsupported_value_type_in_alias)
    kind = _TYPE_NAMES.get(type(value), type(value).__name__)
    shown = str(value).lower() if isinstance(value, bool) else value
    return IllegalArgument(f"Unsupported {kind} type value [{shown}] for field [{field}] in alias [{alias}]")


def parse_alias(alias: str, body: Any, *, allowed_extra: tuple[str, ...] = (),
                string_booleans: bool = False) -> dict[str, Any]:
    """Alias properties as ES stores them: filter, index_routing, search_routing, is_write_index, is_hidden.
    string_booleans: 8.x at index creation took "true"/"false" for is_write_index (sandbox/versions.py)."""
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise EsError(f"Failed to parse alias [{alias}]: expected an object", status=400, type="parse_exception")
    props: dict[str, Any] = {}
    for key, value in body.items():
        if key in allowed_extra:
            continue
        if key == "filter":
            if value is None:
                continue
            if not isinstance(value, dict):
                raise _unsupported(value, key, alias)
            props["filter"] = value
        elif key in ("routing", "index_routing", "search_routing"):
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise _unsupported(value, key, alias)
            value = str(value)
            if key in ("routing", "index_routing"):
                if "," in value and key != "search_routing":
                    raise IllegalArgument(f"alias [{alias}] has several index routing values associated with it")
                props.setdefault("index_routing", value) if key == "routing" else props.update(index_routing=value)
            if key in ("routing", "search_routing"):
                props.setdefault("search_routing", value) if key == "routing" else props.update(search_routing=value)
        elif key in ("is_write_index", "is_hidden"):
            if value is None:
                continue
            if string_booleans and key == "is_write_index" and value in ("true", "false"):
                value = value == "true"
            if not isinstance(value, bool):
                raise _unsupported(value, key, alias)
            props[key] = value
        else:
            raise IllegalArgument(f"Unknown field [{key}] in alias [{alias}]")
    return {k: props[k] for k in OUTPUT_ORDER if k in props}
