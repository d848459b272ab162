"""Search APIs: _search, _msearch, _count (ES docs: Search API, text_similarity_reranker retriever)."""

from __future__ import annotations

import json
import time
from typing import Any

from sandbox.errors import EsError, IllegalArgument
from sandbox.http import EsRequest, Route, xcontent_token
from sandbox.search import retrievers, view
from sandbox.search.execute import (
    apply_sort,
    es_float,
    parse_sort,
    render_hit,
    resolve_indices,
    search_hits,
    shards_section,
    total_hits,
)
from sandbox.search.source import source_spec_from_args
from sandbox.security import authz

# NodeFeature ids of behaviour implemented here (read by GET /_cluster/state, see cluster_api.py):
# the reranker resolves aliases to their indices, and min_score applies to the normalised rerank score.
CLUSTER_FEATURES = {"text_similarity_reranker_alias_handling_fix", "text_similarity_reranker_minscore_fix"}

# Known ES search options the sandbox does not implement: refused loudly, never ignored silently.
UNSUPPORTED_KEYS = {"aggs", "aggregations", "highlight", "suggest", "collapse", "search_after", "rescore", "knn",
                    "pit", "script_fields", "docvalue_fields", "post_filter", "runtime_mappings", "rank",
                    "indices_boost", "stored_fields", "slice", "terminate_after", "stats", "ext", "sub_searches"}
IGNORED_KEYS = {"timeout", "version", "seq_no_primary_term", "track_scores", "_name"}
# accepted only when false: they would add response sections the sandbox does not produce
FALSE_ONLY_KEYS = {"explain", "profile"}
SUPPORTED_KEYS = {"query", "retriever", "from", "size", "sort", "_source", "track_total_hits", "min_score",
                  "fields"}


def _unsupported(what: str) -> EsError:
    return EsError(f"the sandbox does not support [{what}] in a search request", status=400,
                   type="sandbox_unsupported_exception")


def _index_options(args: Any) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for flag in ("ignore_unavailable", "allow_no_indices"):
        if flag in args:
            options[flag] = str(args[flag]).lower() in ("true", "")
    if "expand_wildcards" in args:
        options["expand_wildcards"] = args["expand_wildcards"]
    return options


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise EsError(f"[{name}] failed to parse value [{value}]", status=400, type="illegal_argument_exception") \
            from exc


