"""Issue 16: the 9.x client talks to 8.x clusters with compatible-with=8, negotiated on first contact
(provisioning/compat.py), and to 9.x clusters exactly as before."""

from __future__ import annotations

import pytest
from elasticsearch import BadRequestError, Elasticsearch

from provisioning import compat
from provisioning.connection import connect
from provisioning.model import Request
from sandbox.server import Sandbox


@pytest.fixture(scope="module", params=["8.19.0", "9.1.0"])
def server(request):
    server = Sandbox(version=request.param).start()
    yield server
    server.stop()


@pytest.fixture
def sb(server):
    server.reset()
    yield server
    server.reset()


def test_the_plain_9x_client_is_refused_by_an_8x_cluster():
    server = Sandbox(version="8.19.0").start()
    try:
        with pytest.raises(BadRequestError) as caught:
            Elasticsearch(server.url).indices.create(index="x")
        assert "Accept version must be either version 8 or 7, but found 9" in str(caught.value.body)
    finally:
        server.stop()


def test_connect_negotiates_the_clusters_major_on_first_contact(sb):
    client = connect(url=sb.url)
    client.indices.create(index="movies", mappings={"properties": {"title": {"type": "text"}}})
    client.bulk(operations=[{"index": {"_index": "movies", "_id": "1"}}, {"title": "Heat"}], refresh=True)
    assert client.count(index="movies")["count"] == 1
    state = compat.negotiation(client)
    eight = sb.cluster.version.startswith("8.")
    assert state.compatible_with() == (8 if eight else None)
    # 9.x: the requests themselves, nothing more; 8.x: the first one refused (its version named), sent again
    first = [(e["path"], e["status"]) for e in sb.log.entries()][:3]
    assert first == ([("/movies", 400), ("/movies", 200), ("/_bulk", 200)] if eight else
                     [("/movies", 200), ("/_bulk", 200), ("/movies/_count", 200)])
    # the full version is asked only when wanted, then remembered (copies share it)
    assert compat.cluster_version(client.options(request_timeout=5)) == sb.cluster.version
    assert state.version == sb.cluster.version


def test_planned_requests_with_explicit_json_headers_follow_the_negotiated_version(sb):
    """provisioning/operations.py sends planned requests with perform_request and application/json headers."""
    from provisioning.operations import Run, send

    class Ctx:
        client = connect(url=sb.url)

    answer = send(Run(ctx=Ctx(), change=None), Request("PUT", "/planned", body={"settings": {"number_of_shards": 1}}))
    assert answer.body["acknowledged"] is True


def test_the_full_version_comes_from_ml_info_with_the_readme_privileges():
    server = Sandbox(version="8.19.0", api_keys=("admin-key",)).start()
    try:
        admin = Elasticsearch(server.url, api_key="admin-key", node_class=compat.node_class())
        key = admin.security.create_api_key(name="no-monitor", role_descriptors={
            "r": {"cluster": ["manage_ml"], "indices": [{"names": ["x*"], "privileges": ["all"]}]}})["encoded"]
        client = connect({"ELASTICSEARCH_URL": server.url, "ELASTIC_API_KEY": key})
        client.indices.create(index="x1")
        assert compat.cluster_version(client) == "8.19.0"
        assert compat.negotiation(client).version == "8.19.0"
    finally:
        server.stop()


def test_headers_are_rewritten_only_for_an_older_major():
    from elastic_transport import HttpHeaders

    headers = HttpHeaders({"accept": "application/vnd.elasticsearch+json; compatible-with=9",
                           "content-type": "application/vnd.elasticsearch+x-ndjson; compatible-with=9"})
    rewritten = compat._rewrite(headers, 8)
    assert rewritten["accept"] == "application/vnd.elasticsearch+json; compatible-with=8"
    assert rewritten["content-type"] == "application/vnd.elasticsearch+x-ndjson; compatible-with=8"
    assert compat.Negotiation(version="9.1.0").compatible_with() is None
    assert compat.Negotiation(version="10.0.0").compatible_with() is None  # 10 accepts 9 (N-1)
    assert compat.Negotiation(version="8.15.3").compatible_with() == 8
