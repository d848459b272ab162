"""Sandbox security: API keys, `_authenticate` and per-action authorisation with Elasticsearch's denial messages.

Expected messages follow ES 9.x AuthorizationDenialMessages.Default#actionDenied and the privilege lists of
ClusterPrivilegeResolver / IndexPrivilege (the bulk item lists are those ES's AuthorizationServiceTests
assert: [create_doc,create,index,write,all], [create,index,write,all], [delete,write,all]).
"""

from __future__ import annotations

import base64
import time

import pytest
from elasticsearch import ApiError, AuthenticationException, AuthorizationException, Elasticsearch

from sandbox.security import actions, privileges
from sandbox.server import Sandbox, collect_routes

BOOTSTRAP = "bootstrap-superuser-key"


@pytest.fixture(scope="module")
def server():
    sb = Sandbox(api_keys=(BOOTSTRAP,), users={"elastic": "changeme"}).start()
    yield sb
    sb.stop()


@pytest.fixture
def admin(server):
    server.reset()
    client = Elasticsearch(server.url, api_key=BOOTSTRAP)
    client.indices.create(index="movies-000001", aliases={"movies": {}})
    client.indices.create(index="other")
    yield client
    client.close()
    server.reset()


def key(server, admin, role: dict | None, name: str = "k", **extra):
    body = admin.security.create_api_key(name=name, role_descriptors={"r": role} if role else {}, **extra).body
    return body, Elasticsearch(server.url, api_key=body["encoded"])


MOVIES_ALL = {"indices": [{"names": ["movies*"], "privileges": ["all"]}]}


def reason(exc: ApiError) -> str:
    return exc.body["error"]["reason"]


# ----------------------------------------------------------------------------------------------- the route table


def test_every_route_is_an_elasticsearch_action():
    for route in collect_routes():
        if route.rule.startswith("/_sandbox"):
            continue
        for method in route.methods:
            action = actions.action_for(method, route.rule)
            assert action is not None, (method, route.rule)
            assert privileges.is_cluster_action(action.name) or privileges.is_index_action(action.name), action


def test_privilege_lists_are_ordered_as_elasticsearch_sorts_them():
    assert privileges.granting("index", "indices:admin/create") == ["create_index", "manage", "all"]
    assert privileges.granting("index", actions.CREATE_OP) == ["create_doc", "create", "index", "write", "all"]
    assert privileges.granting("index", actions.INDEX_OP) == ["create", "index", "write", "all"]
    assert privileges.granting("index", actions.DELETE) == ["delete", "write", "all"]
    assert privileges.granting("cluster", "cluster:monitor/main") == ["monitor", "manage", "all"]


# ------------------------------------------------------------------------------------------------ keys, authn


def test_create_api_key_answers_as_elasticsearch(server, admin):
    body, client = key(server, admin, MOVIES_ALL, name="tool")
    assert list(body) == ["id", "name", "api_key", "encoded"]
    assert body["name"] == "tool" and len(body["id"]) == 20 and len(body["api_key"]) == 22
    assert base64.b64decode(body["encoded"]).decode() == f"{body['id']}:{body['api_key']}"
    expiring, _ = key(server, admin, MOVIES_ALL, name="expiring", expiration="1d")
    assert list(expiring) == ["id", "name", "expiration", "api_key", "encoded"]
    assert abs(expiring["expiration"] - (time.time() * 1000 + 86_400_000)) < 60_000


def test_authenticate_with_an_api_key_and_with_a_user(server, admin):
    body, client = key(server, admin, MOVIES_ALL, name="tool")
    me = client.security.authenticate().body
    assert me["username"] == "elastic" and me["roles"] == [] and me["authentication_type"] == "api_key"
    assert me["authentication_realm"] == me["lookup_realm"] == {"name": "_es_api_key", "type": "_es_api_key"}
    assert me["api_key"] == {"id": body["id"], "name": "tool", "managed_by": "elasticsearch", "internal": False}
    user = Elasticsearch(server.url, basic_auth=("elastic", "changeme")).security.authenticate().body
    assert user["authentication_type"] == "realm" and user["roles"] == ["superuser"] and "api_key" not in user


