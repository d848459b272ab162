"""Document APIs: _bulk, single-document CRUD, _update, _mget, _refresh, _reindex (ES Document APIs docs)."""

from __future__ import annotations

from typing import Any

from sandbox.documents import bulk, writes
from sandbox.documents.reindex import reindex
from sandbox.errors import ActionRequestValidation, EsError, IndexNotFound
from sandbox.http import EsRequest, Reply, Route
from sandbox.search import view
from sandbox.search.source import filter_source, source_spec_from_args


def _refresh_after(req: EsRequest, index: Any, body: dict[str, Any]) -> None:
    """`?refresh=true` refreshes now (and says so); `wait_for` waits for a refresh (here: refreshes now)."""
    value = req.args.get("refresh")
    if value in ("", "true", "wait_for"):
        view.refresh(index)
        if value != "wait_for":
            body["forced_refresh"] = True


def _seq_args(req: EsRequest) -> tuple[int | None, int | None]:
    return req.int_arg("if_seq_no"), req.int_arg("if_primary_term")


def _write_target(sb: Any, req: EsRequest, index: str) -> Any:
    target = writes.target_index(sb, index, require_alias=req.flag("require_alias"))
    writes.check_pipelines(sb, target, req.args.get("pipeline"))
    return target


def put_doc(sb: Any, req: EsRequest, index: str, doc_id: str) -> Reply:
    op_type = req.args.get("op_type", "index")
    if op_type not in ("index", "create"):
        raise EsError(f"opType must be 'create' or 'index', found: [{op_type}]", status=400,
                      type="illegal_argument_exception")
    target = _write_target(sb, req, index)
    body, status = writes.index_doc(target, doc_id, req.json(), op_type, *_seq_args(req))
    _refresh_after(req, target, body)
    return Reply(body, status)


def create_doc(sb: Any, req: EsRequest, index: str, doc_id: str) -> Reply:
    target = _write_target(sb, req, index)
    body, status = writes.index_doc(target, doc_id, req.json(), "create")
    _refresh_after(req, target, body)
    return Reply(body, status)


def post_doc(sb: Any, req: EsRequest, index: str) -> Reply:
    target = _write_target(sb, req, index)
    body, status = writes.index_doc(target, None, req.json())
    _refresh_after(req, target, body)
    return Reply(body, status)


def update_doc(sb: Any, req: EsRequest, index: str, doc_id: str) -> Reply:
    target = _write_target(sb, req, index)
    request = req.json()
    body, status = writes.update_doc(target, doc_id, request, *_seq_args(req))
    wanted = request.get("_source", writes.url_source_value(req.args)) if isinstance(request, dict) else None
    if wanted is not None:
        writes.add_update_get(target, body, wanted)
    _refresh_after(req, target, body)
    return Reply(body, status)


def _concrete(sb: Any, name: str) -> Any:
    """The index a single-document read/delete addresses (an alias must point to exactly one index)."""
    store = sb.cluster.indices
    index = store.get(name)
    if index is not None:
        return index
    found = store.resolve(name)
    if len(found) != 1:
        raise EsError(f"alias [{name}] has more than one index associated with it [{[i.name for i in found]}], "
                      "can't execute a single index op", status=400, type="illegal_argument_exception")
    return found[0]


def delete_doc(sb: Any, req: EsRequest, index: str, doc_id: str) -> Reply:
    target = _concrete(sb, index)
    writes.check_write_block(target)
    body, status = writes.delete_doc(target, doc_id, *_seq_args(req))
    if status == 200:
        _refresh_after(req, target, body)
    return Reply(body, status)


def _get_body(target: Any, doc_id: str, fetch: bool, includes: list[str], excludes: list[str],
              realtime: bool = True) -> dict[str, Any]:
    if realtime:
        doc = target.docs.get(doc_id)  # real-time (the default): sees writes not yet refreshed
    else:
        view.periodic_refresh(target)
        doc = view.state(target).visible.get(doc_id)
    if doc is None:
        return {"_index": target.name, "_id": doc_id, "found": False}
    body = {"_index": target.name, "_id": doc_id, "_version": doc.version, "_seq_no": doc.seq_no,
            "_primary_term": doc.primary_term, "found": True}
    if fetch:
        body["_source"] = filter_source(doc.source, includes, excludes)
    return body


def get_doc(sb: Any, req: EsRequest, index: str, doc_id: str) -> Reply:
    target = _concrete(sb, index)
    if req.flag("refresh"):
        view.refresh(target)
    body = _get_body(target, doc_id, *source_spec_from_args(req.args), realtime=req.flag("realtime", True))
    return Reply(body, 200 if body["found"] else 404)


