"""The README's API key privileges are exactly what the tool needs (issue 11, item 1).

The key is created from the role descriptor printed in README.md ("Pointing it at your cluster"), on a sandbox with
security on (it authorises every request as Elasticsearch does, sandbox/security/). With that key the example stack
(tiny model) goes through plan, apply, check, status, search, an index replacement and destroy through the engine's
public functions (those tasks.py calls), with the client configured from ELASTICSEARCH_URL / ELASTIC_API_KEY as a
pipeline does. A key missing any one privilege of the list is refused with 403 at some step, and changes nothing.

One applied stack (module fixture) serves every case; the replacement and destroy test runs last.
"""

from __future__ import annotations

import copy
import json
import re

import pytest

from provisioning import ProvisioningError, run_checks
from provisioning.adhoc import format_hits, search_body
from sandbox.server import Sandbox
from testbed.example_stack import INDEX, LEDGER, ROOT, STACK_VARIABLES, ExampleStack, stack_state

BOOTSTRAP = "bootstrap-superuser-key"  # the sandbox's bootstrap credential (superuser), not a secret


def readme_role() -> dict:
    """The role descriptor of the README's `POST /_security/api_key` example: the documented privileges."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```json\nPOST /_security/api_key\n(.*?)```", text, re.DOTALL)
    assert block, "README.md has no POST /_security/api_key example"
    (role,) = json.loads(block.group(1))["role_descriptors"].values()
    return role


def without(role: dict, privilege: str) -> dict:
    """The role minus one entry of the README list: a cluster privilege, or the index group of a name pattern."""
    reduced = copy.deepcopy(role)
    if privilege in reduced["cluster"]:
        reduced["cluster"].remove(privilege)
    else:
        kept = [g for g in reduced["indices"] if privilege not in g["names"]]
        assert len(kept) == len(reduced["indices"]) - 1, privilege
        reduced["indices"] = kept
    return reduced


def readme_entries() -> list[str]:
    role = readme_role()
    return role["cluster"] + [name for group in role["indices"] for name in group["names"]]


@pytest.fixture(scope="module")
def secured(tiny_model_dir, traced_artifacts, tmp_path_factory):
    """A sandbox with security on, its superuser client, and the example stack with the tiny model."""
    from elasticsearch import Elasticsearch

    server = Sandbox(api_keys=(BOOTSTRAP,)).start()
    admin = Elasticsearch(server.url, api_key=BOOTSTRAP, request_timeout=60)
    workdir = tmp_path_factory.mktemp("api-key-privileges")
    with pytest.MonkeyPatch.context() as mp:
        for name in STACK_VARIABLES:
            mp.delenv(name, raising=False)
        yield server, admin, ExampleStack(model_path=tiny_model_dir, artifacts=traced_artifacts, workdir=workdir)
    admin.close()
    server.stop()


def key_client(server: Sandbox, admin, role: dict, name: str):
    """An engine client (provisioning.connect, from the variables a pipeline sets) with a new key for `role`."""
    from provisioning import connect

    created = admin.security.create_api_key(name=name, role_descriptors={"es-stack": role}).body
    return connect({"ELASTICSEARCH_URL": server.url, "ELASTIC_API_KEY": created["encoded"]}, max_retries=0)


def denials(server: Sandbox, since: int) -> list[dict]:
    return [e for e in server.log.entries(since) if e["status"] == 403]


@pytest.fixture(scope="module")
def applied(secured):
    """plan then apply with exactly the README's privileges; no request is refused."""
    server, admin, stack = secured
    es = key_client(server, admin, readme_role(), "readme-apply")
    since = len(server.log.entries())
    plan = stack.plan(es)
    assert plan.has_changes
    result = stack.apply(es)
    assert result.applied and not result.checks_failed, [c for c in result.checks if not c.ok]
    assert denials(server, since) == []
    return server, admin, stack


def test_plan_check_status_and_search_need_nothing_more(applied):
    server, admin, stack = applied
    es = key_client(server, admin, readme_role(), "readme-read")
    since = len(server.log.entries())
    assert not stack.plan(es).has_changes  # plan, and status (the same read-only plan)
    checks = run_checks(stack.context(es), stack.resources(), manual=True)
    assert checks and all(c.ok for c in checks)
    # `invoke search --rerank`: the reranked multi_match of tasks.search
    request = search_body("crime", fields=["title", "plot", "genre"], rerank="flesh-eating bad guy",
                          inference_id="my-msmarco-minilm-model")
    hits = es.search(index=INDEX, body=request).body
    assert "The Silence of the Lambs" in format_hits(hits, ["title", "plot"])
    assert denials(server, since) == []
    assert {"/_msearch", "/movies/_search"} <= {e["path"] for e in server.log.entries(since)}


