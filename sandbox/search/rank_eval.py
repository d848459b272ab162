"""_rank_eval: ranking evaluation of several searches against rated documents (ES modules/rank-eval, 9.x).

As Elasticsearch does (RestRankEvalAction -> TransportRankEvalAction):
- each `requests[]` entry has an `id`, a `request` (a search body, retrievers included: 9.x parses it with the
  cluster's features) and `ratings` ({_index, _id, rating}); a (_index, _id) rated twice is refused
  ("Found duplicate rated document key"); a request with suggest, aggregations, highlight, explain or profile is
  refused ("Query in rated requests should not ...");
- the metric forces the search `size` to its `k` and `_source` is not fetched; each search runs like one search of
  an _msearch (its own authorisation; an error goes to `failures` under the request id, not to the whole call);
- hits are joined with ratings by (concrete _index, _id); metric_score is the mean of the per-request scores of the
  requests that ran; `details.<id>` = metric_score, unrated_docs, hits [{hit: {_index, _id, _score}, rating}],
  metric_details {<metric>: ...}.
Metrics (their Java classes): precision (PrecisionAtK), recall (RecallAtK), mean_reciprocal_rank
(MeanReciprocalRank), dcg (DiscountedCumulativeGain), expected_reciprocal_rank (ExpectedReciprocalRank).
Templates (`templates`, `template_id`, `params`) are not implemented: refused loudly.
"""

from __future__ import annotations

import math
import time
from typing import Any

from sandbox.errors import EsError, IllegalArgument
from sandbox.http import EsRequest, Route
from sandbox.search.api import run_search
from sandbox.security import authz

DEFAULTS = {"precision": {"relevant_rating_threshold": 1, "ignore_unlabeled": False, "k": 10},
            "recall": {"relevant_rating_threshold": 1, "k": 10},
            "mean_reciprocal_rank": {"relevant_rating_threshold": 1, "k": 10},
            "dcg": {"normalize": False, "unknown_doc_rating": None, "k": 10},
            "expected_reciprocal_rank": {"maximum_relevance": None, "unknown_doc_rating": None, "k": 10}}
FORBIDDEN = {"suggest": "contain a suggest section", "aggregations": "contain aggregations",
             "aggs": "contain aggregations", "highlight": "contain a highlighter section"}


