"""Documents at scale (issue 14): data files are streamed (JSON arrays, NDJSON, gzip), the ownership record of a
large set is constant-size, the plan of a large set makes the same requests as a small one, and loading runs
bounded bulk requests in parallel. Behaviour only: timings live in bench/documents_load.py."""

from __future__ import annotations

import gzip
import json
import random
import tracemalloc

import pytest

from provisioning import converge, make_plan
from provisioning.diffing import spec_hash
from provisioning.kinds import documents as documents_kind
from provisioning.kinds import documents_data
from provisioning.kinds.documents_data import DataFileError, iter_source, parse_documents
from tests.engine_helpers import MOVIE_MAPPINGS, ctx_for, documents, index

SETTINGS = {"number_of_shards": 1, "number_of_replicas": 0}


def write_ndjson(path, docs, *, zipped=False):
    text = "".join(json.dumps(d) + "\n" for d in docs)
    if zipped:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 1 << 20])
def test_json_array_streams_in_any_window_with_the_lines_of_documents(monkeypatch, tmp_path, chunk):
    monkeypatch.setattr(documents_data, "READ_CHUNK", chunk)
    rng = random.Random(chunk)
    docs = [{"id": str(i), "n": rng.randint(-10**9, 10**9), "x": rng.random(), "t": "a\nb" * rng.randint(0, 3),
             "nested": {"k": [1, 2, {"z": None}]}} for i in range(40)] + [12345, "s", [1, 2]]
    lines, text, line = [], "\ufeff[\n", 2
    for i, doc in enumerate(docs):
        lines.append(line)
        encoded = json.dumps(doc, indent=2 if i % 3 == 0 else None)
        text += encoded + (",\n\n" if i < len(docs) - 1 else "\n]\n")
        line += encoded.count("\n") + (2 if i < len(docs) - 1 else 1)
    path = tmp_path / "docs.json"
    path.write_text(text, encoding="utf-8")
    assert list(iter_source(path, "json")) == list(zip(lines, docs, strict=True))
    assert parse_documents(text.lstrip("\ufeff"), "json") == list(zip(lines, docs, strict=True))


@pytest.mark.parametrize("text,line,message", [
    ('[\n {"id": 1},\n {"id": 2,}\n]', 3, "invalid JSON"),
    ('[\n {"id": 1}\n {"id": 2}\n]', 3, "expected ',' or ']'"),
    ('{"id": 1}', 1, "one array"),
    ('[{"id": 1}] x', 1, "extra data"),
    ('[{"id": 1},', 1, "invalid JSON"),
])
def test_json_errors_keep_their_line_when_streamed(monkeypatch, tmp_path, text, line, message):
    monkeypatch.setattr(documents_data, "READ_CHUNK", 4)
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(DataFileError) as caught:
        list(iter_source(path, "json"))
    assert caught.value.line == line and message in caught.value.message


def test_gzip_files_are_read_by_their_magic_bytes(tmp_path):
    docs = [{"id": str(i)} for i in range(5)]
    plain = write_ndjson(tmp_path / "d.ndjson", docs)
    zipped = write_ndjson(tmp_path / "d.ndjson.gz", docs, zipped=True)
    assert list(iter_source(zipped, "ndjson")) == list(iter_source(plain, "ndjson"))
    resource = documents("seed", "movies", zipped)
    assert documents_data.data_format(resource) == "ndjson"


def test_scanning_a_large_file_holds_neither_the_file_nor_every_id(tmp_path):
    n = 30_000
    path = write_ndjson(tmp_path / "big.ndjson", ({"id": f"doc-{i}", "body": "x" * 400} for i in range(n)))
    assert path.stat().st_size > 12_000_000
    tracemalloc.start()
    try:
        desired, bad, _ = documents_kind.scan_source(path, "ndjson", "id")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert bad == 0 and desired.count == n and desired.hashes is None  # above MAX_TRACKED: no per-id record
    assert peak < 4_000_000, f"peak {peak} bytes while scanning a {path.stat().st_size} byte file"
    small = [{"id": f"doc-{i}", "body": "x"} for i in range(50)]
    desired, _, _ = documents_kind.scan_source(write_ndjson(tmp_path / "s.ndjson", small), "ndjson", "id")
    assert desired.content_hash == spec_hash(small)  # the streamed hash is the hash of the whole list
    assert desired.hashes == {d["id"]: documents_kind.doc_hash(d) for d in small}


def _change(plan, key):
    return next(c for c in plan.changes if c.key == key)


def _requests(es, since):
    return es.perform_request("GET", "/_sandbox/requests", params={"since": since})["requests"]


