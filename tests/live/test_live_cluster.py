"""The example stack's whole life on a REAL cluster (issue 11, item 8): skipped unless ES_TEST_URL is set.

    ES_TEST_URL=https://host:9200 ES_TEST_API_KEY=... .venv/bin/pytest -q tests/live

Runs plan, apply, a second plan (nothing to change), the checks, status, a search, an index replacement and
destroy, with the tiny local cross-encoder (a real cluster reaches no model hub from here either), as stack
`es-stack-live-test`. ES_TEST_ADMIN_API_KEY, when set, is used only to create a key with exactly the README's
privileges, which then runs everything. The stack is destroyed at the end whatever happened. Needs a cluster with
an ML node and a licence that allows third-party model deployment and the reranker (a trial), and none of the
tutorial's objects (`movies`, the model, the endpoint) owned by anyone else: the tool refuses those.
Nothing here uses the sandbox's hooks; the same file runs against a sandbox started by `invoke sandbox`.
"""

from __future__ import annotations

import json
import os
import re

import pytest

from provisioning import connect, run_checks
from provisioning.adhoc import search_body
from testbed.example_stack import INDEX, ROOT, STACK_VARIABLES, ExampleStack

URL = os.environ.get("ES_TEST_URL")
pytestmark = pytest.mark.skipif(not URL, reason="ES_TEST_URL is not set: no real cluster to run against")


def readme_role() -> dict:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```json\nPOST /_security/api_key\n(.*?)```", text, re.DOTALL)
    (role,) = json.loads(block.group(1))["role_descriptors"].values()
    return role


@pytest.fixture(scope="module")
def client():
    environ = {"ELASTICSEARCH_URL": URL}
    admin_key = os.environ.get("ES_TEST_ADMIN_API_KEY")
    if admin_key:
        admin = connect({**environ, "ELASTIC_API_KEY": admin_key})
        created = admin.security.create_api_key(name="es-stack-live-test",
                                                role_descriptors={"es-stack": readme_role()}).body
        environ["ELASTIC_API_KEY"] = created["encoded"]
    elif os.environ.get("ES_TEST_API_KEY"):
        environ["ELASTIC_API_KEY"] = os.environ["ES_TEST_API_KEY"]
    es = connect(environ)
    yield es
    es.close()


@pytest.fixture(scope="module")
def stack(client, tmp_path_factory):
    from testbed.tiny_model import build_tiny_cross_encoder

    with pytest.MonkeyPatch.context() as mp:
        for name in STACK_VARIABLES:
            mp.delenv(name, raising=False)
        base = tmp_path_factory.mktemp("live")
        model = build_tiny_cross_encoder(base / "tiny-cross-encoder")
        (base / "artifacts").mkdir()
        (base / "work").mkdir()
        example = ExampleStack(model_path=model, artifacts=base / "artifacts", workdir=base / "work",
                               stack="es-stack-live-test")
        yield example
        example.extra_vars = {}
        example.destroy(client)  # cleans up whatever the test got to


def test_the_example_stack_lives_and_dies_on_a_real_cluster(stack, client):
    first = stack.plan(client)
    assert first.has_changes and {c.action for c in first.changes} == {"create"}
    result = stack.apply(client)
    assert result.applied and not result.checks_failed, [c for c in result.checks if not c.ok]
    assert not stack.plan(client).has_changes  # idempotent: a second apply would do nothing
    checks = run_checks(stack.context(client), stack.resources(), manual=True)
    assert checks and all(c.ok for c in checks)
    hits = client.search(index=INDEX, body=search_body("crime", fields=["title", "plot", "genre"],
                                                       rerank="flesh-eating bad guy",
                                                       inference_id="my-msmarco-minilm-model")).body
    assert hits["hits"]["hits"]
    stack.extra_vars = {"MOVIES_SHARDS": "2"}  # a replacement: reindex behind the alias
    replaced = stack.apply(client)
    assert [c.action for c in replaced.applied if c.key == f"index/{INDEX}"] == ["replace"]
    assert client.count(index=INDEX)["count"] == 25
    destroyed = stack.destroy(client)
    assert {c.action for c in destroyed.applied} == {"delete"}
    assert not client.indices.exists_alias(name=INDEX)