def get_source(sb: Any, req: EsRequest, index: str, doc_id: str) -> Any:
    target = _concrete(sb, index)
    body = _get_body(target, doc_id, *source_spec_from_args(req.args))
    if not body["found"]:
        raise EsError(f"Document not found [{target.name}]/[{doc_id}]", status=404,
                      type="resource_not_found_exception")
    return body.get("_source", {})


def mget(sb: Any, req: EsRequest, index: str | None = None) -> dict[str, Any]:
    body = req.json({})
    specs = body.get("docs")
    if specs is None:
        specs = [{"_id": i} for i in body.get("ids", [])]
    if not specs:
        raise ActionRequestValidation("no documents to get")
    default_source = source_spec_from_args(req.args)
    docs = []
    for spec in specs:
        name = spec.get("_index") or index
        doc_id = str(spec.get("_id", ""))
        if not name:
            raise ActionRequestValidation("index is missing for doc 0")
        try:
            target = _concrete(sb, name)
        except IndexNotFound as error:
            docs.append({"_index": name, "_id": doc_id, "error": error.cause_dict()})
            continue
        src = default_source
        if "_source" in spec:
            from sandbox.search.source import source_spec

            src = source_spec(spec["_source"])
        docs.append(_get_body(target, doc_id, *src))
    return {"docs": docs}


def refresh(sb: Any, req: EsRequest, index: str | None = None) -> dict[str, Any]:
    store = sb.cluster.indices
    targets = store.resolve(index or "_all", **_index_options(req))
    for target in targets:
        view.refresh(target)
    total = sum(writes.shards_info(t)["total"] * _primaries(t) for t in targets)
    return {"_shards": {"total": total, "successful": total, "failed": 0}}


def _primaries(index: Any) -> int:
    try:
        return int((index.settings or {}).get("index.number_of_shards", 1))
    except (TypeError, ValueError):
        return 1


def _index_options(req: EsRequest) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for flag in ("ignore_unavailable", "allow_no_indices"):
        if flag in req.args:
            options[flag] = req.flag(flag)
    if "expand_wildcards" in req.args:
        options["expand_wildcards"] = req.args["expand_wildcards"]
    return options


def bulk_all(sb: Any, req: EsRequest) -> dict[str, Any]:
    return bulk.execute(sb, req)


def bulk_index(sb: Any, req: EsRequest, index: str) -> dict[str, Any]:
    return bulk.execute(sb, req, index)


def reindex_route(sb: Any, req: EsRequest) -> dict[str, Any] | Reply:
    return reindex(sb, req)


# NodeFeature ids of behaviour implemented here (GET /_cluster/state, see cluster_api.py): bulk auto-generated ids
# with op_type create, and the require_alias flag (per request and per item).
CLUSTER_FEATURES = {"bulk_auto_id", "bulk_require_alias"}

ROUTES = [
    Route(("POST", "PUT"), "/_bulk", bulk_all, api="bulk"),
    Route(("POST", "PUT"), "/<index>/_bulk", bulk_index, api="bulk"),
    Route(("PUT", "POST"), "/<index>/_doc/<path:doc_id>", put_doc, api="index"),
    Route(("POST",), "/<index>/_doc", post_doc, api="index"),
    Route(("PUT", "POST"), "/<index>/_create/<path:doc_id>", create_doc, api="create"),
    Route(("POST",), "/<index>/_update/<path:doc_id>", update_doc, api="update"),
    Route(("GET", "HEAD"), "/<index>/_doc/<path:doc_id>", get_doc, api={"GET": "get", "HEAD": "exists"}),
    Route(("GET", "HEAD"), "/<index>/_source/<path:doc_id>", get_source,
          api={"GET": "get_source", "HEAD": "exists_source"}),
    Route(("DELETE",), "/<index>/_doc/<path:doc_id>", delete_doc, api="delete"),
    Route(("GET", "POST"), "/_mget", mget, writes=False, api="mget"),
    Route(("GET", "POST"), "/<index>/_mget", mget, writes=False, api="mget"),
    Route(("GET", "POST"), "/_refresh", refresh, writes=False, api="indices.refresh"),
    Route(("GET", "POST"), "/<index>/_refresh", refresh, writes=False, api="indices.refresh"),
    Route(("POST",), "/_reindex", reindex_route, api="reindex"),
]
