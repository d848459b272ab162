"""Validation of parsed manifest documents, before any client exists: the resource envelope, each kind's JSON Schema
(errors mapped back to the offending key's line, with "did you mean"), duplicates, explicit depends_on, cycles, and
each kind's own validate().

Reference policy: an explicit `depends_on` must name a resource declared in the manifests. References a kind infers
from a spec (a documents/check `index`, an endpoint's model_id, a semantic_text inference_id) may name objects that
already exist in the cluster and are not managed here, so an undeclared one is allowed and resolved at plan time.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators
from jsonschema.exceptions import best_match

from provisioning.errors import Problem
from provisioning.kinds import DECLARATIONS
from provisioning.kinds.base import load_schema
from provisioning.model import Document, Resource, SourceLocation, nearest_line

SENSITIVE_KEYS = frozenset({"secrets", "api_key", "access_key", "secret_key", "token", "password"})
ENVELOPE_KEYS = ("kind", "name", "protected", "adopt", "moved_from", "depends_on", "spec")


def _close_keys(validator, value, instance, schema) -> Iterator[ValidationError]:
    """Custom keyword `x-closeKeys`: in an object that accepts keys beyond its listed ones, a key that looks like a
    misspelling of a listed one (difflib ratio >= 0.85) is an error; Elasticsearch would reject or ignore it."""
    if not validator.is_type(instance, "object"):
        return
    known = list(schema.get("properties", {}))
    strip = value.get("stripPrefix", "") if isinstance(value, dict) else ""
    patterns = list(schema.get("patternProperties", {}))
    for key in instance:
        base = key[len(strip):] if strip and key.startswith(strip) else key
        if key in known or base in known or any(re.search(p, key) for p in patterns):
            continue
        close = difflib.get_close_matches(base, known, n=1, cutoff=0.85)
        if close:
            yield ValidationError(f"unknown key {key!r}", path=[key], validator_value={"suggestion": close[0]})


SchemaValidator = validators.extend(Draft202012Validator, {"x-closeKeys": _close_keys})


@cache
def envelope_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["kind"],
        "properties": {
            "kind": {"type": "string", "enum": list(DECLARATIONS)},
            "name": {"type": "string", "minLength": 1},
            "protected": {"type": "boolean"},
            "adopt": {"type": "boolean"},
            "moved_from": {"type": "string", "pattern": "^[a-z_]+/.+$",
                           "x-message": "must be written kind/name, e.g. index/old-name"},
            "depends_on": {"type": "array", "items": {
                "type": "string", "pattern": "^[a-z_]+/.+$",
                "x-message": "must be written kind/name, e.g. inference_endpoint/my-endpoint"}},
            "spec": {"type": "object"},
        },
    }


def _sensitive(path: list[Any]) -> bool:
    return any(str(p) in SENSITIVE_KEYS for p in path)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return {int: "integer", float: "number", str: "string", list: "array", dict: "object"}.get(type(value),
                                                                                              type(value).__name__)


def _suggest(word: Any, options: list[Any], cutoff: float = 0.6) -> str | None:
    if not isinstance(word, str):
        return None
    close = difflib.get_close_matches(word, [str(o) for o in options], n=1, cutoff=cutoff)
    return close[0] if close else None


def _listing(options: list[Any], limit: int = 12) -> str:
    shown = ", ".join(str(o) for o in options[:limit])
    return shown + (f", ... ({len(options) - limit} more)" if len(options) > limit else "")


def schema_problems(instance: Any, schema: dict[str, Any], prefix: str,
                    locate: Callable[[str], SourceLocation]) -> list[Problem]:
    """Every schema error as a Problem at the line of the offending key (`prefix` is the path of `instance`)."""
    validator = _validator(schema)
    if validator.is_valid(instance):  # the common case: no error tree to build
        return []
    problems = []
    for error in validator.iter_errors(instance):
        problems += _error_problems(error, prefix, locate)
    return problems


_VALIDATORS: dict[int, tuple[dict[str, Any], Any]] = {}


def _validator(schema: dict[str, Any]) -> Any:
    """One validator per schema object (its references resolved once, not per resource)."""
    cached = _VALIDATORS.get(id(schema))
    if cached is None or cached[0] is not schema:
        cached = _VALIDATORS[id(schema)] = (schema, SchemaValidator(schema))
    return cached[1]


def _join(prefix: str, parts: list[Any]) -> str:
    return ".".join([prefix] * bool(prefix) + [str(p) for p in parts])


def _error_problems(error: ValidationError, prefix: str, locate) -> list[Problem]:
    path_parts = list(error.absolute_path)
    path = _join(prefix, path_parts)
    shown = path or "document"
    schema = error.schema if isinstance(error.schema, dict) else {}
    custom, hint = schema.get("x-message"), schema.get("x-hint", "")
    value, secret = error.instance, _sensitive([prefix, *path_parts])

    def at(p: str, message: str, h: str) -> Problem:
        where = locate(p)
        return Problem(where.file, where.line, message, h)

    if error.validator == "additionalProperties":
        allowed = list(schema.get("properties", {}))
        extras = [k for k in value if k not in allowed
                  and not any(re.search(p, k) for p in schema.get("patternProperties", {}))]
        result = []
        for key in extras:
            close = _suggest(key, allowed)
            result.append(at(_join(path, [key]), f"unknown key {key!r}" + (f" in {path}" if path else ""),
                             f"did you mean {close!r}?" if close else f"allowed keys: {_listing(allowed)}"))
        return result
    if error.validator == "x-closeKeys":
        key = path_parts[-1]
        parent = _join(prefix, path_parts[:-1])
        return [at(path, f"unknown key {key!r}" + (f" in {parent}" if parent else ""),
                   f"did you mean {error.validator_value['suggestion']!r}?")]
    if error.validator == "required":
        missing = [r for r in error.validator_value if r not in value]
        return [at(path, f"{shown}: missing required key {r!r}", hint or f"add `{r}:` to {shown}") for r in missing]
    if custom:
        return [at(path, f"{shown}: {custom}", hint or "see the manifest format (docs) for this key")]
    if error.validator == "enum":
        options = error.validator_value
        label = str(path_parts[-1]) if path_parts else shown
        close = None if secret else _suggest(value, options)
        what = f"unknown {label} {value!r}" if isinstance(value, str) and not secret else f"{shown}: invalid value"
        return [at(path, what, (f"did you mean {close!r}? " if close else "") + f"use one of: {_listing(options)}")]
    if error.validator == "type":
        expected = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        return [at(path, f"{shown}: expected {' or '.join(expected)}, got {_json_type(value)}",
                   hint or f"write {shown} as {' or '.join(expected)}")]
    if error.validator in ("oneOf", "anyOf") and error.context:
        return _error_problems(best_match(error.context), prefix, locate)
    if secret:
        return [at(path, f"{shown}: invalid value ({error.validator})", hint or "fix this value")]
    return [at(path, f"{shown}: {error.message}", hint or "fix this value")]


def _locator(file: str, lines: dict[str, int], default: int) -> Callable[[str], SourceLocation]:
    def locate(path: str) -> SourceLocation:
        line = nearest_line(lines, path)
        return SourceLocation(file, default if line is None else line)

    return locate


def _resource(doc: Document) -> tuple[Resource | None, bool, list[Problem]]:
    """(resource or None, spec valid, problems) for one document."""
    if not isinstance(doc.value, dict):
        return None, False, [Problem(doc.file, doc.line, f"a manifest document must be a mapping, got "
                                     f"{_json_type(doc.value)}", "start each document with `kind:`, `name:`, `spec:`")]
    locate = _locator(doc.file, doc.lines, doc.line)
    problems = schema_problems(doc.value, envelope_schema(), "", locate)
    kind, spec = doc.value.get("kind"), doc.value.get("spec", {})
    if not isinstance(kind, str) or kind not in DECLARATIONS or not isinstance(spec, dict):
        return None, False, problems
    spec_problems = schema_problems(spec, load_schema(kind), "spec", locate)
    problems += spec_problems
    name = doc.value.get("name")
    if not isinstance(name, str) or not name:
        name = DECLARATIONS[kind].default_name(spec) if not spec_problems else None
        if not name:
            if "name" not in doc.value:
                problems.append(Problem(doc.file, doc.lines.get("kind", doc.line), f"{kind}: missing name",
                                        "add `name: ...` (the Elasticsearch name of the object)"))
            return None, False, problems
    depends_on = doc.value.get("depends_on", [])
    resource = Resource(
        kind=kind, name=name, spec=spec,
        source=SourceLocation(doc.file, doc.lines.get("kind", doc.line)),
        depends_on=[d for d in depends_on if isinstance(d, str)] if isinstance(depends_on, list) else [],
        protected=doc.value.get("protected") is True,
        lines=dict(doc.lines),
        adopt=doc.value.get("adopt") is True,
        moved_from=doc.value.get("moved_from") if isinstance(doc.value.get("moved_from"), str) else None,
    )
    return resource, not problems, problems


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components with a cycle (Tarjan), each in a deterministic order."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, []):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1 or node in graph.get(node, []):
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _cycle_path(component: list[str], graph: dict[str, list[str]]) -> list[str]:
    """One concrete cycle through the component, starting at its smallest key."""
    members, start = set(component), min(component)
    path, node = [start], start
    seen = {start}
    while True:
        nxt = next((n for n in sorted(graph[node]) if n in members and (n == start or n not in seen)), start)
        if nxt == start:
            return path + [start]
        path.append(nxt)
        seen.add(nxt)
        node = nxt


def validate_documents(documents: list[Document], *, complete: bool = True) -> tuple[list[Resource], list[Problem]]:
    """Resources from parsed documents and every problem found. With `complete=False` (some file failed to render
    or parse) explicit depends_on are not resolved: the missing resource may be in the broken file."""
    problems: list[Problem] = []
    resources: list[Resource] = []
    valid: dict[str, Resource] = {}
    first: dict[str, Resource] = {}
    for doc in documents:
        resource, ok, found = _resource(doc)
        problems += found
        if resource is None:
            continue
        if resource.key in first:
            other = first[resource.key]
            where = resource.line_of("name")  # the key that collides, not the document's kind: line
            problems.append(Problem(where.file, where.line,
                                    f"duplicate resource {resource.key} (also declared at {other.line_of('name')})",
                                    "give each resource a unique name, or remove one of the two"))
            continue
        first[resource.key] = resource
        resources.append(resource)
        if ok:
            valid[resource.key] = resource

    graph: dict[str, list[str]] = {}
    for resource in resources:
        edges = []
        for i, dep in enumerate(resource.depends_on):
            if dep in first:
                edges.append(dep)
            elif complete and "/" in dep:  # a malformed entry already has its own problem
                where = resource.line_of(f"depends_on.{i}")
                close = _suggest(dep, list(first))
                problems.append(Problem(where.file, where.line,
                                        f"depends_on {dep!r} names a resource that is not declared",
                                        f"did you mean {close!r}?" if close else
                                        "declare it in the manifests, or remove it from depends_on "
                                        f"(declared: {_listing(sorted(first)) or 'none'})"))
        if resource.key in valid:
            edges += [ref for ref in DECLARATIONS[resource.kind].references(resource) if ref in first]
        graph[resource.key] = sorted(set(edges))
        if resource.moved_from and (resource.moved_from in first or resource.moved_from == resource.key):
            where = resource.line_of("moved_from")
            problems.append(Problem(where.file, where.line,
                                    f"moved_from {resource.moved_from!r} names a resource that is still declared",
                                    "a move renames the old resource: remove its declaration (or moved_from)"))
    for component in _cycles(graph):
        cycle = _cycle_path(component, graph)
        start = first[cycle[0]]
        problems.append(Problem(start.source.file, start.source.line,
                                "dependency cycle: " + " -> ".join(f"{k} ({first[k].source})" for k in cycle),
                                "remove one of these dependencies (depends_on or a reference in the spec)"))

    from provisioning.es_validation import resource_problems  # late: its specification data loads on first use

    for resource in valid.values():
        problems += DECLARATIONS[resource.kind].validate(resource, valid)
        problems += resource_problems(resource, valid)
    # a resource with a schema error still gets the specification checks, so that every problem is reported at
    # once; a line that already has a problem keeps only the first (one mistake, one message)
    taken = {(p.file, p.line) for p in problems}
    for resource in resources:
        if resource.key not in valid:
            problems += [p for p in _spec_problems_of_invalid(resource, valid) if (p.file, p.line) not in taken]
    return resources, problems


def _spec_problems_of_invalid(resource: Resource, valid: dict[str, Resource]) -> list[Problem]:
    from provisioning.es_validation import resource_problems

    try:
        return resource_problems(resource, valid)
    except (TypeError, AttributeError, KeyError, ValueError):  # a shape the schema already refused
        return []
