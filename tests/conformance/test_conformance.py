"""The conformance runner: Elasticsearch's saved YAML REST tests against the sandbox, and the runner's own
semantics proven on small YAML snippets (so a pass means the sandbox conforms, not that the runner is lax)."""

from __future__ import annotations

import io
import os
import textwrap
from pathlib import Path

import pytest
import yaml

from conformance import runner as conformance
from conformance import wipe
from conformance.calls import _check_warnings, _decode_body, parse_warnings
from conformance.skips import Skip, SkipList
from conformance.yamlops import Context, TestFailure

SUITE = Path(__file__).parents[3] / "shared" / "es-yaml-tests"  # ../shared beside the checkout
NO_SKIPS = SkipList((), ())


# ---- the saved suite ---------------------------------------------------------------------------------------
def test_saved_elasticsearch_suite_passes_against_the_sandbox():
    if not SUITE.is_dir():
        message = (f"{SUITE} is absent: Elasticsearch's YAML REST tests are not part of the project "
                   "(they live in ../shared beside the checkout); conformance not run")
        if os.environ.get("CI"):
            pytest.fail(message + " - CI must provide it")
        pytest.skip(message)
    out = io.StringIO()
    summary = conformance.run(SUITE, out=out, next_suite=SUITE.with_name("es-yaml-tests-next"))
    assert summary.count("passed") > 0, out.getvalue()
    if summary.count("failed"):
        pytest.fail("\n".join(summary.failure_lines() + [summary.line]), pytrace=False)


# ---- assertions on a given response (no server) ------------------------------------------------------------
def steps(text: str) -> list:
    return yaml.safe_load(textwrap.dedent(text))


def check(response, text: str, stash: dict | None = None) -> Context:
    """Run assertion steps against `response`; raise TestFailure when one does not hold."""
    ctx = Context()
    ctx.set_response(response)
    ctx.stash.update(stash or {})
    conformance.Runner(None, reset=lambda: None, skips=NO_SKIPS).run_steps(ctx, steps(text), [], "test")
    return ctx


RESPONSE = {
    "version": {"number": "9.1.0"},
    "index": {"settings": {"index.number_of_shards": "1"}},
    "hits": {"hits": [{"_id": "doc_1", "_score": 2.5, "_index": "a"}, {"_id": "doc_2", "_score": 1.0}]},
    "reason": "Could not find trained model [x]",
    "flag": False,
    "zero": 0,
    "empty": {},
    "tags": ["a", "b"],
}


def test_match_regex_is_searched_with_comments_flag():
    check(RESPONSE, """
        - match: {version.number: "/^9\\\\.\\\\d+ \\\\.0$/"}
        - match: {reason: "/trained \\\\s model/"}
    """)
    with pytest.raises(TestFailure, match="does not match"):
        check(RESPONSE, "- match: {version.number: /^8\\./}")


def test_match_regex_needs_a_string():
    with pytest.raises(TestFailure, match="expected a string"):
        check(RESPONSE, "- match: {zero: /0/}")


def test_missing_path_is_null():
    check(RESPONSE, """
        - match: {version.codec: null}
        - match: {no.such.path: null}
        - is_false: no.such.path
    """)
    with pytest.raises(TestFailure):
        check(RESPONSE, "- match: {zero: null}")
    with pytest.raises(TestFailure):
        check(RESPONSE, "- is_true: no.such.path")


def test_match_is_strict_json_equality():
    check(RESPONSE, "- match: {hits.hits.1: {_id: doc_2, _score: 1}}")  # 1 and 1.0 are the same JSON number
    with pytest.raises(TestFailure, match="unexpected keys"):
        check(RESPONSE, "- match: {hits.hits.0: {_id: doc_1, _score: 2.5}}")
    with pytest.raises(TestFailure):
        check(RESPONSE, "- match: {flag: 0}")  # false is not 0
    with pytest.raises(TestFailure):
        check(RESPONSE, "- match: {zero: '0'}")


def test_escaped_dots_and_whole_body():
    check(RESPONSE, """
        - match: {index.settings.index\\.number_of_shards: "1"}
        - is_true: ''
        - match: {$body.version.number: "9.1.0"}
    """)
    check({}, "- match: {'': {}}")
    check(True, "- is_true: ''")
    check(False, "- is_false: ''")