def test_a_large_set_loads_in_parallel_and_plans_like_a_small_one(es, tmp_path, monkeypatch):
    monkeypatch.setattr(documents_kind, "MAX_TRACKED", 100)  # a "large" set at the size of a test
    monkeypatch.setattr(documents_kind, "MAX_IDS_QUERY", 100)
    monkeypatch.setenv("ES_STACK_BULK_WORKERS", "3")
    monkeypatch.setattr("provisioning.bulk.BULK_CHUNK", 50)
    n = 1_000
    path = write_ndjson(tmp_path / "big.ndjson", ({"id": f"d{i}", "title": f"t {i}"} for i in range(n)))
    resources = [index("movies", SETTINGS, MOVIE_MAPPINGS), documents("movies-seed", "movies", path)]
    since = es.perform_request("GET", "/_sandbox/requests")["last_seq"]
    converge(resources, ctx_for(es), command="pytest")
    assert es.count(index="movies")["count"] == n
    bulks = [r for r in _requests(es, since) if r["path"].endswith("/_bulk")]
    assert len(bulks) == n // 50  # chunks of BULK_CHUNK documents
    ctx = ctx_for(es)
    ctx.ledger.load()
    entry = ctx.ledger.owned("documents")["movies-seed"]
    assert entry["count"] == n and entry["docs"] is None  # constant-size record above MAX_TRACKED

    since = es.perform_request("GET", "/_sandbox/requests")["last_seq"]
    assert not make_plan(resources, ctx_for(es)).has_changes
    large = _requests(es, since)
    assert not any("_bulk" in r["path"] or "_doc" in r["path"] for r in large)

    # documents deleted in the cluster: the count finds them; a changed file: the content hash finds it
    es.delete(index="movies", id="d7", refresh=True)
    change = _change(make_plan(resources, ctx_for(es)), "documents/movies-seed")
    assert change.action == "update" and any(d.path == "documents.present" for d in change.diffs)
    write_ndjson(path, ({"id": f"d{i}", "title": f"t {i}" + ("!" if i == 3 else "")} for i in range(n)))
    change = _change(make_plan(resources, ctx_for(es)), "documents/movies-seed")
    assert change.action == "update" and any(d.path == "content" for d in change.diffs)
    converge(resources, ctx_for(es), command="pytest")
    assert es.get(index="movies", id="d3")["_source"]["title"] == "t 3!" and es.count(index="movies")["count"] == n

    # the same plan with a small set makes the same requests
    small = write_ndjson(tmp_path / "small.ndjson", ({"id": f"d{i}", "title": f"t {i}"} for i in range(25)))
    es.perform_request("POST", "/_sandbox/reset")
    few = [index("movies", SETTINGS, MOVIE_MAPPINGS), documents("movies-seed", "movies", small)]
    converge(few, ctx_for(es), command="pytest")
    since = es.perform_request("GET", "/_sandbox/requests")["last_seq"]
    assert not make_plan(few, ctx_for(es)).has_changes
    assert [(r["method"], r["path"]) for r in _requests(es, since)] == [(r["method"], r["path"]) for r in large]


def test_validation_plan_and_apply_read_a_data_file_once_between_them(es, tmp_path, monkeypatch):
    from provisioning import load_manifests

    data = write_ndjson(tmp_path / "docs.ndjson", ({"id": f"d{i}", "title": f"t {i}"} for i in range(50)))
    (tmp_path / "stack.yaml").write_text(
        "kind: index\nname: movies\nspec:\n  mappings: {properties: {title: {type: text}}}\n---\n"
        f"kind: documents\nname: seed\nspec: {{index: movies, source: {data.name}, id_field: id}}\n")
    reads = []
    real = documents_data.iter_source

    def counting(source, fmt):
        reads.append(str(source))
        return real(source, fmt)

    monkeypatch.setattr(documents_data, "iter_source", counting)
    monkeypatch.setattr(documents_kind, "iter_source", counting)
    monkeypatch.setattr("provisioning.bulk.iter_source", counting)
    converge(load_manifests(tmp_path), ctx_for(es), command="pytest")
    assert es.count(index="movies")["count"] == 50
    assert reads == [str(data), str(data)]  # validation (which fingerprints it too), then the load


@pytest.mark.parametrize("how", ["content-encoding", "gz-name"])
def test_an_http_source_streams_gzip(es, tmp_path, how):
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    docs = [{"id": f"u{i}", "title": f"t {i}"} for i in range(40)]
    body = gzip.compress("".join(json.dumps(d) + "\n" for d in docs).encode())

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server API)
            self.send_response(200)
            if how == "content-encoding":
                self.send_header("Content-Encoding", "gzip")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        resource = documents("seed", "movies", tmp_path / "unused.ndjson")
        name = "docs.ndjson" if how == "content-encoding" else "docs.ndjson.gz"
        resource.spec["source"] = f"http://127.0.0.1:{server.server_port}/{name}"
        resources = [index("movies", SETTINGS, MOVIE_MAPPINGS), resource]
        converge(resources, ctx_for(es), command="pytest")
        assert es.count(index="movies")["count"] == 40
        assert not make_plan(resources, ctx_for(es)).has_changes
    finally:
        server.shutdown()
