"""Ingest pipeline definitions (stored only; the sandbox does not run processors). ES YAML test ingest/10_basic.yml."""

from __future__ import annotations

import copy
from typing import Any

from sandbox.errors import IllegalArgument, ParseError

TOP_KEYS = {"description", "processors", "on_failure", "version", "_meta", "deprecated", "field_access_pattern"}
# ES ingest-common, ingest-geoip, ingest-user-agent, ingest-attachment, x-pack (inference, enrich, ...) processors.
PROCESSORS = {
    "append", "attachment", "bytes", "circle", "community_id", "convert", "csv", "date", "date_index_name",
    "dissect", "dot_expander", "drop", "enrich", "fail", "fingerprint", "foreach", "geo_grid", "geoip", "grok",
    "gsub", "html_strip", "inference", "ip_location", "join", "json", "kv", "lowercase", "network_direction",
    "pipeline", "redact", "registered_domain", "remove", "rename", "reroute", "script", "set",
    "set_security_user", "sort", "split", "terminate", "trim", "uppercase", "urldecode", "uri_parts",
    "user_agent"
}


def _check_processors(pipeline_id: str, processors: Any, field: str) -> None:
    if not isinstance(processors, list):
        raise ParseError(f"[{field}] property isn't a list, but of type [{type(processors).__name__}]",
                         property_name=field)
    for entry in processors:
        if not isinstance(entry, dict):
            raise ParseError(f"[{field}] property isn't a list of objects")
        if len(entry) > 1:
            # ES ConfigurationUtils.readProcessorConfigs
            raise IllegalArgument(f"[{field}] contains nested objects but should be a list of single-entry objects")
    for entry in processors:
        for processor_type, config in entry.items():
            if processor_type not in PROCESSORS:
                raise ParseError(f"No processor type exists with name [{processor_type}]",
                                 processor_type=processor_type)
            if isinstance(config, dict) and "on_failure" in config:
                _check_processors(pipeline_id, config["on_failure"], "on_failure")


def parse_pipeline(pipeline_id: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ParseError("request body is required")
    unknown = sorted(k for k in body if k not in TOP_KEYS)
    if unknown:
        # ES Pipeline.create -> ConfigurationUtils: leftover keys are a parse error
        raise ParseError(f"pipeline [{pipeline_id}] doesn't support one or more provided configuration parameters "
                         f"{unknown}")
    if "processors" not in body:
        raise ParseError("[processors] required property is missing", property_name="processors")
    _check_processors(pipeline_id, body["processors"], "processors")
    if "on_failure" in body:
        _check_processors(pipeline_id, body["on_failure"], "on_failure")
        if not body["on_failure"]:
            raise ParseError("pipeline [" + pipeline_id + "] cannot have an empty on-failure option defined")
    version = body.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise ParseError(f"Failed to parse [version] with value [{version}]")
    return copy.deepcopy(body)


def referenced_models(body: dict[str, Any]) -> list[str]:
    """model_id values of `inference` processors, including nested on_failure / foreach ones."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if key == "inference" and isinstance(inner, dict) and "model_id" in inner:
                    found.append(inner["model_id"])
                walk(inner)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(body.get("processors", []))
    walk(body.get("on_failure", []))
    return found