def _parse_metric(body: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(body, dict) or len(body) != 1:
        raise EsError("[rank_eval] metric must be an object with one metric name", status=400,
                      type="parsing_exception")
    name, params = next(iter(body.items()))
    if name not in DEFAULTS:
        raise EsError(f"unknown field [{name}]", status=400, type="parsing_exception")
    params = params or {}
    unknown = [k for k in params if k not in DEFAULTS[name]]
    if unknown:
        raise EsError(f"[{name}] unknown field [{unknown[0]}]", status=400, type="x_content_parse_exception")
    merged = {**DEFAULTS[name], **params}
    if int(merged["k"]) <= 0:
        raise IllegalArgument("Window size k must be positive.")
    if name == "expected_reciprocal_rank" and merged["maximum_relevance"] is None:
        raise EsError("[expected_reciprocal_rank] failed to parse: maximum_relevance is required", status=400,
                      type="x_content_parse_exception")
    return name, merged


def _dcg(ratings: list[int | None]) -> float:
    return sum((2 ** r - 1) / (math.log(rank + 1) / math.log(2)) for rank, r in enumerate(ratings, 1) if r is not None)


def _evaluate(name: str, p: dict[str, Any], rated: list[tuple[dict[str, Any], int | None]],
              ratings: list[int]) -> tuple[float, dict[str, Any]]:
    threshold = p.get("relevant_rating_threshold", 1)
    if name == "precision":
        retrieved = relevant = 0
        for _, rating in rated:
            if rating is not None:
                retrieved += 1
                relevant += rating >= threshold
            elif not p["ignore_unlabeled"]:
                retrieved += 1
        return (relevant / retrieved if retrieved else 0.0), {"relevant_docs_retrieved": relevant,
                                                              "docs_retrieved": retrieved}
    if name == "recall":
        found = sum(1 for _, r in rated if r is not None and r >= threshold)
        relevant = sum(1 for r in ratings if r >= threshold)
        return (found / relevant if relevant else 0.0), {"relevant_docs_retrieved": found, "relevant_docs": relevant}
    if name == "mean_reciprocal_rank":
        first = next((rank for rank, (_, r) in enumerate(rated, 1) if r is not None and r >= threshold), -1)
        return (1.0 / first if first > 0 else 0.0), {"first_relevant": first}
    unrated = sum(1 for _, r in rated if r is None)
    gains = [r if r is not None else p["unknown_doc_rating"] for _, r in rated]
    if name == "dcg":
        dcg = _dcg(gains)
        detail: dict[str, Any] = {"dcg": dcg}
        score = dcg
        if p["normalize"]:
            ideal = _dcg(sorted(ratings, reverse=True)[:len(gains)])
            score = dcg / ideal if ideal else 0.0
            if ideal:
                detail.update({"ideal_dcg": ideal, "normalized_dcg": dcg / ideal})
        return score, {**detail, "unrated_docs": unrated}
    # expected_reciprocal_rank
    top = 2 ** int(p["maximum_relevance"])
    err, still = 0.0, 1.0
    for rank, gain in enumerate(gains[: int(p["k"])], 1):
        if gain is not None:
            prob = (2 ** gain - 1) / top
            err += prob * still / rank
            still *= 1 - prob
    return err, {"unrated_docs": unrated}


def rank_eval(sb: Any, req: EsRequest, index: str | None = None) -> dict[str, Any]:
    body = req.json(None)
    if not isinstance(body, dict):
        raise EsError("request body is required", status=400, type="parse_exception")
    for key in body:
        if key not in ("requests", "metric", "max_concurrent_searches", "templates"):
            raise EsError(f"[rank_eval] unknown field [{key}]", status=400, type="x_content_parse_exception")
    if body.get("templates"):
        raise EsError("the sandbox does not support [templates] in _rank_eval", status=400,
                      type="sandbox_unsupported_exception")
    requests = body.get("requests")
    if not isinstance(requests, list):
        raise EsError("[rank_eval] requests is required", status=400, type="x_content_parse_exception")
    name, params = _parse_metric(body.get("metric"))
    parsed = []
    for item in requests:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or "ratings" not in item:
            raise EsError("[request] failed to parse: id and ratings are required", status=400,
                          type="x_content_parse_exception")
        if "template_id" in item or "params" in item:
            raise EsError("the sandbox does not support search templates in _rank_eval", status=400,
                          type="sandbox_unsupported_exception")
        request = item.get("request")
        if not isinstance(request, dict):
            raise IllegalArgument("Need to set at least test request or test request template parameters.")
        for key, what in FORBIDDEN.items():
            if key in request:
                raise IllegalArgument(f"Query in rated requests should not {what}.")
        for key in ("explain", "profile"):
            if request.get(key):
                raise IllegalArgument(f"Query in rated requests should not use {key}.")
        keys: dict[tuple[str, str], int] = {}
        for rating in item["ratings"]:
            key = (str(rating.get("_index")), str(rating.get("_id")))
            if key in keys:
                raise IllegalArgument(f"Found duplicate rated document key [{{ \"_index\" : \"{key[0]}\", "
                                      f"\"_id\" : \"{key[1]}\" }}] in evaluation request [{item['id']}]")
            keys[key] = int(rating["rating"])
        parsed.append((item["id"], request, keys))
    target = ",".join(part for part in (index or "").split(",") if part) or None
    details: dict[str, Any] = {}
    failures: dict[str, Any] = {}
    for query_id, request, keys in parsed:
        started = time.perf_counter()
        search = {**request, "size": int(params["k"]), "_source": False}
        try:
            where = authz.search_target(sb, req.subject, target, req.args)
            hits = run_search(sb, where, search, req.args)["hits"]["hits"]
        except EsError as error:
            failures[query_id] = error.body().get("error")
            continue
        rated = [(h, keys.get((h["_index"], h["_id"]))) for h in hits]
        score, detail = _evaluate(name, params, rated, list(keys.values()))
        details[query_id] = {
            "metric_score": score,
            "unrated_docs": [{"_index": h["_index"], "_id": h["_id"]} for h, r in rated if r is None],
            "hits": [{"hit": {"_index": h["_index"], "_id": h["_id"], "_score": h.get("_score")}, "rating": r}
                     for h, r in rated],
            "metric_details": {name: detail},
            "took": int((time.perf_counter() - started) * 1000),
        }
    scores = [d["metric_score"] for d in details.values()]
    # ES divides by the number of requests that ran (EvaluationMetric.combine); none ran: 0 here (ES: NaN)
    return {"metric_score": sum(scores) / len(scores) if scores else 0.0,
            "details": details, "failures": failures}


ROUTES = [
    Route(("GET", "POST"), "/_rank_eval", rank_eval, writes=False, api="rank_eval"),
    Route(("GET", "POST"), "/<index>/_rank_eval", rank_eval, writes=False, api="rank_eval"),
]