def test_wrong_invalidated_and_expired_keys_are_401(server, admin):
    body, client = key(server, admin, MOVIES_ALL)
    wrong = base64.b64encode(f"{body['id']}:not-the-secret".encode()).decode()
    with pytest.raises(AuthenticationException):
        Elasticsearch(server.url, api_key=wrong).security.authenticate()
    answer = admin.security.invalidate_api_key(ids=[body["id"]]).body
    assert answer == {"invalidated_api_keys": [body["id"]], "previously_invalidated_api_keys": [], "error_count": 0}
    with pytest.raises(AuthenticationException):
        client.security.authenticate()
    _, short = key(server, admin, MOVIES_ALL, expiration="1ms")
    time.sleep(0.01)
    with pytest.raises(AuthenticationException):
        short.security.authenticate()


def test_a_key_without_role_descriptors_has_its_owners_privileges(server, admin):
    user = Elasticsearch(server.url, basic_auth=("elastic", "changeme"))
    body = user.security.create_api_key(name="snapshot").body
    client = Elasticsearch(server.url, api_key=body["encoded"])
    assert client.info()["version"]["number"].startswith("9.")
    client.indices.create(index="anything")


def test_an_api_key_creates_only_keys_without_privileges(server, admin):
    _, client = key(server, admin, {"cluster": ["manage_own_api_key"], **MOVIES_ALL})
    with pytest.raises(ApiError) as refused:
        client.security.create_api_key(name="derived", role_descriptors={"r": MOVIES_ALL})
    assert refused.value.status_code == 400
    assert reason(refused.value) == ("creating derived api keys requires an explicit role descriptor that is empty "
                                     "(has no privileges)")
    assert client.security.create_api_key(name="derived").body["name"] == "derived"


def test_unknown_privilege_is_refused_at_creation(admin):
    with pytest.raises(ApiError) as refused:
        admin.security.create_api_key(name="bad", role_descriptors={"r": {"cluster": ["manage_everything"]}})
    assert refused.value.status_code == 400 and "unknown cluster privilege [manage_everything]" in reason(
        refused.value)


def test_without_credentials_configured_security_apis_are_unavailable(sandbox, es):
    with pytest.raises(ApiError) as refused:
        es.security.create_api_key(name="x")
    assert refused.value.status_code == 500 and "Security must be explicitly enabled" in reason(refused.value)
    es.indices.create(index="open")  # and everything else stays open


# -------------------------------------------------------------------------------------------------- denials


def test_cluster_and_index_denials_name_the_action_key_and_privileges(server, admin):
    body, client = key(server, admin, {"cluster": ["manage_ml"], **MOVIES_ALL})
    who = f"API key id [{body['id']}] of user [elastic]"
    with pytest.raises(AuthorizationException) as refused:
        client.info()
    assert reason(refused.value) == (f"action [cluster:monitor/main] is unauthorized for {who}, this action is "
                                     "granted by the cluster privileges [monitor,manage,all]")
    assert refused.value.body["error"]["type"] == "security_exception" and refused.value.status_code == 403
    with pytest.raises(AuthorizationException) as refused:
        client.indices.create(index="other-2")
    assert reason(refused.value) == (f"action [indices:admin/create] is unauthorized for {who} on indices "
                                     "[other-2], this action is granted by the index privileges "
                                     "[create_index,manage,all]")
    with pytest.raises(AuthorizationException) as refused:
        client.security.create_api_key(name="x")
    assert reason(refused.value).endswith("this action is granted by the cluster privileges "
                                          "[manage_api_key,manage_own_api_key,manage_security,all]")
    assert client.ml.info()["native_code"]["version"].startswith("9.")


