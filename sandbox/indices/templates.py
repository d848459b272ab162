"""Composable index templates (PUT/GET/DELETE /_index_template) and their application on index creation."""

from __future__ import annotations

import copy
from typing import Any

from sandbox.errors import ActionRequestValidation, EsError, IllegalArgument, ParseError
from sandbox.indices import mappings as mapping_rules
from sandbox.indices import settings as settings_rules
from sandbox.indices.aliases import parse_alias
from sandbox.indices.analysis import custom_analyzers
from sandbox.indices.names import glob_match, patterns_overlap, validate_alias_name

TOP_KEYS = {"index_patterns", "template", "composed_of", "priority", "version", "_meta", "data_stream",
            "allow_auto_create", "ignore_missing_component_templates", "deprecated"}
TEMPLATE_KEYS = {"settings", "mappings", "aliases", "lifecycle", "data_stream_options"}


class InvalidIndexTemplate(EsError):
    status, type = 400, "invalid_index_template_exception"


def parse_template(name: str, body: Any) -> dict[str, Any]:
    """Validate a template body; return the stored form (settings flat, patterns as a list)."""
    if not isinstance(body, dict):
        raise ParseError("request body is required")
    unknown = [k for k in body if k not in TOP_KEYS]
    if unknown:
        raise EsError(f"[index_template] unknown field [{unknown[0]}]", status=400, type="x_content_parse_exception")
    patterns = body.get("index_patterns")
    if isinstance(patterns, str):
        patterns = [patterns]
    if not patterns:
        raise ActionRequestValidation("index patterns are missing")
    if not all(isinstance(p, str) for p in patterns):
        raise EsError("[index_template] failed to parse field [index_patterns]", status=400,
                      type="x_content_parse_exception")
    if body.get("composed_of"):
        # The sandbox has no component templates (none can exist), so ES's own existence check always fails.
        missing = body["composed_of"]
        raise InvalidIndexTemplate(f"index_template [{name}] invalid, cause [index template [{name}] specifies "
                                   f"component templates {missing} that do not exist]")
    if body.get("data_stream") is not None:
        raise EsError("the sandbox does not support data streams (index template with [data_stream])",
                      status=400, type="sandbox_unsupported_exception")
    priority = body.get("priority")
    if priority is not None and (not isinstance(priority, int) or isinstance(priority, bool) or priority < 0):
        raise ActionRequestValidation("index template priority must be >= 0")
    template = body.get("template") or {}
    if not isinstance(template, dict):
        raise EsError("[index_template] failed to parse field [template]", status=400,
                      type="x_content_parse_exception")
    unknown = [k for k in template if k not in TEMPLATE_KEYS]
    if unknown:
        raise EsError(f"[template] unknown field [{unknown[0]}]", status=400, type="x_content_parse_exception")
    flat = {k: v for k, v in settings_rules.normalise(template.get("settings")).items() if v is not None}
    try:
        settings_rules.validate_known(flat, creating=True)
        mappings = mapping_rules.parse_mapping(mapping_rules.strip_doc_wrapper(template.get("mappings")),
                                               custom_analyzers(flat))
    except EsError as error:
        raise InvalidIndexTemplate(f"index_template [{name}] invalid, cause [{error.reason}]",
                                   caused_by=error) from error
    aliases = {}
    for alias, props in (template.get("aliases") or {}).items():
        validate_alias_name(alias)
        aliases[alias] = parse_alias(alias, props)
    stored: dict[str, Any] = {"index_patterns": list(patterns)}
    out_template: dict[str, Any] = {}
    if flat:
        out_template["settings"] = flat
    if "mappings" in template:
        out_template["mappings"] = mappings
    if "aliases" in template:
        out_template["aliases"] = aliases
    if "lifecycle" in template:
        out_template["lifecycle"] = template["lifecycle"]
    if out_template or "template" in body:
        stored["template"] = out_template
    stored["composed_of"] = []
    for key in ("priority", "version", "_meta", "allow_auto_create", "ignore_missing_component_templates",
                "deprecated"):
        if key in body:
            stored[key] = copy.deepcopy(body[key])
    return stored


def check_overlaps(name: str, stored: dict[str, Any], templates: dict[str, dict[str, Any]]) -> None:
    """ES MetadataIndexTemplateService.validateV2TemplateRequest: equal priority + overlapping patterns = 400."""
    priority = stored.get("priority", 0)
    clashes = {}
    for other_name, other in templates.items():
        if other_name == name or other.get("priority", 0) != priority:
            continue
        if any(patterns_overlap(a, b) for a in stored["index_patterns"] for b in other["index_patterns"]):
            clashes[other_name] = other["index_patterns"]
    if clashes:
        listed = ", ".join(f"{n} => [{', '.join(p)}]" for n, p in sorted(clashes.items()))
        raise IllegalArgument(
            f"index template [{name}] has index patterns [{', '.join(stored['index_patterns'])}] matching patterns "
            f"from existing templates [{', '.join(sorted(clashes))}] with patterns ({listed}) that have the same "
            f"priority [{priority}], multiple index templates may not match during index creation, please use a "
            f"different priority")


def render(stored: dict[str, Any]) -> dict[str, Any]:
    """GET form: settings nested under `index` with string values; everything else as stored."""
    out = copy.deepcopy(stored)
    template = out.get("template")
    if template is not None and "settings" in template:
        template["settings"] = settings_rules.nest(template["settings"])
    return out


def find_template(index: str, templates: dict[str, dict[str, Any]],
                  hidden: bool = False) -> tuple[str, dict[str, Any]] | None:
    """The highest-priority template whose patterns match (ES MetadataIndexTemplateService.findV2Template).

    Hidden indices ignore templates whose pattern is the global `*`."""
    matching = [(n, t) for n, t in templates.items()
                if any(glob_match(p, index) and not (hidden and p == "*") for p in t["index_patterns"])]
    if not matching:
        return None
    return max(matching, key=lambda item: item[1].get("priority", 0))