def test_manage_instead_of_manage_ml_and_manage_inference_is_enough(applied):
    """README: "manage_ml and manage_inference (or manage)"."""
    server, admin, stack = applied
    role = readme_role()
    role["cluster"] = ["manage"]
    es = key_client(server, admin, role, "readme-manage")
    since = len(server.log.entries())
    assert not stack.plan(es).has_changes
    assert denials(server, since) == []


# What needs each privilege of the README list, so that a key without it meets a 403 (ES's denial, passed on):
# creating the stack (model upload: manage_ml; the endpoint: manage_inference; reads of the indices and the
# ledger: their index privileges), changing an index (its body checked by _index_template/_simulate:
# manage_index_templates; a replacement polls its reindex task: monitor, and cancels one that times out:
# cancel_task).
CREATES = ("manage_ml", "manage_inference")


@pytest.mark.parametrize("missing", readme_entries())
def test_a_key_without_one_readme_privilege_is_refused(applied, missing, tmp_path):
    server, admin, stack = applied
    if missing in CREATES:
        fresh = Sandbox(api_keys=(BOOTSTRAP,)).start()  # the stack created from nothing
        try:
            from elasticsearch import Elasticsearch

            fresh_admin = Elasticsearch(fresh.url, api_key=BOOTSTRAP, request_timeout=60)
            es = key_client(fresh, fresh_admin, without(readme_role(), missing), f"without-{missing}")
            with pytest.raises(ProvisioningError) as refused:
                stack.apply(es)
            assert denials(fresh, 0), "no request was refused with 403"
        finally:
            fresh.stop()
        assert "is unauthorized for API key id" in str(refused.value), refused.value
        return
    before = stack_state(admin)
    es = key_client(server, admin, without(readme_role(), missing), f"without-{missing}")
    since = len(server.log.entries())
    stack.extra_vars = {"MOVIES_SHARDS": "2"}  # a change to make, so apply really tries to write
    if missing == "cancel_task":  # needed only when a reindex must be stopped: make it time out
        server.cluster.pace.reindex_docs_per_second = 1
    try:
        with pytest.raises(ProvisioningError) as refused:
            stack.plan(es)
            stack.apply(es, wait_timeout=2 if missing == "cancel_task" else 60)
    finally:
        stack.extra_vars = {}
        server.cluster.pace.reindex_docs_per_second = None
    assert "is unauthorized for API key id" in str(refused.value), refused.value  # ES's denial, passed on
    assert denials(server, since), "no request was refused with 403"
    if missing == "cancel_task":
        # the copy could not be stopped: the old index still serves every document and takes writes again
        assert list(admin.indices.get_alias(name=INDEX).body) == ["movies-000001"]
        settings = admin.indices.get_settings(index="movies-000001", flat_settings=True).body
        assert settings["movies-000001"]["settings"].get("index.blocks.write") != "true"
        running = admin.tasks.list(actions="*reindex", group_by="none").body.get("tasks") or []
        assert running, "the reindex task should still be running: its cancel was refused"
        for task in running:
            admin.tasks.cancel(task_id=f"{task['node']}:{task['id']}")
        admin.options(ignore_status=404).indices.delete(index="movies-000002")
    assert stack_state(admin) == before  # refused before anything changed, or rolled back


def test_replacement_and_destroy_with_the_readme_key(applied):
    """Runs last: an index replacement (number_of_shards), then destroy, with exactly the README's privileges."""
    server, admin, stack = applied
    es = key_client(server, admin, readme_role(), "readme-replace-destroy")
    since = len(server.log.entries())
    stack.extra_vars = {"MOVIES_SHARDS": "2"}
    try:
        plan = stack.plan(es)
        assert [c.action for c in plan.changes if c.key == f"index/{INDEX}"] == ["replace"]
        result = stack.apply(es)
        assert not result.checks_failed
        physical = list(admin.indices.get_alias(name=INDEX).body)
        assert physical == ["movies-000002"]
        settings = admin.indices.get_settings(index=physical[0], flat_settings=True).body
        assert settings[physical[0]]["settings"]["index.number_of_shards"] == "2"
        stack.destroy(es)
    finally:
        stack.extra_vars = {}
    assert denials(server, since) == []
    # everything is gone but the (empty) ownership ledger, which destroy keeps
    assert stack_state(admin) == {"indices": [LEDGER], "documents": {}, "orphan_indices": [], "models": [],
                                  "fully_defined": {}, "deployments": [], "endpoints": [], "ledger": []}