def test_truthiness_follows_the_java_runner():
    check(RESPONSE, "- is_false: flag\n- is_false: zero\n- is_true: empty\n- is_true: tags")
    check({"s": "false", "S": "FALSE", "z": "0", "e": ""}, "- is_false: s\n- is_false: S\n- is_false: z\n- is_false: e")
    with pytest.raises(TestFailure):
        check(RESPONSE, "- is_true: flag")


def test_contains_is_subset_matching_for_objects_and_substring_for_strings():
    check(RESPONSE, """
        - contains: {hits.hits: {_id: doc_2}}
        - contains: {hits.hits: {_id: doc_1, _index: a}}
        - contains: {reason: "find trained"}
    """)
    with pytest.raises(TestFailure, match="not found"):
        check(RESPONSE, "- contains: {hits.hits: {_id: doc_3}}")
    with pytest.raises(TestFailure, match="not found"):
        check(RESPONSE, "- contains: {hits.hits: {_id: doc_2, _index: a}}")
    with pytest.raises(TestFailure, match="only an object in a list"):  # the Java runner supports no more
        check(RESPONSE, "- contains: {tags: b}")


def test_length_close_to_and_comparisons():
    check(RESPONSE, """
        - length: {hits.hits: 2}
        - length: {version: 1}
        - length: {reason: 32}
        - close_to: {hits.hits.0._score: {value: 2.4, error: 0.11}}
        - gt: {hits.hits.0._score: 2}
        - lte: {zero: 0}
    """)
    with pytest.raises(TestFailure):
        check(RESPONSE, "- length: {hits.hits: 3}")
    with pytest.raises(TestFailure):
        check(RESPONSE, "- close_to: {hits.hits.0._score: {value: 2.4, error: 0.05}}")


def test_out_of_bounds_list_index_is_an_error():
    with pytest.raises(TestFailure, match="out of bounds"):
        check(RESPONSE, "- match: {hits.hits.5._id: null}")


def test_stash_set_and_use_in_values_keys_and_paths():
    ctx = check(RESPONSE, """
        - set: {hits.hits.0._id: first}
        - match: {hits.hits.0._id: $first}
        - match: {reason: "Could not find trained model [${model}]"}
        - match: {hits.hits.$one._id: doc_2}
    """, stash={"model": "x", "one": 1})
    assert ctx.stash["first"] == "doc_1"
    with pytest.raises(TestFailure, match="stashed value not found"):
        check(RESPONSE, "- match: {reason: $unknown}")
    with pytest.raises(TestFailure, match="stashed value not found"):  # a null stash is an error too (ES Stash)
        check(RESPONSE, "- set: {no.such.path: nothing}\n- match: {reason: $nothing}")
    check({"text": "${literal}"}, "- match: {text: '\\${literal}'}")  # an escaped ${...} stays as written


def test_transform_and_set_base64_encode():
    ctx = check({}, '- transform_and_set: {creds: "#base64Encode(test_user:x-pack-test-password)"}')
    assert ctx.stash["creds"] == "dGVzdF91c2VyOngtcGFjay10ZXN0LXBhc3N3b3Jk"


def test_warning_headers_must_be_expected_or_allowed():
    got = parse_warnings({"Warning": ['299 Elasticsearch-9.1.0-abc "[types removal] \\"x\\" is deprecated"']})
    assert got == ['[types removal] "x" is deprecated']
    _check_warnings("api", got, expected=got, expected_regex=[], allowed=set(), allowed_regex=[])
    _check_warnings("api", got, expected=[], expected_regex=[], allowed=set(got), allowed_regex=[])
    _check_warnings("api", got, expected=[], expected_regex=[], allowed=set(), allowed_regex=[r"\[types removal\].*"])
    with pytest.raises(TestFailure, match="unexpected warning"):
        _check_warnings("api", got, expected=[], expected_regex=[], allowed=set(), allowed_regex=[])
    with pytest.raises(TestFailure, match="unexpected warning"):  # a regex must match the whole warning
        _check_warnings("api", got, expected=[], expected_regex=[], allowed=set(), allowed_regex=["types removal"])
    with pytest.raises(TestFailure, match="not received"):
        _check_warnings("api", [], expected=got, expected_regex=[], allowed=set(), allowed_regex=[])


