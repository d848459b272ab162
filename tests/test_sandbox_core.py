"""The sandbox's protocol rules and test hooks, exercised through the real client and raw HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from elasticsearch import ApiError, ConnectionError, Elasticsearch

from sandbox.server import Sandbox


def raw(url: str, method: str = "GET", body: dict | None = None) -> tuple[int, dict, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request) as response:
            payload = response.read()
            return response.status, dict(response.headers), json.loads(payload) if payload else {}
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"{}")


def test_info_reports_a_9x_version_and_product_header(sandbox):
    status, headers, body = raw(sandbox.url + "/")
    assert status == 200
    assert headers["X-Elastic-Product"] == "Elasticsearch"
    assert body["version"]["number"].startswith("9.")
    assert body["version"]["build_flavor"] == "default"


def test_real_client_accepts_the_sandbox(es):
    assert es.info()["version"]["number"].startswith("9.")


def test_version_is_configurable():
    server = Sandbox(version="9.3.1").start()
    try:
        assert Elasticsearch(server.url).info()["version"]["number"] == "9.3.1"
    finally:
        server.stop()


def test_unsupported_call_names_method_and_path(sandbox):
    status, headers, body = raw(sandbox.url + "/_snapshot/repo", "PUT", {"type": "fs"})
    assert status == 400
    assert headers["X-Elastic-Product"] == "Elasticsearch"
    assert body["error"]["type"] == "sandbox_unsupported_exception"
    assert "PUT /_snapshot/repo" in body["error"]["reason"]
    assert body["error"]["root_cause"][0]["type"] == "sandbox_unsupported_exception"


def test_request_log_records_method_path_status_and_timing(sandbox, es):
    es.info()
    raw(sandbox.url + "/_snapshot/x", "PUT", {})
    _, _, log = raw(sandbox.url + "/_sandbox/requests")
    entries = log["requests"]
    assert [(e["method"], e["path"], e["status"]) for e in entries] == [("GET", "/", 200), ("PUT", "/_snapshot/x", 400)]
    assert all(e["duration_ms"] >= 0 for e in entries)
    assert [e["write"] for e in entries] == [False, True]
    raw(sandbox.url + "/_sandbox/requests", "DELETE")
    assert raw(sandbox.url + "/_sandbox/requests")[2]["requests"] == []


def test_latency_fault_delays_every_request(sandbox, es):
    raw(sandbox.url + "/_sandbox/faults", "PUT", {"latency_ms": 50})
    es.info()
    entry = raw(sandbox.url + "/_sandbox/requests")[2]["requests"][-1]
    assert entry["duration_ms"] >= 50
    assert entry["fault"] == "latency"


def test_status_fault_on_nth_matching_request(sandbox):
    raw(sandbox.url + "/_sandbox/faults", "PUT", {"rules": [{"path": "^/$", "status": 429, "nth": 2}]})
    statuses = [raw(sandbox.url + "/")[0] for _ in range(3)]
    assert statuses == [200, 429, 200]
    body = raw(sandbox.url + "/_sandbox/requests")[2]["requests"][1]
    assert body["fault"] == "status"


def test_status_fault_on_a_seeded_fraction_reproduces(sandbox):
    spec = {"seed": 7, "rules": [{"path": "^/$", "status": 503, "fraction": 0.5}]}
    runs = []
    for _ in range(2):
        raw(sandbox.url + "/_sandbox/faults", "PUT", spec)
        runs.append([raw(sandbox.url + "/")[0] for _ in range(20)])
    assert runs[0] == runs[1]
    assert 503 in runs[0] and 200 in runs[0]


def test_dropped_connection_is_a_connection_error_for_the_client(sandbox):
    raw(sandbox.url + "/_sandbox/faults", "PUT", {"rules": [{"path": "^/$", "drop": True, "times": 1}]})
    client = Elasticsearch(sandbox.url, max_retries=0)
    with pytest.raises(ConnectionError):
        client.info()
    assert client.info()["tagline"]  # the rule fired once only
    assert raw(sandbox.url + "/_sandbox/requests")[2]["requests"][0]["fault"] == "drop"


def test_injected_status_reaches_the_client_as_api_error(sandbox):
    raw(sandbox.url + "/_sandbox/faults", "PUT", {"rules": [{"path": "^/$", "status": 503}]})
    with pytest.raises(ApiError) as caught:
        Elasticsearch(sandbox.url, max_retries=0).info()
    assert caught.value.meta.status == 503


def test_api_key_auth_answers_401_in_es_shape():
    server = Sandbox(api_keys=("c2VjcmV0LWtleQ==",)).start()
    try:
        status, headers, body = raw(server.url + "/")
        assert status == 401
        assert body["error"]["type"] == "security_exception"
        assert "missing authentication credentials" in body["error"]["reason"]
        assert "WWW-Authenticate" in headers
        assert Elasticsearch(server.url, api_key="c2VjcmV0LWtleQ==").info()["tagline"]
        with pytest.raises(ApiError) as caught:
            Elasticsearch(server.url, api_key="wrong").info()
        assert caught.value.meta.status == 401
    finally:
        server.stop()


def test_basic_auth():
    server = Sandbox(users={"elastic": "changeme"}).start()
    try:
        assert Elasticsearch(server.url, basic_auth=("elastic", "changeme")).info()["tagline"]
        with pytest.raises(ApiError):
            Elasticsearch(server.url, basic_auth=("elastic", "nope")).info()
    finally:
        server.stop()


def test_error_trace_adds_java_exception_lines_like_es(sandbox):
    status, _, plain = raw(sandbox.url + "/missing-index")
    assert status == 404 and "stack_trace" not in plain["error"]
    status, _, traced = raw(sandbox.url + "/missing-index?error_trace=true")
    assert traced["error"]["stack_trace"].startswith("org.elasticsearch.index.IndexNotFoundException: no such index")
    assert traced["error"]["root_cause"][0]["stack_trace"] == traced["error"]["stack_trace"]


@pytest.mark.parametrize(("accept", "content_type", "body", "reason"), [
    ("application/vnd.elasticsearch+json; compatible-with=7", None, None,
     "Accept version must be either version 9 or 8, but found 7"),
    ("application/vnd.elasticsearch+json; compatible-with=9", "application/vnd.elasticsearch+json; compatible-with=8",
     {}, "the compatible versions must match"),
    ("application/vnd.elasticsearch+json; compatible-with=9", "application/json", {},
     "A compatible version is required on both Content-Type and Accept headers if either one has requested"),
])
def test_compatibility_headers_are_validated_as_es_does(sandbox, accept, content_type, body, reason):
    headers = {"Accept": accept} | ({"Content-Type": content_type} if content_type else {})
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(sandbox.url + "/_search", data=data, method="POST" if data else "GET",
                                     headers=headers)
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request)
    error = json.loads(caught.value.read())["error"]
    assert caught.value.code == 400
    assert error["type"] == "media_type_header_exception"
    assert reason in error["caused_by"]["reason"]


def test_compatible_with_8_and_9_are_accepted(sandbox):
    for version in (8, 9):
        media = f"application/vnd.elasticsearch+json; compatible-with={version}"
        request = urllib.request.Request(sandbox.url + "/", headers={"Accept": media})
        with urllib.request.urlopen(request) as response:
            assert response.status == 200


# ---- persistent connections (sandbox/transport.py) ---------------------------------------------------------------

def _http(sock, method: str, path: str, body: bytes = b"", extra: str = "") -> bytes:
    head = (f"{method} {path} HTTP/1.1\r\nHost: sandbox\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n").encode()
    return head + body


def _responses(sock, count: int) -> list[tuple[int, dict, bytes]]:
    """Read `count` HTTP responses from one socket (each carries Content-Length)."""
    buffer, answers = b"", []
    while len(answers) < count:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buffer += chunk
        while b"\r\n\r\n" in buffer:
            head, _, rest = buffer.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
            length = int(headers.get("content-length", 0))
            if len(rest) < length:
                break
            answers.append((int(lines[0].split()[1]), headers, rest[:length]))
            buffer = rest[length:]
    return answers


def test_one_connection_serves_request_after_request_like_es(sandbox):
    """ES keeps HTTP connections open (Netty4HttpServerTransport); requests written back to back on one socket,
    bodies of 1 MiB and a body the route never reads among them, are answered in order on that socket."""
    import socket

    big = json.dumps({"settings": {"index": {"number_of_shards": 1}}, "mappings": {"_meta": {"x": "a" * 2**20}}})
    with socket.create_connection(("127.0.0.1", sandbox.port), timeout=10) as sock:
        sock.sendall(_http(sock, "PUT", "/first", big.encode())
                     + _http(sock, "GET", "/_snapshot/nothing", b'{"ignored": true}')  # refused: body unread
                     + _http(sock, "HEAD", "/first")
                     + _http(sock, "GET", "/first/_mapping"))
        answers = _responses(sock, 4)
    assert [status for status, _, _ in answers] == [200, 400, 200, 200]
    assert all(headers.get("connection") != "close" for _, headers, _ in answers)
    assert answers[2][2] == b""  # HEAD: no body, the next response still parses
    assert len(json.loads(answers[3][2])["first"]["mappings"]["_meta"]["x"]) == 2**20


def test_a_client_closing_the_connection_is_honoured(sandbox):
    import socket

    with socket.create_connection(("127.0.0.1", sandbox.port), timeout=10) as sock:
        sock.sendall(_http(sock, "GET", "/", extra="Connection: close\r\n"))
        (status, headers, _), = _responses(sock, 1)
        assert (status, headers.get("connection")) == (200, "close")
        assert sock.recv(1) == b""  # the server closed it


def test_stopping_closes_idle_connections():
    """A stopped sandbox must look gone to a client holding an open connection, not keep serving from it."""
    import socket

    server = Sandbox().start()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        sock.sendall(_http(sock, "GET", "/"))
        assert _responses(sock, 1)[0][0] == 200
        server.stop()
        try:
            sock.sendall(_http(sock, "GET", "/"))
            assert sock.recv(65536) == b""
        except (ConnectionResetError, BrokenPipeError):
            pass  # as good: the connection is gone
    finally:
        sock.close()
