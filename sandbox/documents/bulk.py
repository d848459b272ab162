"""`_bulk`: NDJSON parsing with ES's messages (BulkRequestParser) and per-item execution (always 200 + item errors)."""

from __future__ import annotations

import json
import time
from typing import Any

from sandbox.documents import writes
from sandbox.errors import ActionRequestValidation, EsError, IllegalArgument
from sandbox.http import EsRequest, xcontent_token
from sandbox.search import view
from sandbox.security import authz

ACTIONS = ("create", "delete", "index", "update")
_PARAMS = {"_index", "_id", "routing", "require_alias", "op_type", "pipeline", "if_seq_no", "if_primary_term",
           "version", "version_type", "retry_on_conflict", "_source", "dynamic_templates", "require_data_stream",
           "list_executed_pipelines"}


def _malformed(line: int, detail: str) -> IllegalArgument:
    return IllegalArgument(f"Malformed action/metadata line [{line}], {detail}")


def parse(data: bytes) -> list[tuple[int, str, dict[str, Any], Any]]:
    """[(line, action, metadata, source-or-None)]; structural problems reject the whole request (400)."""
    if data.strip() and not data.endswith(b"\n"):
        # ES: BulkRequestParser#findNextMarker
        raise IllegalArgument("The bulk request must be terminated by a newline [\\n]")
    lines = data.decode("utf-8").split("\n")
    ops = []
    i = 0
    while i < len(lines):
        number, text = i + 1, lines[i]
        i += 1
        if not text.strip():
            continue
        try:
            action_line = json.loads(text)
        except ValueError as exc:
            raise EsError(f"[{number}:1] Unexpected character: {exc}", status=400,
                          type="x_content_parse_exception") from exc
        if not isinstance(action_line, dict):
            raise _malformed(number, f"expected START_OBJECT or END_OBJECT but found [{xcontent_token(action_line)}]")
        if not action_line:
            raise _malformed(number, "expected FIELD_NAME but found [END_OBJECT]")
        action = next(iter(action_line))
        if action not in ACTIONS:
            raise _malformed(number, f"expected one of [create, delete, index, update] but found [{action}]")
        meta = action_line[action]
        if not isinstance(meta, dict):
            raise _malformed(number, f"expected START_OBJECT but found [{xcontent_token(meta)}]")
        if len(action_line) > 1:
            raise _malformed(number, "expected END_OBJECT but found [FIELD_NAME]")
        for key, value in meta.items():
            if key not in _PARAMS:
                raise IllegalArgument(f"Action/metadata line [{number}] contains an unknown parameter [{key}]")
            if isinstance(value, (dict, list)) and key not in ("_source", "dynamic_templates"):
                raise IllegalArgument(f"Malformed action/metadata line [{number}], expected a simple value for "
                                      f"field [{key}] but found [{xcontent_token(value)}]")
        if meta.get("op_type") == "create" and action == "index":
            action = "create"
        source = None
        if action != "delete":
            while i < len(lines) and not lines[i].strip():
                i += 1
            if i >= len(lines):
                raise ActionRequestValidation("no requests added") if not ops else \
                    IllegalArgument(f"Malformed action/metadata line [{number}], the source line is missing")
            try:
                source = json.loads(lines[i])
            except ValueError as exc:
                raise EsError(f"[{i + 1}:1] failed to parse source: {exc}", status=400,
                              type="x_content_parse_exception") from exc
            i += 1
        ops.append((number, action, meta, source))
    if not ops:
        raise ActionRequestValidation("no requests added")
    return ops


def execute(sb: Any, req: EsRequest, path_index: str | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    ops = parse(req.data)
    missing = [n for n, _, meta, _ in ops if not meta.get("_index") and not path_index]
    if missing:
        raise ActionRequestValidation(*["index is missing"] * len(missing))
    refresh = req.args.get("refresh")
    url_require_alias = req.flag("require_alias")
    url_pipeline = req.args.get("pipeline")
    url_source = writes.url_source_value(req.args)
    items = []
    touched: dict[str, Any] = {}
    for _, action, meta, source in ops:
        name = meta.get("_index") or path_index
        doc_id = meta.get("_id")
        doc_id = None if doc_id is None else str(doc_id)
        require_alias = bool(meta.get("require_alias", url_require_alias))
        try:
            if action in ("delete", "update") and doc_id is None:
                raise ActionRequestValidation("id is missing")
            authz.bulk_item(sb, req.subject, action, name)  # ES authorises each item: a 403 stays in its item
            # ES TransportBulkAction: every write but a delete auto-creates its missing index
            index = writes.target_index(sb, name, require_alias=require_alias, auto_create=action != "delete")
            if action in ("index", "create"):
                writes.check_pipelines(sb, index, meta.get("pipeline", url_pipeline))
            seq = meta.get("if_seq_no"), meta.get("if_primary_term")
            if action == "delete":
                body, status = writes.delete_doc(index, doc_id, *seq)
            elif action == "update":
                body, status = writes.update_doc(index, doc_id, source, *seq)
                wanted = source.get("_source", meta.get("_source", url_source)) if isinstance(source, dict) \
                    else None
                if wanted is not None:
                    writes.add_update_get(index, body, wanted)
            else:
                body, status = writes.index_doc(index, doc_id, source, action, *seq)
            touched[index.name] = index
            body["status"] = status
            items.append({action: body})
        except EsError as error:
            items.append({action: {"_index": getattr(error, "extra", {}).get("index", name),
                                   "_id": doc_id, "status": error.status, "error": error.cause_dict()}})
    if refresh in ("", "true", "wait_for"):
        for index in touched.values():
            view.refresh(index)
        if refresh != "wait_for":
            for item in items:
                body = next(iter(item.values()))
                if "error" not in body:
                    body["forced_refresh"] = True
    took = int((time.perf_counter() - started) * 1000)
    return {"errors": any("error" in next(iter(item.values())) for item in items), "took": took, "items": items}