def test_json_text_bodies_are_decoded_unless_es_must_see_them_raw():
    assert _decode_body('{"a": {"b": 1}}') == {"a": {"b": 1}}
    ndjson = '{"index": {}}\n{"f": 1}\n'
    assert _decode_body(ndjson) == ndjson
    assert _decode_body('{"a": 1, "a": 2}') == '{"a": 1, "a": 2}'  # ES rejects duplicate keys: send as written
    assert _decode_body("{ not json") == "{ not json"


# ---- whole files against the sandbox -----------------------------------------------------------------------
@pytest.fixture
def run_yaml(sandbox, tmp_path):
    """Run YAML test text against the sandbox; `faults` are installed after each wipe."""

    def run(text: str, faults: dict | None = None, skips: SkipList = NO_SKIPS) -> tuple[conformance.Summary, str]:
        path = tmp_path / "suite" / "10_case.yml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(textwrap.dedent(text))
        client = conformance.make_client(sandbox.url, None)

        def reset():
            client.perform_request("POST", "/_sandbox/reset", headers={"accept": "application/json"})
            if faults:
                client.perform_request("PUT", "/_sandbox/faults", body=faults,
                                       headers={"accept": "application/json", "content-type": "application/json"})

        out = io.StringIO()
        try:
            summary = conformance.run_folder(path.parent, client, sandbox=True, reset=reset, skips=skips, out=out)
        finally:
            client.close()
        return summary, out.getvalue()

    return run


def outcomes(summary: conformance.Summary) -> dict[str, str]:
    return {t.name: t.outcome for f in summary.files for t in f.tests}


FAULT_404 = {"rules": [{"path": "^/$", "method": "GET", "status": 404}]}


def test_catch_checks_the_status_and_the_error(run_yaml):
    summary, out = run_yaml("""
        "missing matches 404":
          - do: {catch: missing, info: {}}
          - match: {status: 404}
        "bad_request does not accept 404":
          - do: {catch: bad_request, info: {}}
        "conflict does not accept 404":
          - do: {catch: conflict, info: {}}
        "request does not accept a named status":
          - do: {catch: request, info: {}}
        "regex is searched in the error":
          - do: {catch: "/injected fault/", info: {}}
        "regex that does not occur fails":
          - do: {catch: "/no such text/", info: {}}
        "an error without catch fails":
          - do: {info: {}}
        "ignore 404 turns the error into the response":
          - do: {info: {ignore: 404}}
          - match: {status: 404}
    """, faults=FAULT_404)
    assert outcomes(summary) == {
        "missing matches 404": "passed",
        "bad_request does not accept 404": "failed",
        "conflict does not accept 404": "failed",
        "request does not accept a named status": "failed",
        "regex is searched in the error": "passed",
        "regex that does not occur fails": "failed",
        "an error without catch fails": "failed",
        "ignore 404 turns the error into the response": "passed",
    }, out
    assert "expected [bad_request] (400), got 404" in out


def test_catch_fails_when_the_call_succeeds(run_yaml):
    summary, out = run_yaml("""
        "success is not an error":
          - do: {catch: missing, info: {}}
    """)
    assert outcomes(summary) == {"success is not an error": "failed"}, out
    assert "expected error [missing], got 200" in out


def test_an_unknown_api_fails_and_catch_param_sends_nothing(run_yaml, sandbox):
    summary, out = run_yaml("""
        "unknown API":
          - do: {no_such_namespace.no_such_api: {}}
        "catch param":
          - do: {catch: param, info: {}}
    """)
    assert outcomes(summary) == {"unknown API": "failed", "catch param": "passed"}, out
    assert "API [no_such_namespace.no_such_api] is not known to the elasticsearch client" in out
    assert [e for e in sandbox.log.entries(0) if e["path"] == "/"] == []


