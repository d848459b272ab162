"""Kind `documents` against the sandbox: bulk load, idempotence, drift detection, update, delete."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from provisioning import ManifestError, Refused, converge, make_plan
from tests.engine_helpers import MOVIE_MAPPINGS, ctx_for, documents, index, write_docs, writes_since

SETTINGS = {"number_of_shards": 1, "number_of_replicas": 0}
MOVIES = [{"id": f"m{i}", "title": f"Movie {i}", "year": 2000 + i} for i in range(30)]


def apply(resources, es, **options):
    return converge(resources, ctx_for(es, **options), command="pytest")


def stack(path):
    return [index("movies", SETTINGS, MOVIE_MAPPINGS), documents("movies-seed", "movies", path)]


def test_create_loads_every_document_by_id(es, tmp_path):
    apply(stack(write_docs(tmp_path / "movies.json", MOVIES)), es)
    assert es.count(index="movies")["count"] == 30
    assert es.get(index="movies", id="m7")["_source"]["title"] == "Movie 7"
    ctx = ctx_for(es)
    ctx.ledger.load()
    entry = ctx.ledger.owned("documents")["movies-seed"]
    assert entry["count"] == 30 and entry["index"] == "movies" and entry["content_hash"].startswith("sha256:")


def test_ndjson_source_and_noop_plan(es, sandbox, tmp_path):
    path = tmp_path / "movies.ndjson"
    path.write_text("\n".join(json.dumps(m) for m in MOVIES) + "\n")
    resources = stack(path)
    apply(resources, es)
    assert es.count(index="movies")["count"] == 30
    start = sandbox.log.last_seq
    plan = make_plan(resources, ctx_for(es))
    assert [c.action for c in plan.changes] == ["noop", "noop"]
    # one ledger search, the index GET, and ONE _msearch for the index counts and all documents resources
    assert len([e for e in sandbox.log.entries(start) if e["path"].endswith("_msearch")]) == 1
    assert writes_since(sandbox, start) == []


def test_changed_file_updates_and_removes_documents_no_longer_listed(es, tmp_path):
    path = write_docs(tmp_path / "movies.json", MOVIES)
    apply(stack(path), es)
    changed = [dict(m, title=m["title"].upper()) for m in MOVIES[:20]]
    write_docs(path, changed)
    plan = make_plan(stack(path), ctx_for(es))
    assert [c.action for c in plan.changes] == ["noop", "update"]
    # what changes, by id: 20 changed, 10 removed (data loss, refused without the flag)
    assert [(d.path, d.before, d.after) for d in plan.changes[1].diffs] == [
        ("documents.changed", None, "20: m0, m1, m10, m11, m12, m13, m14, m15, m16, m17 and 10 more"),
        ("documents.removed", "10: m20, m21, m22, m23, m24, m25, m26, m27, m28, m29", None)]
    assert [h.kind for h in plan.changes[1].hazards] == ["data_loss"]
    with pytest.raises(Refused, match="removes 10 documents from movies"):
        apply(stack(path), es)
    apply(stack(path), es, allow_data_loss=True)
    assert es.count(index="movies")["count"] == 20
    assert es.get(index="movies", id="m3")["_source"]["title"] == "MOVIE 3"
    assert not es.exists(index="movies", id="m25")


def test_documents_deleted_out_of_band_are_reloaded(es, tmp_path):
    path = write_docs(tmp_path / "movies.json", MOVIES)
    apply(stack(path), es)
    es.delete(index="movies", id="m1", refresh=True)
    plan = make_plan(stack(path), ctx_for(es))
    change = plan.changes[1]
    assert change.action == "update" and [d.path for d in change.diffs] == ["documents.present"]
    assert not change.hazards
    apply(stack(path), es)
    assert es.exists(index="movies", id="m1")


def test_removed_documents_resource_deletes_its_documents_only(es, tmp_path):
    path = write_docs(tmp_path / "movies.json", MOVIES[:5])
    apply(stack(path), es)
    es.index(index="movies", id="mine", document={"title": "Added by hand"}, refresh=True)
    apply([index("movies", SETTINGS, MOVIE_MAPPINGS)], es, allow_data_loss=True)
    assert es.count(index="movies")["count"] == 1
    assert es.exists(index="movies", id="mine")


def test_destroy_deletes_the_index_without_deleting_documents_one_by_one(es, sandbox, tmp_path):
    resources = stack(write_docs(tmp_path / "movies.json", MOVIES))
    apply(resources, es)
    start = sandbox.log.last_seq
    converge(resources, ctx_for(es, allow_data_loss=True), command="pytest", destroy=True)
    paths = [e["path"] for e in writes_since(sandbox, start)]
    assert "/movies-000001" in paths
    assert not any(p.endswith("_bulk") for p in paths)


def test_unreadable_source_is_a_manifest_error_naming_the_file(es, tmp_path):
    path = tmp_path / "movies.json"
    path.write_text('[{"id": 1}, {"title": "no id"}]')
    with pytest.raises(ManifestError, match="movies-seed"):
        make_plan(stack(path), ctx_for(es))


def test_url_source_is_fetched_at_plan_time(es, tmp_path):
    body = json.dumps(MOVIES[:3]).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server API)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        resource = documents("movies-seed", "movies", tmp_path / "unused.json")
        resource.spec["source"] = f"http://127.0.0.1:{server.server_port}/movies.json"
        apply([index("movies", SETTINGS, MOVIE_MAPPINGS), resource], es)
        assert es.count(index="movies")["count"] == 3
        assert not make_plan([index("movies", SETTINGS, MOVIE_MAPPINGS), resource], ctx_for(es)).has_changes
    finally:
        server.shutdown()


def test_changing_the_target_index_moves_the_documents(es, tmp_path):
    path = write_docs(tmp_path / "movies.json", MOVIES[:4])
    apply(stack(path) + [index("archive", SETTINGS, MOVIE_MAPPINGS)], es)
    moved = documents("movies-seed", "archive", path)
    resources = [index("movies", SETTINGS, MOVIE_MAPPINGS), index("archive", SETTINGS, MOVIE_MAPPINGS), moved]
    plan = make_plan(resources, ctx_for(es))
    assert [(c.key, c.action) for c in plan.changes if c.action != "noop"] == [("documents/movies-seed", "replace")]
    apply(resources, es, allow_data_loss=True)  # the documents leave `movies`
    assert es.count(index="movies")["count"] == 0 and es.count(index="archive")["count"] == 4
    assert not make_plan(resources, ctx_for(es)).has_changes
