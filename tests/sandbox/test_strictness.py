"""The sandbox refuses what Elasticsearch refuses: query parameters and bodies the REST API specification does
not define for the API a route serves (ES BaseRestHandler#handleRequest)."""

from __future__ import annotations

import http.client
import json
import re
from urllib.parse import urlsplit

import pytest

from sandbox import rest_spec
from sandbox.server import collect_routes

ROUTES = [r for r in collect_routes() if not r.rule.startswith("/_sandbox")]


def send(url: str, method: str, path: str, body: bytes | None = None) -> tuple[int, dict]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        return response.status, json.loads(payload) if payload else {}
    finally:
        conn.close()


def concrete(rule: str) -> str:
    """A path for a route rule: every <part> replaced by a sample value."""
    return re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: "0" if m.group(1) == "int" else f"x-{m.group(2)}", rule)


def spec_path(rule: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)


def test_every_route_names_an_api_of_the_specification_that_serves_its_path():
    aliases = {"{doc_id}": "{id}"}  # the sandbox's name for the spec's {id} path part
    deprecated_paths = {  # paths ES still routes that the 9.x specification no longer lists
        ("GET", "/_inference/_all"), ("GET", "/_inference/{task_type}"), ("GET", "/_inference/{task_type}/_all"),
        ("POST", "/_ml/trained_models/{model_id}/model_aliases/{model_alias}"),
        ("POST", "/_ml/trained_models/{model_id}/deployment/_infer"),
        ("POST", "/_inference/{inference_id}/_update"), ("POST", "/_inference/{task_type}/{inference_id}/_update"),
    }
    for route in ROUTES:
        for method in route.methods:
            name = route.api_for(method)
            assert name, f"{method} {route.rule} names no API"
            path = spec_path(route.rule)
            for old, new in aliases.items():
                path = path.replace(old, new)
            served = {(m, p) for methods, p in rest_spec.api(name)["paths"] for m in methods}
            served_paths = {p for _, p in served}
            assert (method, path) in served or ((method, path) in deprecated_paths and name), \
                f"{method} {route.rule}: [{name}] serves {sorted(served_paths)}"


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{'|'.join(r.methods)} {r.rule}")
def test_every_route_refuses_an_unknown_query_parameter(sandbox, route):
    path = concrete(route.rule)
    for method in route.methods:
        status, body = send(sandbox.url, method, path + "?zzqqxx=1")
        assert status == 400, (method, path, body)
        if method != "HEAD":  # a HEAD answer has no body
            assert body["error"]["type"] == "illegal_argument_exception"
            assert body["error"]["reason"] == f"request [{path}] contains unrecognized parameter: [zzqqxx]"


def test_the_refusal_suggests_close_parameters_as_es_does(sandbox):
    status, body = send(sandbox.url, "GET", "/_search?sise=1&zzqqxx=2")
    assert status == 400
    assert body["error"]["reason"] == ("request [/_search] contains unrecognized parameters: "
                                       "[sise] -> did you mean [size]?, [zzqqxx]")
    status, body = send(sandbox.url, "GET", "/_cluster/health?levl=indices")
    assert body["error"]["reason"] == ("request [/_cluster/health] contains unrecognized parameter: "
                                       "[levl] -> did you mean [level]?")


def test_similarity_is_lucenes_levenshtein_distance():
    assert rest_spec.similarity("size", "size") == 1.0
    assert rest_spec.similarity("sise", "size") == 0.75
    assert rest_spec.similarity("", "a") == 0.0
    message = rest_spec.unrecognized("/x", {"tmeout"}, {"timeout", "time_out", "pretty"})
    assert message == ("request [/x] contains unrecognized parameter: [tmeout] -> did you mean any of "
                       "[timeout, time_out]?")


def test_global_and_path_parameters_are_accepted(sandbox, es):
    es.indices.create(index="strict")
    for query in ("pretty", "human=true", "error_trace=true", "format=json"):
        status, body = send(sandbox.url, "GET", f"/strict/_mapping?{query}")
        assert status == 200, (query, body)
    # the spec's own parameters of the API
    status, body = send(sandbox.url, "GET", "/strict/_search?size=1&from=0&track_total_hits=true")
    assert status == 200, body


def test_a_body_on_an_api_without_one_is_refused(sandbox, es):
    es.indices.create(index="strict")
    status, body = send(sandbox.url, "GET", "/_cluster/health", b'{"a": 1}')
    assert status == 400
    assert body["error"]["type"] == "illegal_argument_exception"
    assert body["error"]["reason"] == "request [GET /_cluster/health] does not support having a body"
    status, body = send(sandbox.url, "DELETE", "/strict", b"{}")
    assert body["error"]["reason"] == "request [DELETE /strict] does not support having a body"
    # an API with a body takes one
    status, body = send(sandbox.url, "POST", "/strict/_search", b'{"size": 0}')
    assert status == 200, body