def test_stash_from_a_real_response_head_as_bool_and_undefined_params_refused(run_yaml, sandbox):
    summary, out = run_yaml("""
        "stash and reuse":
          - do: {info: {}}
          - set: {version.number: number}
          - match: {version.number: $number}
          - match: {tagline: "/.+/"}
        "HEAD gives a boolean":
          - do: {ping: {}}
          - is_true: ''
        "a parameter the spec does not define fails":
          - do: {info: {made_up_param: "yes"}}
    """)
    assert outcomes(summary) == {"stash and reuse": "passed", "HEAD gives a boolean": "passed",
                                 "a parameter the spec does not define fails": "failed"}, out
    summary, out = run_yaml("""
        "sent":
          - do: {info: {}}
    """)
    queries = [e["query"] for e in sandbox.log.entries(0) if e["path"] == "/"]
    # like ES's Java runner, every call asks for error traces unless the test sets error_trace itself
    assert all("error_trace=true" in q.split("&") for q in queries), queries


def test_skip_and_requires_sections(run_yaml):
    summary, out = run_yaml("""
        "skipped for all versions":
          - skip: {version: all, reason: muted}
          - do: {catch: missing, info: {}}
        "skipped for a version range covering 9.x":
          - skip: {version: "8.0.0 - 9.99.99", reason: range}
          - do: {catch: missing, info: {}}
        "not skipped for an old range":
          - skip: {version: " - 7.99.99", reason: old}
          - do: {info: {}}
        "requires an unknown runner feature":
          - requires: {test_runner_features: [no_such_feature]}
          - do: {catch: missing, info: {}}
        "requires a synthetic version feature the server has":
          - requires: {cluster_features: ["gte_v8.15.1"], reason: old enough}
          - do: {info: {}}
        "requires a feature the server lacks":
          - requires: {cluster_features: ["no_such_cluster_feature"], reason: needs it}
          - do: {catch: missing, info: {}}
        "skips when a feature is present":
          - skip: {cluster_features: ["gte_v7.0.0"], reason: present}
          - do: {catch: missing, info: {}}
        "awaits fix":
          - skip: {awaits_fix: "https://example.invalid/1", reason: muted}
          - do: {catch: missing, info: {}}
    """)
    assert outcomes(summary) == {
        "skipped for all versions": "skipped",
        "skipped for a version range covering 9.x": "skipped",
        "not skipped for an old range": "passed",
        "requires an unknown runner feature": "skipped",
        "requires a synthetic version feature the server has": "passed",
        # against the sandbox, a feature it does not advertise is a conformance gap, not a silent skip
        "requires a feature the server lacks": "failed",
        "skips when a feature is present": "skipped",
        "awaits fix": "skipped",
    }, out
    assert "the sandbox does not advertise cluster features ['no_such_cluster_feature']" in out
    assert out.strip().splitlines()[-1] == "2 passed, 1 failed, 5 skipped"


def test_an_unadvertised_feature_listed_in_skips_is_skipped(run_yaml):
    skips = SkipList((Skip("suite/10_case.yml", (), "feature out of scope"),), ())
    summary, out = run_yaml("""
        "requires a feature the server lacks":
          - requires: {cluster_features: ["no_such_cluster_feature"], reason: needs it}
          - do: {catch: missing, info: {}}
    """, skips=skips)
    assert outcomes(summary) == {"requires a feature the server lacks": "skipped"}, out


def test_skip_in_setup_applies_to_the_whole_file(run_yaml):
    summary, out = run_yaml("""
        setup:
          - skip: {features: [node_selector]}
          - do: {info: {}}
        ---
        "first":
          - do: {info: {}}
        ---
        "second":
          - do: {info: {}}
    """)
    assert outcomes(summary) == {"first": "skipped", "second": "skipped"}, out


def test_setup_and_teardown_run_for_each_test_and_teardown_failures_count(run_yaml):
    summary, out = run_yaml("""
        setup:
          - do: {info: {}}
          - set: {version.number: number}
        ---
        teardown:
          - do: {catch: missing, info: {}}
        ---
        "the setup stash is visible":
          - match: {version.number: $number}
    """)
    assert outcomes(summary) == {"the setup stash is visible": "failed"}, out
    assert "teardown step 1" in out


