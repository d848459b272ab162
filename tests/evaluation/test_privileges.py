"""An evaluation with an API key: `all` on the index (the README's key) runs `_rank_eval` with no refusal; a key
with only `read` cannot resolve the alias (GET <index> needs view_index_metadata), so the evaluation falls back to
one `_msearch` per variant and says so, with the same numbers."""

from __future__ import annotations

import pytest
from elasticsearch import Elasticsearch

from provisioning import connect
from provisioning.evaluation.run import run_evaluation
from sandbox.server import Sandbox
from tests.engine_helpers import ctx_for
from tests.evaluation.test_run import FILMS, MAPPINGS, evaluation

BOOTSTRAP = "bootstrap-superuser-key"  # the sandbox's bootstrap credential (superuser), not a secret


@pytest.fixture(scope="module")
def secured():
    server = Sandbox(api_keys=(BOOTSTRAP,)).start()
    admin = Elasticsearch(server.url, api_key=BOOTSTRAP, request_timeout=60)
    admin.indices.create(index="films-000001", mappings=MAPPINGS, aliases={"films": {}})
    for film in FILMS:
        admin.index(index="films", id=film["id"], document=film)
    admin.indices.refresh(index="films")
    yield server, admin
    admin.close()
    server.stop()


def key_ctx(server, admin, privileges):
    role = {"cluster": [], "indices": [{"names": ["films*"], "privileges": privileges}]}
    key = admin.security.create_api_key(name="eval", role_descriptors={"eval": role}).body["encoded"]
    return ctx_for(connect({"ELASTICSEARCH_URL": server.url, "ELASTIC_API_KEY": key}, max_retries=0))


def test_all_runs_rank_eval_and_read_falls_back_to_msearch(secured):
    server, admin = secured
    since = server.log.last_seq
    full = run_evaluation(key_ctx(server, admin, ["all"]), evaluation())
    assert full.method == "rank_eval" and not full.notes
    # the connection's version probe (provisioning/compat.py: GET /, else GET _ml/info) is refused to a key without
    # cluster privileges and is not the evaluation's: every request the evaluation sent was allowed
    probes = {"/", "/_ml/info"}
    assert [e for e in server.log.entries(since) if e["status"] == 403 and e["path"] not in probes] == []
    read = run_evaluation(key_ctx(server, admin, ["read"]), evaluation())
    assert read.method == "msearch"
    assert read.notes and "_rank_eval not used: GET films (to match ratings to its concrete index) answered 403" \
        in read.notes[0]
    for variant, scores in full.scores.items():
        assert read.scores[variant] == pytest.approx(scores)
