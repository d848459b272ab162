"""`_source` filtering (search hits, GET document): bool, a pattern, a list, or includes/excludes, with wildcards."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from sandbox.errors import EsError


def source_spec(value: Any) -> tuple[bool, list[str], list[str]]:
    """(fetch, includes, excludes) from a `_source` body value."""
    if value is None or value is True:
        return True, [], []
    if value is False:
        return False, [], []
    if isinstance(value, str):
        return True, [value], []
    if isinstance(value, list):
        return True, [str(v) for v in value], []
    if isinstance(value, dict):
        includes = value.get("includes", value.get("include", []))
        excludes = value.get("excludes", value.get("exclude", []))
        includes = [includes] if isinstance(includes, str) else list(includes or [])
        excludes = [excludes] if isinstance(excludes, str) else list(excludes or [])
        return True, includes, excludes
    raise EsError(f"[_source] unsupported value [{value}]", status=400, type="parsing_exception")


def source_spec_from_args(args: Any, body_value: Any = None) -> tuple[bool, list[str], list[str]]:
    """Query parameters `_source`, `_source_includes`, `_source_excludes` (they override the body)."""
    fetch, includes, excludes = source_spec(body_value)
    if "_source" in args:
        raw = args.get("_source", "")
        if raw.lower() in ("true", ""):
            fetch = True
        elif raw.lower() == "false":
            fetch = False
        else:
            fetch, includes = True, [p for p in raw.split(",") if p]
    if "_source_includes" in args:
        fetch, includes = True, [p for p in args["_source_includes"].split(",") if p]
    if "_source_excludes" in args:
        excludes = [p for p in args["_source_excludes"].split(",") if p]
    return fetch, includes, excludes


def _matches(path: str, patterns: list[str]) -> bool:
    return any(fnmatchcase(path, p) or path.startswith(p + ".") for p in patterns)


def _could_contain(path: str, patterns: list[str]) -> bool:
    """An object at `path` may hold included leaves (pattern `a.b` under object `a`)."""
    return any(p.startswith(path + ".") or fnmatchcase(path + ".", p.split(".")[0] + ".") for p in patterns)


def filter_source(source: dict[str, Any], includes: list[str], excludes: list[str]) -> dict[str, Any]:
    if not includes and not excludes:
        return source

    def walk(node: dict[str, Any], prefix: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in node.items():
            path = f"{prefix}{key}"
            if excludes and _matches(path, excludes):
                continue
            included = not includes or _matches(path, includes)
            if isinstance(value, dict):
                if included and not excludes:
                    out[key] = value
                elif included or _could_contain(path, includes):
                    sub = walk(value, path + ".")
                    if sub or (included and not value):
                        out[key] = sub
            elif isinstance(value, list) and any(isinstance(v, dict) for v in value):
                items = [walk(v, path + ".") if isinstance(v, dict) else v for v in value] \
                    if (included or _could_contain(path, includes)) else []
                items = [v for v in items if v != {}] if not included else items
                if items:
                    out[key] = items
            elif included:
                out[key] = value
        return out

    return walk(source, "")
