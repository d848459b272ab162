"""Server-side preflight: ask Elasticsearch itself, read-only, whether it would accept what the manifests declare,
before the first write. For the planner (it owns the client and knows which indices exist).

- every declared index body: `POST _index_template/_simulate` (indices.simulate_template) with the index's settings,
  mappings and aliases as a template for a pattern no index can match, at a priority no other template uses, so it
  is validated as ES validates an index (temporary index service: settings, analysis, mappings) and nothing is
  stored. One request per declared index (all of them: new or changed is the planner's business);
- every check whose index exists in the cluster: `_validate/query?explain=true` for each query of its search body
  (the top-level `query` and `post_filter`, the `query` and `filter` of every standard retriever, the `filter` of
  the others): one request per query.

Refusals become Problems at the manifest line of the offending key when ES's message names it. Requests refused for
other reasons (privileges: simulate needs manage_index_templates; unreachable) are not problems of the manifests:
they are skipped, the regular plan/apply path reports them.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

from provisioning.errors import Problem, api_error
from provisioning.model import Resource, SourceLocation

PREFLIGHT_PATTERN = "es-stack-preflight-{name}-never-created"
PRIORITY_BASE = 2**62  # far above any real template's priority (a same-priority overlap would itself be refused)


def _simulate_body(resource: Resource) -> dict[str, Any]:
    spec = resource.spec
    template = {k: spec[k] for k in ("settings", "mappings", "aliases") if spec.get(k)}
    return {"index_patterns": [PREFLIGHT_PATTERN.format(name=resource.name)],
            "priority": PRIORITY_BASE + zlib.crc32(resource.name.encode()), "template": template}


def _reason(body: Any) -> tuple[str, str]:
    """(type, reason) of ES's deepest cause: the most specific message."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", str(error or "")
    while isinstance(error.get("caused_by"), dict):
        error = error["caused_by"]
    return str(error.get("type", "")), str(error.get("reason", ""))


def _leaves(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield f"{path}.{key}", key
            yield from _leaves(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _leaves(item, f"{path}.{i}")
    else:
        yield path, value


def locate(resource: Resource, reason: str, base: str) -> SourceLocation:
    """The manifest line of the first bracketed name in ES's message found under `base` as a key or a value
    (`unknown setting [index.foo]`, `analyzer [x] has not been configured`, `mapper [plot] ...`), else `base`."""
    tokens = re.findall(r"\[([^\[\]]+)\]", reason)
    root: Any = resource.spec
    for part in base.split(".")[1:]:
        root = root.get(part) if isinstance(root, dict) else None
    candidates = list(_leaves(root, base))
    for token in tokens:
        bare = token.removeprefix("index.")
        for path, value in candidates:
            last = path.rpartition(".")[2]
            if (isinstance(value, str) and value == token) or last == token or path.endswith(f".{bare}") \
                    or path.endswith(f".properties.{token}"):
                return resource.line_of(path)
    return resource.line_of(base)


def _queries(request: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(manifest path, query) of every query in a search body, retrievers included."""
    for key in ("query", "post_filter"):
        if isinstance(request.get(key), dict):
            yield f"spec.request.{key}", request[key]

    def retriever(body: Any, path: str) -> Iterator[tuple[str, Any]]:
        if not isinstance(body, dict):
            return
        for name, inner in body.items():
            if not isinstance(inner, dict):
                continue
            here = f"{path}.{name}"
            if isinstance(inner.get("query"), dict):
                yield f"{here}.query", inner["query"]
            filters = inner.get("filter")
            for i, item in enumerate(filters if isinstance(filters, list) else [filters] if filters else []):
                if isinstance(item, dict):
                    yield (f"{here}.filter.{i}" if isinstance(filters, list) else f"{here}.filter"), item
            if isinstance(inner.get("retriever"), dict):
                yield from retriever(inner["retriever"], f"{here}.retriever")
            for i, entry in enumerate(inner.get("retrievers") or []):
                # rrf/linear entries: a retriever, or {retriever: ..., weight: ...}
                if isinstance(entry, dict) and isinstance(entry.get("retriever"), dict):
                    yield from retriever(entry["retriever"], f"{here}.retrievers.{i}.retriever")
                else:
                    yield from retriever(entry, f"{here}.retrievers.{i}")

    yield from retriever(request.get("retriever"), "spec.request.retriever")


def server_preflight(client: Any, resources: Iterable[Resource], live_index_names: Iterable[str]) -> list[Problem]:
    """Problems Elasticsearch itself reports for the declared index bodies and check queries. Read-only."""
    from elasticsearch import ApiError

    live = set(live_index_names)
    problems: list[Problem] = []
    for resource in resources:
        if resource.kind == "index":
            try:
                client.indices.simulate_template(**_simulate_body(resource))
            except ApiError as exc:
                if exc.meta.status != 400:  # not a verdict on the body (e.g. 403: the key lacks the privilege)
                    raise api_error(exc, resource=resource.key, location=str(resource.source),
                                    doing="checking the index body (POST _index_template/_simulate)") from exc
                es_type, reason = _reason(exc.body)
                base = "spec.mappings" if "mapp" in f"{es_type} {reason}".lower() else "spec.settings"
                where = locate(resource, reason, base if resource.spec.get(base.split(".")[1]) else "spec")
                problems.append(Problem(where.file, where.line, f"{resource.key}: Elasticsearch refuses this index: "
                                        f"{reason} ({es_type})", "fix the setting or mapping named in the message"))
        elif resource.kind == "check" and resource.spec.get("index") in live:
            request = resource.spec.get("request") or {}
            for path, query in _queries(request if isinstance(request, dict) else {}):
                try:
                    answer = client.indices.validate_query(index=resource.spec["index"], query=query,
                                                           explain=True).body
                except ApiError:
                    continue
                if answer.get("valid") is False:
                    errors = [answer.get("error")] + [e.get("error") for e in answer.get("explanations") or []
                                                      if not e.get("valid")]
                    reason = next((e for e in errors if e), "invalid query")
                    where = locate(resource, reason, path)
                    problems.append(Problem(where.file, where.line, f"{resource.key}: Elasticsearch refuses this "
                                            f"query on {resource.spec['index']}: {reason}",
                                            "fix the query named in the message"))
    return problems
