"""The example stack (manifests/) reproduces the semantic-reranking tutorial: its names, its data, its three searches.

The data tests tokenize plots the way Elasticsearch's `standard` analyzer does for plain ASCII text (lowercase,
words split at anything but letters and digits; an apostrophe or dot between two letters does not split, UAX #29),
so they prove what the tutorial's lexical queries will and will not match without a cluster.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = ROOT / "manifests"
MOVIES = MANIFESTS / "data" / "movies.json"

# The tutorial's names (shared/semantic-reranking-tutorial.md).
INDEX = "movies"
HUB_ID = "cross-encoder/ms-marco-MiniLM-L-6-v2"
MODEL_ID = "cross-encoder__ms-marco-minilm-l-6-v2"
ENDPOINT = "my-msmarco-minilm-model"
CANNIBAL_FILM = "The Silence of the Lambs"
TUTORIAL_QUERY = "flesh-eating bad guy"
# ES: text_similarity_reranker `rank_window_size` defaults to 10 (es-api-semantics.md §4), as does search `size`:
# every "crime" film must fit in it, or the cannibal film could fall outside the hits the reranker sees.
RANK_WINDOW = 10

# Variables of the example stack (templates/settings.j2); cleared so a developer's shell or .env cannot leak in.
STACK_VARIABLES = ("RERANK_MODEL_PATH", "RERANK_MODEL_REVISION", "HF_TOKEN", "EXPECT_RERANK_TOP",
                   "RERANK_NUM_ALLOCATIONS", "RERANK_NUM_THREADS", "MOVIES_SHARDS", "MOVIES_REPLICAS")


def standard_tokens(text: str) -> list[str]:
    """Tokens of ES's standard analyzer for ASCII text: lowercase; "flesh-eating" -> flesh, eating; "mob's" stays."""
    return re.findall(r"[a-z0-9]+(?:['.][a-z0-9]+)*", text.lower())


def split_tokens(text: str) -> set[str]:
    """Stricter: every alphanumeric run (a superset of the words ES sees), for "this word never occurs" checks."""
    return set(re.findall(r"[a-z0-9]+", text.lower()))