def test_privileges_reach_the_index_behind_an_alias_and_wildcards_only_reach_granted_indices(server, admin):
    admin.index(index="movies", id="1", document={"title": "Heat"}, refresh=True)
    _, alias_only = key(server, admin, {"indices": [{"names": ["movies"], "privileges": ["read"]}]})
    assert alias_only.search(index="movies")["hits"]["total"]["value"] == 1
    with pytest.raises(AuthorizationException) as refused:
        alias_only.search(index="movies-000001")
    assert "on indices [movies-000001]" in reason(refused.value)
    _, movies = key(server, admin, {"indices": [{"names": ["movies*"], "privileges": ["view_index_metadata"]}]})
    assert sorted(movies.indices.get(index="*").body) == ["movies-000001"]  # `other` is left out, no 403
    assert movies.indices.get(index="oth*").body == {}
    assert sorted(movies.indices.get(index="movies,other", ignore_unavailable=True).body) == ["movies-000001"]
    with pytest.raises(AuthorizationException):
        movies.indices.get(index="movies,other")


def test_bulk_items_are_authorised_one_by_one(server, admin):
    body, client = key(server, admin, {"indices": [{"names": ["movies*"], "privileges": ["create_doc"]},
                                                   {"names": ["other"], "privileges": ["all"]}]})
    who = f"API key id [{body['id']}] of user [elastic]"
    result = client.bulk(operations=[
        {"create": {"_index": "movies", "_id": "1"}}, {"title": "Heat"},
        {"index": {"_index": "movies", "_id": "2"}}, {"title": "Ronin"},
        {"delete": {"_index": "movies", "_id": "1"}},
        {"index": {"_index": "other", "_id": "3"}}, {"title": "Thief"},
    ]).body
    statuses = [next(iter(item.values()))["status"] for item in result["items"]]
    assert result["errors"] and statuses == [201, 403, 403, 201]
    index_item, delete_item = result["items"][1]["index"], result["items"][2]["delete"]
    assert index_item["error"] == {"type": "security_exception", "reason": (
        f"action [indices:data/write/index:op_type/index] is unauthorized for {who} on indices [movies], this "
        "action is granted by the index privileges [create,index,write,all]")}
    assert delete_item["error"]["reason"].endswith("on indices [movies], this action is granted by the index "
                                                   "privileges [delete,write,all]")
    _, reader = key(server, admin, {"indices": [{"names": ["*"], "privileges": ["read"]}]})
    with pytest.raises(AuthorizationException) as refused:
        reader.bulk(operations=[{"index": {"_index": "movies"}}, {"title": "x"}])
    assert reason(refused.value).endswith("this action is granted by the index privileges "
                                          "[create_doc,delete,create,index,write,all]")


def test_msearch_refuses_each_search_on_its_own(server, admin):
    body, client = key(server, admin, {"indices": [{"names": ["movies*"], "privileges": ["read"]}]})
    responses = client.msearch(searches=[{"index": "movies"}, {}, {"index": "other"}, {}]).body["responses"]
    assert responses[0]["status"] == 200
    assert responses[1]["status"] == 403 and responses[1]["error"]["reason"] == (
        f"action [indices:data/read/search] is unauthorized for API key id [{body['id']}] of user [elastic] on "
        "indices [other], this action is granted by the index privileges [read,all]")


def test_aliases_and_reindex_check_every_target(server, admin):
    _, client = key(server, admin, MOVIES_ALL)
    client.indices.create(index="movies-000002")
    with pytest.raises(AuthorizationException) as refused:
        client.indices.update_aliases(actions=[{"add": {"index": "movies-000002", "alias": "other-alias"}}])
    assert "action [indices:admin/aliases]" in reason(refused.value) and "on indices [other-alias]" in reason(
        refused.value)
    client.indices.update_aliases(actions=[{"add": {"index": "movies-000002", "alias": "movies-next"}}])
    with pytest.raises(AuthorizationException) as refused:
        client.reindex(source={"index": "other"}, dest={"index": "movies-000002"})
    assert "action [indices:data/read/search]" in reason(refused.value)
    with pytest.raises(AuthorizationException) as refused:
        client.reindex(source={"index": "movies-000001"}, dest={"index": "other"})
    assert "action [indices:data/write/index:op_type/index]" in reason(refused.value)
    assert client.reindex(source={"index": "movies-000001"}, dest={"index": "movies-000002"})["failures"] == []