def _track(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    text = str(value).lower()
    if text in ("true", "false"):
        return text == "true"
    return _int(value, "track_total_hits")


def _match_all(query: Any) -> bool:
    """A query every document matches, with nothing in it the query parser could refuse."""
    if query is None:
        return True
    if not (isinstance(query, dict) and list(query) == ["match_all"] and isinstance(query["match_all"], dict)):
        return False
    spec = query["match_all"]
    boost = spec.get("boost", 1.0)
    return set(spec) <= {"boost", "_name"} and isinstance(spec.get("_name", ""), str) \
        and isinstance(boost, (int, float)) and not isinstance(boost, bool) and boost >= 0


def run_search(sb: Any, index: str | None, body: dict[str, Any], args: Any) -> dict[str, Any]:
    """One search; `args` are the URL parameters (a mapping)."""
    started = time.perf_counter()
    if not isinstance(body, dict):
        raise EsError("request body must be an object", status=400, type="parsing_exception")
    for key, value in body.items():
        if key in UNSUPPORTED_KEYS or (key in FALSE_ONLY_KEYS and value):
            raise _unsupported(key)
        if key not in SUPPORTED_KEYS and key not in IGNORED_KEYS and key not in FALSE_ONLY_KEYS:
            # ES SearchSourceBuilder#parseXContent ("Search body without query element" -> 400)
            raise EsError(f"Unknown key for a {xcontent_token(value)} in [{key}].", status=400,
                          type="parsing_exception", line=1, col=2)
    if "retriever" in body:
        # ES SearchSourceBuilder: these belong inside the retriever
        for key in ("query", "sort", "min_score", "search_after", "terminate_after", "rescore", "knn"):
            if key in body or (key == "sort" and "sort" in args):
                raise EsError(f"cannot specify [retriever] and [{key}]", status=400,
                              type="illegal_argument_exception")
    size = _int(args.get("size", body.get("size", 10)), "size")
    from_ = _int(args.get("from", body.get("from", 0)), "from")
    if size < 0:
        raise EsError(f"[size] parameter cannot be negative, found [{size}]", status=400,
                      type="illegal_argument_exception")
    if from_ < 0:
        raise EsError(f"[from] parameter cannot be negative but was [{from_}]", status=400,
                      type="illegal_argument_exception")
    query = body.get("query")
    if "q" in args:
        query = {"query_string": {"query": args["q"], **({"default_field": args["df"]} if "df" in args else {}),
                                  **({"default_operator": args["default_operator"]}
                                     if "default_operator" in args else {})}}
    if "retriever" in body:
        retrievers.validate(body["retriever"], size if ("size" in body or "size" in args) else None,
                            sb.cluster.version)
    indices = resolve_indices(sb, index, _index_options(args))
    for target in indices:
        window = _int((target.settings or {}).get("index.max_result_window", 10_000), "index.max_result_window")
        if from_ + size > window:
            raise EsError(f"Result window is too large, from + size must be less than or equal to: [{window}] but "
                          f"was [{from_ + size}]. See the scroll api for a more efficient way to request large data "
                          "sets. This limit can be set by changing the [index.max_result_window] index level "
                          "setting.", status=400, type="illegal_argument_exception")
    sort = parse_sort(args.get("sort").split(",") if args.get("sort") else body.get("sort"))
    by_fields = bool(sort) and not (len(sort) == 1 and sort[0][0] == "_score")
    count = None
    if "retriever" in body:
        hits, by_fields = retrievers.run(sb, indices, body["retriever"])
    elif size == 0 and body.get("min_score") is None and _match_all(query) \
            and not any(indices.alias_filters(index) for index in indices):
        # a count of everything: the visible documents themselves, as ES counts a match_all from the reader's numDocs
        # without visiting a document (TopDocsCollectorManagerFactory#shortcutTotalHitCount, org.elasticsearch.search
        # .query); the sandbox would otherwise build and walk a tantivy index of them all
        hits, count = [], sum(len(view.visible_docs(index)) for index in indices)
    else:
        min_score = body.get("min_score")
        hits = search_hits(indices, query, None, float(min_score) if min_score is not None else None)
        if by_fields:
            apply_sort(hits, sort)
    fetch, includes, excludes = source_spec_from_args(args, body.get("_source"))
    with_score = not by_fields or bool(body.get("track_scores"))
    page = hits[from_:from_ + size]
    flags = {name: str(args.get(name, body.get(name, False))).lower() in ("true", "")
             for name in ("version", "seq_no_primary_term")}
    rendered = [render_hit(h, fetch=fetch, includes=includes, excludes=excludes, with_score=with_score,
                           fields=body.get("fields"), version=flags["version"],
                           seq_no=flags["seq_no_primary_term"]) for h in page]
    as_int = str(args.get("rest_total_hits_as_int", "false")).lower() in ("true", "")
    track = _track(args.get("track_total_hits", body.get("track_total_hits")))
    if as_int and track is not None and track is not True and track is not False:
        raise EsError("[rest_total_hits_as_int] cannot be used if the tracking of total hits is not accurate, "
                      f"got {track}", status=400, type="illegal_argument_exception")
    total = total_hits(len(hits) if count is None else count, True if as_int and track is None else track, as_int)
    hits_section: dict[str, Any] = {}
    if total is not None:
        hits_section["total"] = total
    # ES: no max_score when sorting by field or when no hit is fetched (size 0)
    hits_section["max_score"] = es_float(max((h.score for h in hits), default=None)) \
        if with_score and size > 0 else None
    hits_section["hits"] = rendered
    return {"took": int((time.perf_counter() - started) * 1000), "timed_out": False,
            "_shards": shards_section(indices), "hits": hits_section}


def search(sb: Any, req: EsRequest, index: str | None = None) -> dict[str, Any]:
    return run_search(sb, index, req.json({}), req.args)


_MSEARCH_HEADER_KEYS = {"index", "indices", "ignore_unavailable", "allow_no_indices", "expand_wildcards",
                        "search_type", "preference", "routing", "request_cache", "ccs_minimize_roundtrips",
                        "allow_partial_search_results", "ignore_throttled"}


def msearch(sb: Any, req: EsRequest, index: str | None = None) -> dict[str, Any]:
    """NDJSON header/body pairs; each search answers on its own (errors per response, status per response).
    Request-level problems (malformed lines, rest_total_hits_as_int with inexact tracking) fail the whole call."""
    started = time.perf_counter()
    lines = [line for line in req.data.decode("utf-8").split("\n") if line.strip()]
    if not lines:
        raise EsError("Validation Failed: 1: no requests added;", status=400,
                      type="action_request_validation_exception")
    as_int = str(req.args.get("rest_total_hits_as_int", "false")).lower() in ("true", "")
    pairs = []
    for i in range(0, len(lines), 2):
        try:
            header = json.loads(lines[i])
            body = json.loads(lines[i + 1]) if i + 1 < len(lines) else {}
        except ValueError as exc:
            raise EsError(f"Failed to parse msearch line: {exc}", status=400, type="parsing_exception") from exc
        if not isinstance(header, dict) or not isinstance(body, dict):
            raise EsError("msearch lines must be JSON objects", status=400, type="parsing_exception")
        for key in header:
            if key not in _MSEARCH_HEADER_KEYS:
                raise IllegalArgument(f"key [{key}] is not supported in the metadata section")
        track = _track(body.get("track_total_hits"))
        if as_int and track is not None and not isinstance(track, bool):
            # ES RestMultiSearchAction: checked for every search before any runs
            raise IllegalArgument("[rest_total_hits_as_int] cannot be used if the tracking of total hits is not "
                                  f"accurate, got {track}")
        pairs.append((header, body))
    responses = []
    for header, body in pairs:
        target = header.get("index", header.get("indices", index))
        if isinstance(target, list):
            target = ",".join(target)
        args = dict(req.args.items())
        args.update({k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in header.items()
                     if k in ("ignore_unavailable", "allow_no_indices", "expand_wildcards")})
        try:
            target = authz.search_target(sb, req.subject, target, args)  # per search, as ES: a 403 in its response
            response = run_search(sb, target, body, args)
            response["status"] = 200
        except EsError as error:
            response = {**error.body()}
        responses.append(response)
    return {"took": int((time.perf_counter() - started) * 1000), "responses": responses}


def count(sb: Any, req: EsRequest, index: str | None = None) -> dict[str, Any]:
    body = req.json({})
    for key, value in body.items():
        if key != "query":
            raise EsError(f"request does not support [{key}]", status=400, type="parsing_exception")
        if not isinstance(value, dict):
            raise EsError(f"Unknown key for a {xcontent_token(value)} in [{key}].", status=400,
                          type="parsing_exception")
    query = body.get("query")
    if "q" in req.args:
        query = {"query_string": {"query": req.args["q"]}}
    indices = resolve_indices(sb, index, _index_options(req.args))
    hits = search_hits(indices, query)
    return {"count": len(hits), "_shards": shards_section(indices)}


ROUTES = [
    Route(("GET", "POST"), "/_search", search, writes=False, api="search"),
    Route(("GET", "POST"), "/<index>/_search", search, writes=False, api="search"),
    Route(("GET", "POST"), "/_msearch", msearch, writes=False, api="msearch"),
    Route(("GET", "POST"), "/<index>/_msearch", msearch, writes=False, api="msearch"),
    Route(("GET", "POST"), "/_count", count, writes=False, api="count"),
    Route(("GET", "POST"), "/<index>/_count", count, writes=False, api="count"),
]
