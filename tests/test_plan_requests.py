"""A plan reads with a fixed number of requests whatever the number and the length of the names (issue 14): the
indices in ONE GET (their names, or prefix patterns covering them when the names would not fit in a URL)."""

from __future__ import annotations

from provisioning import converge, make_plan
from provisioning.kinds.index import MAX_URL_NAMES, covering_patterns
from tests.engine_helpers import ctx_for, documents, index, write_docs

SETTINGS = {"number_of_shards": 1, "number_of_replicas": 0}
MAPPINGS = {"properties": {"title": {"type": "text"}}}


def test_covering_patterns_fit_one_url_and_cover_every_name():
    short = [f"idx-{i}" for i in range(10)]
    assert covering_patterns(short) == sorted(short + [f"{n}-00*" for n in short])  # exact when they fit
    long = [f"team-{t}-semantic-search-catalogue-products-{'x' * 40}-{i:04d}" for t in "abc" for i in range(300)]
    patterns = covering_patterns(long)
    assert len(",".join(patterns)) <= MAX_URL_NAMES
    for name in long:
        assert any(name.startswith(p[:-1]) for p in patterns), name
    assert len(",".join(covering_patterns([chr(97 + i % 26) * 300 + str(i) for i in range(500)]))) <= MAX_URL_NAMES


def _plan_requests(es, resources):
    since = es.perform_request("GET", "/_sandbox/requests")["last_seq"]
    plan = make_plan(resources, ctx_for(es))
    return plan, es.perform_request("GET", "/_sandbox/requests", params={"since": since})["requests"]


def test_a_no_op_plan_makes_the_same_requests_for_1_or_40_indices_with_long_names(es, tmp_path):
    def stack(n):
        out = []
        for i in range(n):
            name = f"catalogue-products-semantic-search-{'long-name-' * 10}{i:03d}"
            out.append(index(name, SETTINGS, MAPPINGS))
            if i % 4 == 0:
                data = write_docs(tmp_path / f"d{i}.json", [{"id": f"{i}-{j}", "title": "t"} for j in range(3)])
                out.append(documents(f"{name}-seed", name, data))
        return out

    counts = {}
    for n in (1, 40):
        es.perform_request("POST", "/_sandbox/reset")
        resources = stack(n)
        converge(resources, ctx_for(es), command="pytest")
        # an index nobody declared, matching the covering pattern: read, and left out
        es.indices.create(index="catalogue-products-semantic-search-foreign")
        plan, log = _plan_requests(es, resources)
        assert not plan.has_changes, [c.key for c in plan.changes if c.action != "noop"]
        assert sum(r["method"] == "GET" and "/_sandbox" not in r["path"] and r["path"].count("*") > 0
                   for r in log) <= 1
        counts[n] = sorted((r["method"], r["path"].split("/")[-1] if "*" in r["path"] else r["path"]) for r in log)
    assert len(counts[1]) == len(counts[40]), counts


def test_reads_of_single_changes_in_parallel_threads_each_get_their_counts(es):
    from concurrent.futures import ThreadPoolExecutor

    from provisioning.kinds import KINDS

    resources = [index(f"par-{i}", SETTINGS, MAPPINGS) for i in range(6)]
    converge(resources, ctx_for(es), command="pytest")
    for i in range(6):
        es.index(index=f"par-{i}", id="1", document={"title": "t"}, refresh=True)
    ctx = ctx_for(es)  # one context shared by the threads, as the applier's workers share it

    def read(resource):
        return KINDS["index"].read(ctx, [resource], {})[resource.name]["doc_count"]

    with ThreadPoolExecutor(6) as pool:
        for _ in range(5):
            assert list(pool.map(read, resources)) == [1] * 6
