"""One document write (index / create / update / delete) with ES's result shape; shared by the single-document
APIs, `_bulk` and `_reindex`. Every write goes through Index.update_mapping_for (dynamic mapping) and is recorded
for search visibility (sandbox.search.view: searchable only after a refresh)."""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import threading
import time
from typing import Any

from sandbox.errors import EsError, IllegalArgument, VersionConflict
from sandbox.search import view
from sandbox.search.fields import BOOLEAN, NUMBER, field_infos

_id_lock = threading.Lock()
_last_ms = 0
_seq = 0


def auto_id() -> str:
    """A 20-character url-safe base64 id like ES's time-based UUIDs (15 bytes: time, sequence, randomness)."""
    global _last_ms, _seq
    with _id_lock:
        now = int(time.time() * 1000)
        _seq = _seq + 1 if now == _last_ms else 0
        _last_ms = now
        raw = now.to_bytes(6, "big") + (_seq & 0xFFFFFF).to_bytes(3, "big") + os.urandom(6)
    return base64.urlsafe_b64encode(raw).decode()


def shards_info(index: Any) -> dict[str, int]:
    # The stand-in reports every shard copy assigned (cluster health is green, see cluster_api.health), so all
    # copies of the one primary succeed. (A real single-node cluster answers successful: 1 of total: 2.)
    try:
        replicas = int((index.settings or {}).get("index.number_of_replicas", 1))
    except (TypeError, ValueError):
        replicas = 1
    return {"total": 1 + replicas, "successful": 1 + replicas, "failed": 0}


def target_index(sb: Any, name: str, *, require_alias: bool = False, auto_create: bool = True) -> Any:
    """The concrete index a write to `name` goes to (alias write index, or an auto-created index)."""
    # the indices area raises ES's errors: require_alias on a non-alias (404), alias without write index (400),
    # closed index (400), invalid name for an auto-created index (400)
    index = sb.cluster.indices.resolve_write_index(name, auto_create=auto_create, require_alias=require_alias)
    check_write_block(index)
    return index


def check_write_block(index: Any) -> None:
    """ES ClusterBlockException (403) for index.blocks.write / read_only."""
    settings = index.settings or {}
    for key, block in (("index.blocks.read_only", "FORBIDDEN/5/index read-only (api)"),
                       ("index.blocks.write", "FORBIDDEN/8/index write (api)")):
        if str(settings.get(key, "false")).lower() == "true":
            raise EsError(f"index [{index.name}] blocked by: [{block}];", status=403, type="cluster_block_exception")


def _conflict(index: Any, doc_id: str, reason: str) -> VersionConflict:
    return VersionConflict(f"[{doc_id}]: {reason}", index_uuid=index.uuid, shard="0", index=index.name)


def check_if_seq_no(index: Any, doc_id: str, if_seq_no: int | None, if_primary_term: int | None) -> None:
    if if_seq_no is None and if_primary_term is None:
        return
    current = index.docs.get(doc_id)
    if current is None:
        raise _conflict(index, doc_id, f"required seqNo [{if_seq_no}], primary term [{if_primary_term}] but no "
                                       "document was found")
    if current.seq_no != if_seq_no or current.primary_term != if_primary_term:
        raise _conflict(index, doc_id, f"version conflict, required seqNo [{if_seq_no}], primary term "
                                       f"[{if_primary_term}]. current document has seqNo [{current.seq_no}] "
                                       f"and primary term [{current.primary_term}]")


# ES metadata fields: not allowed inside a document's source (DocumentParser)
_METADATA_FIELDS = {"_id", "_index", "_source", "_routing", "_version", "_seq_no", "_primary_term", "_ignored",
                    "_field_names", "_tier", "_doc_count", "_nested_path", "_data_stream_timestamp", "_ignored_source"}


class _DocumentParsingError(EsError):
    """DocumentParsingException wrapping a plain Java exception: ES's guessRootCauses stops at the last
    ElasticsearchException, so root_cause is this error itself, not its cause."""

    status, type = 400, "document_parsing_exception"

    def root_cause(self) -> EsError:
        return self


def _parse_failure(field: str, es_type: str, doc_id: str, value: Any, cause: EsError, column: int) -> EsError:
    # ES FieldMapper.parse: DocumentParsingException(parser.getTokenLocation(), ...) -> "[line:column] ..."
    preview = json.dumps(value) if isinstance(value, bool) else value
    return _DocumentParsingError(f"[1:{column}] failed to parse field [{field}] of type [{es_type}] in document with "
                                 f"id '{doc_id}'. Preview of field's value: '{preview}'", caused_by=cause)


