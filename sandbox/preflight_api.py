"""Read-only preflight APIs: `POST /_index_template/_simulate[/<name>]` (indices.simulate_template) and
`GET|POST [/<index>]/_validate/query` (indices.validate_query). Neither changes any state (writes=False).

Simulate: ES TransportSimulateTemplateAction validates the body as PUT _index_template does
(MetadataIndexTemplateService.validateIndexTemplateV2, which also builds a temporary index service, so analysis
errors are refused too), refuses a same-priority overlap like a PUT, and answers the resolved template
({settings (nested, string values), mappings, aliases}) and `overlapping` (every other template whose patterns
overlap, whatever its priority), as in rest-api-spec/test/indices.simulate_template/10_basic.yml.

Validate query: ES RestValidateQueryAction parses the body in the REST layer; a parse failure is a 200
{"valid": false} with, when explain=true, `error` = ParsingException#getDetailedMessage()
(rest-api-spec/test/indices.validate_query/10_basic.yml); otherwise each index checks the query.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from sandbox.errors import EsError, IllegalArgument
from sandbox.http import EsRequest, Route
from sandbox.indices import settings as settings_rules
from sandbox.indices import templates as template_rules
from sandbox.indices.names import patterns_overlap

SIMULATED_NAME = "simulate_template"  # ES: the name used when the body has no template name


def _templates(sb: Any) -> dict[str, dict[str, Any]]:
    return sb.cluster.indices.templates


def simulate_template(sb: Any, req: EsRequest, name: str | None = None) -> dict[str, Any]:
    templates = _templates(sb)
    body = req.json(None)
    if body is None:
        if name is None or name not in templates:
            raise EsError(f"unable to simulate template [{name}] that does not exist", status=400,
                          type="illegal_argument_exception") if name else \
                IllegalArgument("a template name to simulate, or a template body, is required")
        stored, own = templates[name], name
    else:
        own = name or SIMULATED_NAME
        stored = template_rules.parse_template(own, body)  # exactly what PUT _index_template refuses
        _validate_like_index_creation(own, stored)
        template_rules.check_overlaps(own, stored, templates)
    resolved = template_rules.render(stored).get("template") or {}
    overlapping = [{"name": other, "index_patterns": list(t["index_patterns"])}
                   for other, t in sorted(templates.items())
                   if other != own and any(patterns_overlap(a, b) for a in stored["index_patterns"]
                                           for b in t["index_patterns"])]
    return {"template": {"settings": resolved.get("settings", {}), "mappings": resolved.get("mappings", {}),
                         "aliases": resolved.get("aliases", {})}, "overlapping": overlapping}


def _validate_like_index_creation(name: str, stored: dict[str, Any]) -> None:
    """The create-time settings rules (analysis components included) the sandbox applies to PUT /<index>; ES's
    validateIndexTemplateV2 wraps such failures as "composable template [name] template after composition is
    invalid"."""
    flat = (stored.get("template") or {}).get("settings") or {}
    try:
        settings_rules.validate_create(dict(flat))
    except EsError as error:
        raise IllegalArgument(f"composable template [{name}] template after composition is invalid",
                              caused_by=error) from error


# ---- validate query ------------------------------------------------------------------------------------------
def _detailed(error: EsError, query: Any) -> str:
    """ParsingException#getDetailedMessage: `toString()`, then `; ` and the cause for an unknown query name."""
    from sandbox.errors import java_class as _java_class

    def java_class(es_type: str) -> str:
        return "org.elasticsearch.common.ParsingException" if es_type == "parsing_exception" else _java_class(es_type)

    text = f"{java_class(error.type)}: {error.reason}"
    if error.type == "parsing_exception" and error.reason.startswith("unknown query ["):
        name = error.reason[len("unknown query ["):].split("]")[0]
        from sandbox.search.queries import Compiler

        known = sorted(m[2:] for m in dir(Compiler) if m.startswith("q_"))
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.7)
        suggestion = f" did you mean [{close[0]}]?" if close else ""
        text = (f"{java_class(error.type)}: unknown query [{name}]{suggestion}; "
                f"org.elasticsearch.xcontent.NamedObjectNotFoundException: [1:1] unknown field [{name}]")
    return text


def _explanation(query: Any) -> str:
    if query is None or (isinstance(query, dict) and list(query) == ["match_all"]):
        return "*:*"
    return json.dumps(query, sort_keys=True, separators=(",", ":"))  # not Lucene's syntax (see module doc)


def validate_query(sb: Any, req: EsRequest, index: str | None = None) -> dict[str, Any]:
    from sandbox.search import view
    from sandbox.search.execute import resolve_indices, shards_section
    from sandbox.search.queries import Compiler

    explain = req.flag("explain")
    body = req.json(None) or {}
    query = None
    try:
        if not isinstance(body, dict):
            raise EsError("request body must be an object", status=400, type="parsing_exception")
        for key in body:
            if key != "query":
                raise EsError(f"request does not support [{key}]", status=400, type="parsing_exception")
        query = body.get("query")
        if "q" in req.args:
            query = {"query_string": {"query": req.args["q"]}}
    except EsError as error:
        return {"valid": False, **({"error": _detailed(error, query)} if explain else {})}
    indices = resolve_indices(sb, index, {})
    explanations, valid = [], True
    for target in indices:
        built = view.built(target)
        compiler = Compiler(built, view.state(target).visible, getattr(target, "settings", None))
        try:
            compiler.compile(query) if query is not None else None
        except EsError as error:
            if error.type == "parsing_exception":  # parsed in ES's REST layer: one answer for the request
                return {"valid": False, **({"error": _detailed(error, query)} if explain else {})}
            valid = False
            explanations.append({"index": target.name, "valid": False,
                                 "error": f"[{target.name}/{target.uuid}] {_detailed(error, query)}"})
            continue
        explanations.append({"index": target.name, "valid": True, "explanation": _explanation(query)})
    out: dict[str, Any] = {"_shards": shards_section(indices), "valid": valid}
    if explain or not valid:
        out["explanations"] = explanations if explain else [e for e in explanations if not e["valid"]]
    return out


ROUTES = [
    Route(("POST",), "/_index_template/_simulate", simulate_template, writes=False, api="indices.simulate_template"),
    Route(("POST",), "/_index_template/_simulate/<name>", simulate_template, writes=False,
          api="indices.simulate_template"),
    Route(("GET", "POST"), "/_validate/query", validate_query, writes=False, api="indices.validate_query"),
    Route(("GET", "POST"), "/<index>/_validate/query", validate_query, writes=False, api="indices.validate_query"),
]