def test_the_skip_list_skips_with_its_reason(run_yaml):
    skips = SkipList((Skip("suite/10_case.yml", ("listed",), "out of scope: security"),), ())
    summary, out = run_yaml("""
        "listed":
          - do: {catch: missing, info: {}}
        "not listed":
          - do: {info: {}}
    """, skips=skips)
    assert outcomes(summary) == {"listed": "skipped", "not listed": "passed"}, out
    assert summary.files[0].tests[0].reason == "skip list: out of scope: security"


def test_the_repository_skip_list_gives_a_reason_for_every_entry():
    skips = conformance.skiplist.load()
    assert skips.skips, "the skip list is empty"
    for skip in skips.skips:
        assert len(skip.reason) > 20, skip
    # an _alt-versions/ copy is not caught by the primary file's entry
    alt = "/x/_alt-versions/abc/rest-api-spec/test/indices.get_alias/10_basic.yml"
    assert skips.reason("/x/rest-api-spec/test/indices.get_alias/10_basic.yml") is not None
    assert skips.reason(alt) is None


def test_the_cluster_wipe_removes_what_tests_create_and_keeps_builtins(es):
    """The wipe used against a real cluster (--url), exercised against the sandbox's Elasticsearch APIs."""
    es.indices.create(index="wipe-me", aliases={"wipe-alias": {}})
    es.indices.put_index_template(name="wipe-template", index_patterns=["wipe-*"])
    es.ingest.put_pipeline(id="wipe-pipeline", processors=[])
    es.ml.put_trained_model(model_id="wipe-model", model_type="pytorch",
                            inference_config={"text_similarity": {"tokenization": {"bert": {}}}})
    es.inference.put(task_type="rerank", inference_id="wipe-endpoint",
                     inference_config={"service": "test_reranking_service",
                                       "service_settings": {"model_id": "m", "api_key": "k"}})
    builtin_endpoints = {e["inference_id"] for e in es.inference.get(inference_id="_all")["endpoints"]
                         if e["inference_id"].startswith(".")}

    wipe._wipe_cluster(es)

    assert es.indices.get(index="*", expand_wildcards="all") == {}
    assert es.options(ignore_status=404).ingest.get_pipeline().body == {}  # ES: no pipelines gives 404 {}
    assert es.indices.get_index_template()["index_templates"] == []
    models = {m["model_id"] for m in es.ml.get_trained_models()["trained_model_configs"]}
    assert "wipe-model" not in models and "lang_ident_model_1" in models
    endpoints = {e["inference_id"] for e in es.inference.get(inference_id="_all")["endpoints"]}
    assert endpoints == builtin_endpoints


def test_a_file_level_requires_document_is_a_condition_not_a_test(run_yaml):
    summary, out = run_yaml("""
        requires:
          test_runner_features: [no_such_runner_feature]
          reason: the whole file needs it
        ---
        "first":
          - do: {info: {}}
        ---
        "second":
          - do: {info: {}}
    """)
    assert outcomes(summary) == {"first": "skipped", "second": "skipped"}, out
    summary, out = run_yaml("""
        requires:
          test_runner_features: [contains]
          reason: a feature the runner has
        ---
        "only test":
          - do: {info: {}}
    """)
    assert outcomes(summary) == {"only test": "passed"}, out


def test_a_parameter_or_body_the_api_does_not_define_fails_the_step_before_sending(run_yaml, sandbox):
    summary, out = run_yaml("""
        "undefined parameter":
          - do: {indices.create: {index: strict-a, no_such_param: 1}}
        "body on an API without one":
          - do: {indices.exists: {index: strict-b, body: {a: 1}}}
        "defined ones are fine":
          - do: {indices.create: {index: strict-c, timeout: 30s, wait_for_active_shards: 1, pretty: true}}
    """)
    assert outcomes(summary) == {"undefined parameter": "failed", "body on an API without one": "failed",
                                 "defined ones are fine": "passed"}, out
    assert "path/param [no_such_param] not supported by [indices.create] api" in out
    assert "body is not supported by [indices.exists] api" in out
    summary, out = run_yaml("""
        "undefined parameter":
          - do: {indices.create: {index: strict-a, no_such_param: 1}}
    """)  # alone, so that the log (wiped before each test) holds its requests
    assert outcomes(summary) == {"undefined parameter": "failed"}, out
    assert "/strict-a" not in [e["path"] for e in sandbox.log.entries(0)]  # nothing was sent