def _compact_len(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def _leaves(node: Any, path: str, start: int, out: list[tuple[str, Any, int]]) -> None:
    """Scalar values in document order with the 1-based byte column where each starts, as Jackson reports
    token locations for the compact JSON the Python client sends (elastic_transport JsonSerializer)."""
    if isinstance(node, dict):
        pos = start + 1
        for i, (key, value) in enumerate(node.items()):
            pos += (1 if i else 0) + _compact_len(key) + 1
            _leaves(value, f"{path}.{key}" if path else str(key), pos, out)
            pos += _compact_len(value)
    elif isinstance(node, list):
        pos = start + 1
        for i, item in enumerate(node):
            pos += 1 if i else 0
            _leaves(item, path, pos, out)
            pos += _compact_len(item)
    elif node is not None:
        out.append((path, node, start + 1))


# Java's Double.parseDouble / Float.parseFloat (integer, short, byte and the floating types) and BigDecimal, the
# fallback of Numbers.toLong (long, unsigned_long) [ES AbstractXContentParser.intValue/longValue]
_JAVA_DOUBLE = re.compile(r"\s*[+-]?(NaN|Infinity|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[fFdD]?)\s*")
_BIG_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_LONG_TYPES = ("long", "unsigned_long")


def _number_failure(es_type: str, value: Any) -> EsError | None:
    """The cause ES's number parsing throws for a value, or None when the value parses."""
    if isinstance(value, bool):
        return IllegalArgument(f'For input string: "{json.dumps(value)}"')
    if isinstance(value, (int, float)):
        return None
    text = str(value)
    if text == "":
        return None  # NumberFieldMapper: an empty string with coerce (the default) is indexed as null
    if es_type in _LONG_TYPES:
        # Numbers.toLong rethrows BigDecimal's NumberFormatException as IllegalArgumentException
        return None if _BIG_DECIMAL.fullmatch(text) else IllegalArgument(f'For input string: "{text}"')
    if _JAVA_DOUBLE.fullmatch(text):
        return None
    # Double.parseDouble's own java.lang.NumberFormatException
    return EsError(f'For input string: "{text}"', status=400, type="number_format_exception")


def validate_source(index: Any, doc_id: str, source: dict[str, Any]) -> None:
    """What DocumentParser rejects before anything is stored: metadata fields in the source, and values a mapped
    number/boolean field cannot take (numbers coerce from numeric strings, as ES's default `coerce: true`).
    Fields are checked in document order, so the first bad value is the one ES reports."""
    for key in source:
        if key in _METADATA_FIELDS:
            raise EsError(f"Field [{key}] is a metadata field and cannot be added inside a document. Use the index "
                          "API request parameters.", status=400, type="document_parsing_exception")
    mappings = getattr(index, "mappings", {}) or {}
    # mapped properties only: runtime fields are read from _source at search time, never parsed at index time
    checked = {path: info for path, info in field_infos(mappings, []).items()
               if info.source_path == path and info.family in (NUMBER, BOOLEAN)
               and _mapping_param(mappings, path, "type") is not None
               and str(_mapping_param(mappings, path, "ignore_malformed")).lower() != "true"}
    if not checked:
        return
    leaves: list[tuple[str, Any, int]] = []
    _leaves(source, "", 0, leaves)
    for path, value, column in leaves:
        info = checked.get(path)
        if info is None:
            continue
        if info.family == NUMBER:
            cause = _number_failure(info.es_type, value)
            if cause is not None:
                raise _parse_failure(path, info.es_type, doc_id, value, cause, column)
        elif value not in (True, False, "true", "false", ""):
            reason = f"Failed to parse value [{value}] as only [true] or [false] are allowed."
            raise _parse_failure(path, info.es_type, doc_id, value, IllegalArgument(reason), column)


def _mapping_param(mappings: dict[str, Any], path: str, name: str) -> Any:
    node: Any = {"properties": (mappings or {}).get("properties", {})}
    for part in path.split("."):
        node = (node.get("properties") or {}).get(part) if isinstance(node, dict) else None
        if node is None:
            return None
    return node.get(name) if isinstance(node, dict) else None


def check_pipelines(sb: Any, index: Any, requested: str | None) -> None:
    """Ingest pipelines a write would run (request `pipeline`, else index.default_pipeline, then
    index.final_pipeline). A missing one is ES's 400; an existing one is refused: the sandbox does not run
    processors, and storing the document unprocessed would be a silent difference."""
    settings = index.settings or {}
    names = [requested if requested is not None else settings.get("index.default_pipeline"),
             settings.get("index.final_pipeline")]
    pipelines = getattr(sb.cluster.indices, "pipelines", {}) or {}
    for name in names:
        if not name or name == "_none":
            continue
        if name not in pipelines:
            raise IllegalArgument(f"pipeline with id [{name}] does not exist")
        raise EsError(f"the sandbox does not execute ingest pipelines (pipeline [{name}] on index [{index.name}])",
                      status=400, type="sandbox_unsupported_exception")


def result_body(index: Any, doc_id: str, version: int, result: str, seq_no: int, primary_term: int = 1
                ) -> dict[str, Any]:
    return {"_index": index.name, "_id": doc_id, "_version": version, "result": result,
            "_shards": shards_info(index), "_seq_no": seq_no, "_primary_term": primary_term}


def index_doc(index: Any, doc_id: str | None, source: Any, op_type: str = "index",
              if_seq_no: int | None = None, if_primary_term: int | None = None) -> tuple[dict[str, Any], int]:
    """index/create one document; returns (result body, HTTP status)."""
    if doc_id is not None and doc_id == "":
        raise IllegalArgument("if _id is specified it must not be empty")
    if not isinstance(source, dict):
        raise EsError("failed to parse", status=400, type="document_parsing_exception")
    if doc_id is None:
        doc_id, op_type = auto_id(), "create"
    if len(doc_id.encode()) > 512:
        raise IllegalArgument(f"id [{doc_id}] is too long, must be no longer than 512 bytes but was: "
                              f"{len(doc_id.encode())}")
    existing = index.docs.get(doc_id)
    if op_type == "create" and existing is not None:
        raise _conflict(index, doc_id, f"version conflict, document already exists (current version "
                                       f"[{existing.version}])")
    check_if_seq_no(index, doc_id, if_seq_no, if_primary_term)
    view.state(index)  # snapshot what search sees before the first write changes Index.docs
    validate_source(index, doc_id, source)
    index.update_mapping_for(source)
    doc, result = index.put_document(doc_id, source, op_type)
    view.record_write(index, doc_id, doc)
    return result_body(index, doc_id, doc.version, result, doc.seq_no, doc.primary_term), \
        201 if result == "created" else 200


def delete_doc(index: Any, doc_id: str, if_seq_no: int | None = None, if_primary_term: int | None = None
               ) -> tuple[dict[str, Any], int]:
    if not doc_id:
        raise IllegalArgument("if _id is specified it must not be empty")
    check_if_seq_no(index, doc_id, if_seq_no, if_primary_term)
    view.state(index)
    doc = index.delete_document(doc_id)
    if doc is None:
        # ES still consumes a sequence number for a delete of a missing doc; version 1, result not_found
        return result_body(index, doc_id, 1, "not_found", max(index.next_seq_no - 1, 0)), 404
    view.record_write(index, doc_id, None)
    return result_body(index, doc_id, doc.version + 1, "deleted", index.next_seq_no - 1, doc.primary_term), 200


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def add_update_get(index: Any, result: dict[str, Any], source_value: Any) -> None:
    """The update response's `get` section when `_source` was asked for (update body, action line or URL)."""
    from sandbox.search.source import filter_source, source_spec

    fetch, includes, excludes = source_spec(source_value)
    doc = index.docs.get(result["_id"])
    if not fetch or doc is None:
        return
    result["get"] = {"_seq_no": doc.seq_no, "_primary_term": doc.primary_term, "found": True,
                     "_source": filter_source(doc.source, includes, excludes)}


def url_source_value(args: Any) -> Any:
    """`_source`, `_source_includes`, `_source_excludes` URL parameters as a `_source` body value (None: absent)."""
    if not any(k in args for k in ("_source", "_source_includes", "_source_excludes")):
        return None
    value: Any = {}
    if "_source" in args:
        raw = args["_source"]
        value = raw.lower() != "false" if raw.lower() in ("true", "", "false") else {"includes": raw.split(",")}
    if "_source_includes" in args:
        value = {"includes": args["_source_includes"].split(",")}
    if "_source_excludes" in args:
        value = {**(value if isinstance(value, dict) else {}), "excludes": args["_source_excludes"].split(",")}
    return value


def update_doc(index: Any, doc_id: str, body: Any, if_seq_no: int | None = None,
               if_primary_term: int | None = None) -> tuple[dict[str, Any], int]:
    """Partial update (`doc`, `doc_as_upsert`, `upsert`, `detect_noop`); scripts are not supported."""
    if not doc_id:
        raise IllegalArgument("if _id is specified it must not be empty")
    if not isinstance(body, dict):
        raise EsError("failed to parse update request", status=400, type="x_content_parse_exception")
    if "script" in body:
        raise EsError("the sandbox does not support scripted updates", status=400,
                      type="sandbox_unsupported_exception")
    unknown = set(body) - {"doc", "doc_as_upsert", "upsert", "detect_noop", "_source", "scripted_upsert"}
    if unknown:
        raise EsError(f"[UpdateRequest] unknown field [{sorted(unknown)[0]}]", status=400,
                      type="x_content_parse_exception")
    if "doc" not in body:
        raise EsError("Validation Failed: 1: script or doc is missing;", status=400,
                      type="action_request_validation_exception")
    existing = index.docs.get(doc_id)
    check_if_seq_no(index, doc_id, if_seq_no, if_primary_term)
    if existing is None:
        if body.get("doc_as_upsert"):
            return index_doc(index, doc_id, body["doc"], "create")
        if "upsert" in body:
            return index_doc(index, doc_id, body["upsert"], "create")
        raise EsError(f"[{doc_id}]: document missing", status=404, type="document_missing_exception",
                      index_uuid=index.uuid, shard="0", index=index.name)
    merged = copy.deepcopy(existing.source)
    _merge(merged, body["doc"])
    if merged == existing.source and body.get("detect_noop", True):
        body = result_body(index, doc_id, existing.version, "noop", existing.seq_no, existing.primary_term)
        body["_shards"] = {"total": 0, "successful": 0, "failed": 0}  # ES: a noop touches no shard copy
        return body, 200
    return index_doc(index, doc_id, merged, "index")
