"""Routes for composable index templates (§1.9) and ingest pipelines (§1.10)."""

from __future__ import annotations

from typing import Any

from sandbox.errors import EsError, IllegalArgument, ResourceNotFound
from sandbox.http import EsRequest, Reply, Route
from sandbox.indices import templates as template_rules
from sandbox.indices.names import glob_match, is_wildcard
from sandbox.indices.pipelines import parse_pipeline
from sandbox.indices.store import IndexStore


class IndexTemplateMissing(EsError):
    status, type = 404, "index_template_missing_exception"


def _store(sb: Any) -> IndexStore:
    return sb.cluster.indices


def _select(names: list[str], patterns: list[str]) -> tuple[list[str], list[str]]:
    """(matching names, concrete patterns that matched nothing)."""
    selected, missing = [], []
    for pattern in patterns:
        hits = [n for n in names if n == pattern or (is_wildcard(pattern) and glob_match(pattern, n))]
        if not hits and not is_wildcard(pattern):
            missing.append(pattern)
        selected += [h for h in hits if h not in selected]
    return selected, missing


# ---- index templates ----------------------------------------------------------------------------------------
def put_template(sb: Any, req: EsRequest, name: str) -> dict:
    store = _store(sb)
    if req.flag("create") and name in store.templates:
        raise IllegalArgument(f"index template [{name}] already exists")
    stored = template_rules.parse_template(name, req.json(None))
    template_rules.check_overlaps(name, stored, store.templates)
    store.templates[name] = stored
    return {"acknowledged": True}


def get_templates(sb: Any, req: EsRequest, name: str | None = None) -> Any:
    store = _store(sb)
    if name is not None and "," in name:
        # ES GetComposableIndexTemplateAction.Request takes a single name (wildcards allowed)
        raise IllegalArgument(f"invalid index template name [{name}]: must not contain ','")
    if name is None or name in ("*", "_all"):
        names = sorted(store.templates)
    elif is_wildcard(name):
        names = sorted(n for n in store.templates if glob_match(name, n))
        if not names:  # ES: 404 with an empty list and no error
            return Reply({"index_templates": []}, 404)
    elif name in store.templates:
        names = [name]
    else:
        raise ResourceNotFound(f"index template matching [{name}] not found")
    return {"index_templates": [{"name": n, "index_template": template_rules.render(store.templates[n])}
                                for n in names]}


def exists_template(sb: Any, req: EsRequest, name: str) -> Reply:
    names, missing = _select(list(_store(sb).templates), [n for n in name.split(",") if n])
    return Reply(None, 200 if names and not missing else 404)


def delete_template(sb: Any, req: EsRequest, name: str) -> dict:
    store = _store(sb)
    names, missing = _select(list(store.templates), [n for n in name.split(",") if n])
    if missing:  # ES MetadataIndexTemplateService: concrete names must exist, wildcards may match nothing
        raise IndexTemplateMissing(f"index_template [{','.join(missing)}] missing")
    for n in names:
        del store.templates[n]
    return {"acknowledged": True}


# ---- ingest pipelines ---------------------------------------------------------------------------------------
def put_pipeline(sb: Any, req: EsRequest, id: str) -> dict:
    body = parse_pipeline(id, req.json(None))
    store = _store(sb)
    expected = req.int_arg("if_version")
    if expected is not None:
        current = store.pipelines.get(id, {}).get("version")
        if current != expected:
            raise IllegalArgument(f"version conflict, required version [{expected}] for pipeline [{id}] but "
                                  f"current version is [{current}]")
    store.pipelines[id] = body
    return {"acknowledged": True}


def get_pipeline(sb: Any, req: EsRequest, id: str | None = None) -> Any:
    store = _store(sb)
    patterns = [p for p in (id or "*").split(",") if p]
    names, missing = _select(sorted(store.pipelines), patterns)
    if not names:
        return Reply({}, 404)  # ES GetPipelineResponse: nothing found is a 404 with an empty body
    summary = req.flag("summary")
    return {n: ({} if summary else store.pipelines[n]) for n in names}


def delete_pipeline(sb: Any, req: EsRequest, id: str) -> dict:
    store = _store(sb)
    names, missing = _select(sorted(store.pipelines), [p for p in id.split(",") if p])
    if missing:  # ES IngestService: a wildcard that matches nothing is not an error
        raise ResourceNotFound(f"pipeline [{','.join(missing)}] is missing")
    for n in names:
        del store.pipelines[n]
    return {"acknowledged": True}


ROUTES: list[Route] = [
    Route(("PUT", "POST"), "/_index_template/<name>", put_template, api="indices.put_index_template"),
    Route(("GET",), "/_index_template", get_templates, api="indices.get_index_template"),
    Route(("GET",), "/_index_template/<name>", get_templates, api="indices.get_index_template"),
    Route(("HEAD",), "/_index_template/<name>", exists_template, api="indices.exists_index_template"),
    Route(("DELETE",), "/_index_template/<name>", delete_template, api="indices.delete_index_template"),
    Route(("PUT",), "/_ingest/pipeline/<id>", put_pipeline, api="ingest.put_pipeline"),
    Route(("GET",), "/_ingest/pipeline", get_pipeline, api="ingest.get_pipeline"),
    Route(("GET",), "/_ingest/pipeline/<id>", get_pipeline, api="ingest.get_pipeline"),
    Route(("DELETE",), "/_ingest/pipeline/<id>", delete_pipeline, api="ingest.delete_pipeline"),
]