@pytest.fixture(scope="module")
def movies() -> list[dict]:
    return json.loads(MOVIES.read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------------------ the data set


def test_about_25_films_with_unique_ids_and_the_fields_the_index_maps(movies):
    assert 20 <= len(movies) <= 30
    ids = Counter(m["id"] for m in movies)
    assert [i for i, n in ids.items() if n > 1] == []
    for movie in movies:
        assert isinstance(movie["id"], str) and movie["id"], movie
        assert movie["title"].strip() and movie["plot"].strip() and movie["genre"].strip(), movie
        assert isinstance(movie["release_year"], int) and 1900 < movie["release_year"] < 2100, movie
        # `dynamic: strict` in the index: a field the mapping does not declare would fail the bulk load
        assert set(movie) <= {"id", "title", "plot", "genre", "release_year", "director"}, movie


def test_the_cannibal_film_is_there_and_is_a_crime_film(movies):
    film = next((m for m in movies if m["title"] == CANNIBAL_FILM), None)
    assert film is not None, f"{CANNIBAL_FILM} is missing from {MOVIES.name}"
    assert "crime" in standard_tokens(film["genre"])
    assert {"cannibal", "killer"} <= set(standard_tokens(film["plot"])), film["plot"]


def test_no_plot_matches_the_tutorials_query_string(movies):
    # query_string "flesh-eating bad guy" on `plot` is an OR of these four terms: one in any plot would be a hit,
    # and the tutorial's point is that the lexical query finds nothing.
    query_terms = split_tokens(TUTORIAL_QUERY)
    assert query_terms == {"flesh", "eating", "bad", "guy"}
    offenders = {m["title"]: sorted(split_tokens(m["plot"]) & query_terms) for m in movies}
    assert {title: terms for title, terms in offenders.items() if terms} == {}


def test_crime_matches_several_films_all_within_the_rerank_window(movies):
    crime = [m["title"] for m in movies
             if "crime" in standard_tokens(m["plot"]) or "crime" in standard_tokens(m["genre"])]
    assert CANNIBAL_FILM in crime
    assert 4 <= len(crime) <= RANK_WINDOW, crime
    # the reranker must have something to reorder: the cannibal film is not the only crime film, and most films
    # are not crime films (so the lexical step really narrows the candidates)
    assert len(crime) < len(movies) / 2


def test_plots_are_short(movies):
    for movie in movies:
        sentences = [s for s in re.split(r"[.!?](?:\s|$)", movie["plot"].strip()) if s]
        assert 1 <= len(sentences) <= 2, movie["plot"]


# ------------------------------------------------------------------------------------------------ the manifests


@pytest.fixture
def load(monkeypatch, tmp_path):
    """The real loader over manifests/, with no .env file and none of the stack's variables in the environment."""
    try:
        from provisioning.manifests import load_manifests
    except ImportError as exc:  # fail, not skip: the example stack is only useful if the engine can load it
        pytest.fail(f"the manifest loader provisioning.manifests.load_manifests cannot be imported: {exc}")
    for name in STACK_VARIABLES:
        monkeypatch.delenv(name, raising=False)

    def _load(environment: str | None = None, **variables: str) -> dict[str, object]:
        resources = load_manifests(MANIFESTS, environment=environment, variables=variables, env_file_dir=tmp_path)
        return {r.key: r for r in resources}

    return _load


def test_the_stack_declares_the_tutorials_five_kinds_and_names(load):
    stack = load()
    assert sorted(stack) == sorted([
        f"index/{INDEX}", "documents/movies-seed", f"trained_model/{MODEL_ID}", f"inference_endpoint/{ENDPOINT}",
        "check/tutorial-1-query-string", "check/tutorial-2-multi-match", "check/tutorial-3-reranked",
        "evaluation/movies-relevance",  # the relevance gate (tests/evaluation/test_example_evaluation.py)
    ])
    model = stack[f"trained_model/{MODEL_ID}"].spec
    assert model["task_type"] == "text_similarity"
    assert model["source"] == {"hub": HUB_ID}  # the tutorial's model, no token, no revision by default
    endpoint = stack[f"inference_endpoint/{ENDPOINT}"].spec
    assert (endpoint["task_type"], endpoint["service"]) == ("rerank", "elasticsearch")
    assert endpoint["service_settings"] == {"model_id": MODEL_ID, "num_allocations": 1, "num_threads": 1}


def test_the_index_maps_every_field_of_the_data_and_the_documents_load_it_by_id(load, movies):
    stack = load()
    index = stack[f"index/{INDEX}"]
    assert index.spec["settings"] == {"number_of_shards": 1, "number_of_replicas": 0}
    properties = index.spec["mappings"]["properties"]
    assert set().union(*(m.keys() for m in movies)) <= set(properties)
    assert properties["plot"]["type"] == "text"  # the reranker's `field` and the lexical queries' field
    assert properties["genre"]["type"] == "text"  # multi_match "crime" must match "Crime, Drama" (analysed)
    assert properties["title"]["fields"]["keyword"]["type"] == "keyword"
    assert index.protected is False
    seed = stack["documents/movies-seed"]
    assert seed.spec["index"] == INDEX and seed.spec["id_field"] == "id"
    # `source` is relative to the manifest file that declares it, and that file is in manifests/
    assert Path(seed.source.file).name == "movies.yaml.j2"
    assert (MANIFESTS / seed.spec["source"]).resolve() == MOVIES.resolve()


def test_the_checks_are_the_tutorials_three_searches(load):
    stack = load()
    query_string = stack["check/tutorial-1-query-string"].spec
    assert query_string["request"]["retriever"]["standard"]["query"]["query_string"] == {
        "query": TUTORIAL_QUERY, "default_field": "plot"}
    assert query_string["expect"] == {"total": 0}

    multi_match = stack["check/tutorial-2-multi-match"].spec
    crime = {"standard": {"query": {"multi_match": {"query": "crime", "fields": ["plot", "genre"]}}}}
    assert multi_match["request"]["retriever"] == crime
    assert {"field": "title", "equals": CANNIBAL_FILM} in multi_match["expect"]["contains"]
    assert multi_match["expect"]["min_hits"] >= 1

    reranked = stack["check/tutorial-3-reranked"].spec
    assert reranked["request"]["retriever"] == {"text_similarity_reranker": {
        "retriever": crime, "field": "plot", "inference_id": ENDPOINT, "inference_text": TUTORIAL_QUERY}}
    assert reranked["expect"]["min_hits"] >= 1
    # with the hub model (the default) the cannibal film must come first, as the tutorial reports
    assert reranked["expect"]["top"] == {"field": "title", "equals": CANNIBAL_FILM}
    for key in ("check/tutorial-1-query-string", "check/tutorial-2-multi-match", "check/tutorial-3-reranked"):
        assert stack[key].spec["index"] == INDEX
        assert "documents/movies-seed" in stack[key].depends_on  # never searched before the data is loaded


def model_directory(path: Path) -> str:
    """The shape the loader checks for a local Hugging Face model (a config.json); nothing is traced here."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text('{"architectures": ["BertForSequenceClassification"]}', encoding="utf-8")
    return str(path)


def test_a_local_model_directory_replaces_the_hub_and_drops_the_ranking_expectation(load, tmp_path):
    stack = load(RERANK_MODEL_PATH=model_directory(tmp_path / "tiny"))
    model = stack[f"trained_model/{MODEL_ID}"]  # same id, so the endpoint and checks are unchanged
    assert model.spec["source"] == {"path": str(tmp_path / "tiny")}
    reranked = stack["check/tutorial-3-reranked"].spec["expect"]
    assert "top" not in reranked  # a tiny random model ranks arbitrarily
    assert {"field": "title", "equals": CANNIBAL_FILM} in reranked["contains"]  # reranking keeps every hit


@pytest.mark.parametrize(("model_dir", "expect", "has_top"), [
    ("", "false", False), ("real-minilm", "true", True), ("tiny", "0", False), ("", "yes", True)])
def test_expect_rerank_top_overrides_the_default(load, tmp_path, model_dir, expect, has_top):
    variables = {"EXPECT_RERANK_TOP": expect}
    if model_dir:
        variables["RERANK_MODEL_PATH"] = model_directory(tmp_path / model_dir)
    reranked = load(**variables)["check/tutorial-3-reranked"].spec["expect"]
    assert ("top" in reranked) is has_top


def test_variables_reach_the_specs_and_production_protects_the_index(load, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value_never_rendered")
    stack = load("production", MOVIES_REPLICAS="1", RERANK_NUM_ALLOCATIONS="2", RERANK_MODEL_REVISION="abc123")
    index = stack[f"index/{INDEX}"]
    assert index.spec["settings"]["number_of_replicas"] == 1
    assert index.protected is True
    assert stack[f"inference_endpoint/{ENDPOINT}"].spec["service_settings"]["num_allocations"] == 2
    source = stack[f"trained_model/{MODEL_ID}"].spec["source"]
    assert source == {"hub": HUB_ID, "revision": "abc123", "token_env": "HF_TOKEN"}  # the name, never the token
    assert "hf_secret_value_never_rendered" not in repr([r.spec for r in stack.values()])


def test_env_example_documents_every_variable_the_templates_read():
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    declared = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", text, flags=re.M))
    templates = "".join(p.read_text(encoding="utf-8") for p in [*(ROOT / "templates").glob("*.j2"),
                                                                 *MANIFESTS.glob("*.j2")])
    read = set(re.findall(r"""(?:env|var)\.get\(["']([A-Z0-9_]+)["']""", templates))
    assert read, "the templates read no variables: the pattern above is out of date"
    assert read - declared == set()
    connection = {"ELASTIC_CLOUD_ID", "ELASTIC_API_KEY", "ELASTICSEARCH_URL", "ELASTICSEARCH_USERNAME",
                  "ELASTICSEARCH_PASSWORD", "ELASTICSEARCH_CA_CERT", "ES_STACK_NAME"}
    assert connection - declared == set()
    # placeholders only: no secret has a value
    for name in ("ELASTIC_API_KEY", "ELASTICSEARCH_PASSWORD", "HF_TOKEN"):
        assert re.search(rf"^{name}=\s*$", text, flags=re.M), name


# ------------------------------------------------------------------------------------------------ against the sandbox


def crime_titles(movies: list[dict]) -> set[str]:
    return {m["title"] for m in movies if "crime" in standard_tokens(m["plot"]) + standard_tokens(m["genre"])}


def test_the_lexical_checks_find_what_the_tutorial_says(load, es, movies):
    """The index and data as declared, searched with the checks' own request bodies through the real client."""
    from elasticsearch import helpers

    stack = load()
    index = stack[f"index/{INDEX}"].spec
    es.indices.create(index=INDEX, settings=index["settings"], mappings=index["mappings"])
    ok, errors = helpers.bulk(es, ({"_index": INDEX, "_id": m["id"], "_source": m} for m in movies), refresh=True)
    assert (ok, errors) == (len(movies), [])  # `dynamic: strict` accepted every document

    query_string = stack["check/tutorial-1-query-string"].spec["request"]
    assert es.search(index=INDEX, **query_string)["hits"]["total"]["value"] == 0
    # the same query shape does find a plot word, so the zero above is the data's doing, not the query's
    control = json.loads(json.dumps(query_string).replace(TUTORIAL_QUERY, "cannibal killer"))
    hits = es.search(index=INDEX, **control)["hits"]["hits"]
    assert [h["_source"]["title"] for h in hits][:1] == [CANNIBAL_FILM]

    multi_match = stack["check/tutorial-2-multi-match"].spec["request"]
    response = es.search(index=INDEX, **multi_match)
    titles = [h["_source"]["title"] for h in response["hits"]["hits"]]
    assert set(titles) == crime_titles(movies)  # the analyzer agrees with standard_tokens above
    assert response["hits"]["total"]["value"] == len(titles)  # all of them within the default size of 10


@pytest.mark.timeout(300)
def test_the_example_stack_applies_to_the_sandbox_and_its_checks_pass(load, es, tmp_path, movies):
    """The whole stack, the offline way: a tiny random cross-encoder from a local directory instead of the hub."""
    from provisioning import Options, converge, make_context, make_plan
    from testbed.tiny_model import build_tiny_cross_encoder

    model_path = build_tiny_cross_encoder(tmp_path / "tiny-cross-encoder")
    resources = load(RERANK_MODEL_PATH=str(model_path)).values()
    ctx = make_context(es, stack="example-test", options=Options(cache_dir=tmp_path / "cache", wait_timeout=120))

    result = converge(list(resources), ctx, command="pytest")
    checks = {c.name: c for c in result.checks}
    assert sorted(checks) == ["tutorial-1-query-string", "tutorial-2-multi-match", "tutorial-3-reranked"]
    failed = {name: [e.description for e in c.expectations if not e.ok] for name, c in checks.items() if not c.ok}
    assert failed == {}
    assert checks["tutorial-1-query-string"].total == 0

    lexical = [h["_source"]["title"] for h in checks["tutorial-2-multi-match"].hits]
    reranked = checks["tutorial-3-reranked"].hits
    assert set(lexical) == crime_titles(movies)
    # the reranker reorders the very same hits by the model's score (the tiny model's order itself means nothing)
    assert sorted(h["_source"]["title"] for h in reranked) == sorted(lexical)
    scores = [h["_score"] for h in reranked]
    assert scores == sorted(scores, reverse=True)

    assert es.count(index=INDEX)["count"] == len(movies)
    assert not make_plan(list(resources), ctx).has_changes  # a second apply would do nothing
