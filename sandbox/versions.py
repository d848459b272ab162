"""Version gates: behaviour that depends on the Elasticsearch version the sandbox reports.

The sandbox runs as 9.x (default 9.1.0) or as 8.19 (`invoke sandbox --version 8.19.0`, or `--sandbox --es-version
8.19.0` on the engine tasks). DIFFERENCES is the list of every 8.19-vs-9.x difference the sandbox models, each
with its source and whether it was confirmed against Elasticsearch's source, specification or tests; README.md
"Elasticsearch 8.x" shows the same table (tests/test_sandbox_versions.py keeps the two in step). Everything not
listed behaves as in 9.x.
"""

from __future__ import annotations

from typing import Any

SUPPORTED = ("8.19", "9.")  # the version lines the sandbox models (prefixes of the version number)


def version_at_least(version: str, minimum: tuple[int, int]) -> bool:
    try:
        major, minor = (int(x) for x in version.split(".")[:2])
    except ValueError:
        return True
    return (major, minor) >= minimum


def major(version: str) -> int:
    try:
        return int(version.split(".")[0])
    except ValueError:
        return 9


def check_supported(version: str) -> None:
    if not version.startswith(SUPPORTED):
        raise ValueError(f"the sandbox models Elasticsearch 8.19 and 9.x, not {version}")


# key -> (what, 8.19, 9.x, source, confirmed)
DIFFERENCES: dict[str, tuple[str, str, str, str, bool]] = {
    "rest_compatibility": (
        "`compatible-with` accepted in Accept/Content-Type",
        "7 or 8 (9 is refused: 400 media_type_header_exception, \"Accept version must be either version 8 or 7, "
        "but found 9\")", "8 or 9",
        "RestCompatibleVersionHelper#getCompatibleVersion (current major or the one before, RestApiVersion)", True),
    "root_info": (
        "`GET /` version block", "lucene_version 9.12.2, minimum_wire_compatibility_version 7.17.0, "
        "minimum_index_compatibility_version 7.0.0", "lucene_version 10.2.2, 8.19.0, 8.0.0",
        "ES 8.19 ships Lucene 9.12 and reads 7.x indices; 9.x Lucene 10 (release notes); the exact patch "
        "numbers are not confirmed", False),
    "get_index_features": (
        "`GET /<index>?features=aliases,settings`", "`mappings: {}` is still returned", "`mappings` is absent",
        "es-api-semantics.md 1.2 [T: both versions seen] (indices.get/10_basic.yml, 8.x and 9.x copies)", True),
    "rerank_long_documents": (
        "`long_document_strategy`/`max_chunks_per_doc` in an elasticsearch rerank endpoint's service_settings",
        "400: \"Configuration contains settings [...] unknown to the [elasticsearch] service\"",
        "accepted (the 9.2 parameters; the sandbox accepts them on every 9.x)",
        "elasticsearch-specification 545412e1c (#5476, 9.2); unknown settings: ServiceUtils#throwIfNotEmptyMap",
        True),
    "chunking_strategies": (
        "inference `chunking_settings.strategy`", "`sentence` or `word`; `none`/`recursive` give 400 "
        "illegal_argument_exception \"Invalid chunkingStrategy <s>\"", "also `none` and `recursive` (9.1)",
        "elasticsearch-specification 220fd4062 (#4841, 9.1): the 8.19 spec lists sentence and word only; "
        "the 8.19 error text (ChunkingStrategy#fromString) is not confirmed", False),
    "reranker_chunk_rescorer": (
        "`chunk_rescorer` in text_similarity_reranker", "unknown field (parse error)", "from 9.2",
        "TextSimilarityRankRetrieverBuilder (cluster feature text_similarity_reranker_snippets, 9.2)", True),
    "cluster_features": (
        "cluster features advertised (GET _cluster/state nodes_features)",
        "also `text_similarity_reranker_retriever_supported`; not the 9.x alias feature (alias_string_booleans)",
        "the reranker feature not advertised",
        "ES 8.x InferenceFeatures declares it (the 8.15-era 70_text_similarity_rank_retriever.yml requires it); "
        "9.0 dropped the 8.x features that every 9.x node has (the 9.x copies no longer require it)", False),
    "alias_string_booleans": (
        "an alias given at index creation with `is_write_index: \"true\"` (a string)",
        "accepted as true", "400 \"Unsupported String type value [true] for field [is_write_index] in alias [...]\" "
        "(feature index.throw_exception_on_index_creation_if_unsupported_value_type_in_alias, not advertised by "
        "8.x)", "es-api-semantics.md 1.1 [T]: the 9.x indices.create/10_basic.yml and its 8.19-branch copy "
        "(is_true); other fields' string leniency in 8.x is not modelled", True),
    "eland": (
        "eland 9.x against the cluster", "the CLI eland_import_hub_model refuses 8.x; the Python API "
        "(TransformerModel es_version, PyTorchModel upload) works", "both work",
        "eland/cli/eland_import_hub_model.py check_cluster_version; eland/ml/pytorch/transformers.py "
        "_create_config", True),
}


def info_fields(version: str) -> dict[str, Any]:
    """GET / version fields that differ by major (DIFFERENCES["root_info"])."""
    if major(version) >= 9:
        return {"lucene_version": "10.2.2", "minimum_wire_compatibility_version": "8.19.0",
                "minimum_index_compatibility_version": "8.0.0"}
    return {"lucene_version": "9.12.2", "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0"}


def get_index_keeps_empty_mappings(version: str) -> bool:
    """DIFFERENCES["get_index_features"]."""
    return major(version) < 9


_ONLY_9X_FEATURES = {"index.throw_exception_on_index_creation_if_unsupported_value_type_in_alias"}


def cluster_features(version: str, declared: set[str]) -> set[str]:
    """The node features advertised: the declared (9.x) ones, adjusted for 8.x (DIFFERENCES["cluster_features"],
    ["alias_string_booleans"])."""
    if major(version) >= 9:
        return declared
    return (declared - _ONLY_9X_FEATURES) | {"text_similarity_reranker_retriever_supported"}


def alias_string_booleans(version: str) -> bool:
    """DIFFERENCES["alias_string_booleans"]."""
    return major(version) < 9


def check_inference_body(version: str, service: str, body: dict[str, Any]) -> None:
    """8.x refusals of inference PUT bodies that 9.x accepts (DIFFERENCES rerank_long_documents,
    chunking_strategies). 9.x behaviour is unchanged."""
    if major(version) >= 9:
        return
    from sandbox.errors import IllegalArgument
    from sandbox.inference import services as svc

    settings = body.get("service_settings")
    if service in svc.ELASTICSEARCH and isinstance(settings, dict):
        late = {k: settings[k] for k in ("long_document_strategy", "max_chunks_per_doc") if k in settings}
        if late:
            raise svc.unknown_settings(service, late)
    chunking = body.get("chunking_settings")
    if isinstance(chunking, dict) and chunking.get("strategy") not in (None, "sentence", "word"):
        raise IllegalArgument(f"Invalid chunkingStrategy {chunking.get('strategy')}")
