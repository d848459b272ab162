"""Trained model configurations: ES's strict parser, the defaults ES fills in, and tree-model bookkeeping.

Pure functions over JSON values; no state. The store keeps what `build_config` returns and answers GET with it.
Evidence: ES PutTrainedModelAction (STRICT_PARSER), TrainedModelConfig / Tokenization / TextSimilarityConfig /
FillMaskConfig, and the YAML tests ml/inference_crud.yml and ml/3rd_party_deployment.yml.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
from typing import Any

from sandbox.errors import ActionRequestValidation, EsError, IllegalArgument, StatusException, XContentParseError

# ES: InferenceIndexConstants.nativeDefinitionStore(); where pytorch definitions and vocabularies live.
NATIVE_STORE = ".ml-inference-native-000002"
# The ML config version ES 9.x stamps on new configs (MlConfigVersion.CURRENT) [K].
CONFIG_VERSION = "12.0.0"

_TOP_LEVEL = {
    "model_id", "description", "tags", "metadata", "input", "inference_config", "definition",
    "compressed_definition", "model_type", "model_size_bytes", "estimated_heap_memory_usage_bytes",
    "estimated_operations", "location", "default_field_map", "prefix_strings", "platform_architecture",
    "model_package", "license_level",
}
# Generated fields a client may not set (TrainedModelConfig builder validation).
_GENERATED = ("created_by", "version", "create_time")

_TOKENIZATIONS = {"bert", "bert_ja", "mpnet", "roberta", "xlm_roberta", "deberta_v2"}
_TOKENIZATION_FIELDS = {"do_lower_case", "with_special_tokens", "max_sequence_length", "truncate", "span"}
_MASK_TOKENS = {"bert": "[MASK]", "bert_ja": "[MASK]", "mpnet": "<mask>", "roberta": "<mask>",
                "xlm_roberta": "<mask>", "deberta_v2": "[MASK]"}

# NLP task -> extra fields its strict parser accepts (besides vocabulary, tokenization, results_field).
NLP_TASKS: dict[str, set[str]] = {
    "text_similarity": {"span_score_combination_function"},
    "text_embedding": {"embedding_size"},
    "text_expansion": set(),
    "pass_through": set(),
    "ner": {"classification_labels"},
    "fill_mask": {"num_top_classes", "mask_token"},
    "text_classification": {"classification_labels", "num_top_classes"},
    "zero_shot_classification": {"classification_labels", "hypothesis_template", "multi_label", "labels"},
    "question_answering": {"num_top_classes", "max_answer_length"},
}
TREE_TASKS = {"regression", "classification", "learning_to_rank"}


def unknown_field(parser: str, name: str) -> XContentParseError:
    return XContentParseError(f"[{parser}] unknown field [{name}]")


def _tokenization(raw: Any) -> dict[str, Any]:
    """ES Tokenization: one named object; defaults do_lower_case=false, with_special_tokens=true,
    max_sequence_length=512, truncate=first, span=-1 (Tokenization.java)."""
    if raw is None:
        raw = {"bert": {}}
    if not isinstance(raw, dict) or len(raw) != 1:
        raise XContentParseError("[tokenization] must be a single named object")
    (kind, body), = raw.items()
    if kind not in _TOKENIZATIONS:
        raise XContentParseError(f"[1:1] unknown field [{kind}]", )
    body = dict(body or {})
    allowed = _TOKENIZATION_FIELDS | ({"add_prefix_space"} if kind == "roberta" else set())
    for key in body:
        if key not in allowed:
            raise unknown_field(kind, key)
    truncate = str(body.get("truncate", "first")).lower()
    if truncate not in ("first", "second", "none", "balanced"):
        raise IllegalArgument(f"No enum constant Truncate.{truncate.upper()}")
    max_len = body.get("max_sequence_length", 512)
    if max_len <= 0:
        raise IllegalArgument("[max_sequence_length] must be positive")
    span = body.get("span", -1)
    if span < 0 and span != -1:
        raise IllegalArgument("[span] must be non-negative to indicate span length or -1 to indicate no windowing "
                              "should occur")
    if span > max_len:
        raise IllegalArgument(f"[span] provided [{span}] must not be greater than [max_sequence_length] "
                              f"provided [{max_len}]")
    if span != -1 and "truncate" in body and truncate != "none":
        raise IllegalArgument("[span] must not be provided when [truncate] is not [none]")
    out = {
        "do_lower_case": bool(body.get("do_lower_case", False)),
        "with_special_tokens": bool(body.get("with_special_tokens", True)),
        "max_sequence_length": max_len,
        "truncate": truncate,
        "span": span,
    }
    if kind == "roberta":
        out["add_prefix_space"] = bool(body.get("add_prefix_space", False))
    return {kind: out}


def _nlp_config(task: str, raw: dict[str, Any]) -> dict[str, Any]:
    for key in raw:
        if key == "vocabulary":
            # ES: the strict parser refuses a vocabulary location on creation (3rd_party_deployment.yml).
            raise StatusException("illegal setting [vocabulary] on inference model creation", 400)
        if key not in {"tokenization", "results_field"} | NLP_TASKS[task]:
            raise unknown_field(task, key)
    tokenization = _tokenization(raw.get("tokenization"))
    kind = next(iter(tokenization))
    out: dict[str, Any] = {"vocabulary": {"index": NATIVE_STORE}, "tokenization": tokenization}
    if task == "fill_mask":
        expected = _MASK_TOKENS[kind]
        requested = raw.get("mask_token")
        if requested is not None and requested != expected:
            raise IllegalArgument(f"Mask token requested was [{requested}] but must be [{expected}] for this model")
        if tokenization[kind]["span"] != -1:
            raise StatusException(f"[fill_mask] does not support windowing long text sequences; configured span "
                                  f"[{tokenization[kind]['span']}]", 400)
        out["num_top_classes"] = raw.get("num_top_classes", 5)
        out["mask_token"] = expected  # FillMaskConfig.toXContent writes the tokenizer's mask token
    elif task == "ner":
        out["classification_labels"] = raw.get("classification_labels") or [
            "O", "B_MISC", "I_MISC", "B_PER", "I_PER", "B_ORG", "I_ORG", "B_LOC", "I_LOC"]
    elif task == "text_classification":
        if not raw.get("classification_labels"):
            raise ActionRequestValidation("[classification_labels] must not be empty")
        out["classification_labels"] = raw["classification_labels"]
        out["num_top_classes"] = raw.get("num_top_classes", -1)
    elif task == "zero_shot_classification":
        out["classification_labels"] = raw.get("classification_labels") or ["entailment", "neutral", "contradiction"]
        out["hypothesis_template"] = raw.get("hypothesis_template", "This example is {}.")
        out["multi_label"] = raw.get("multi_label", False)
        if raw.get("labels"):
            out["labels"] = raw["labels"]
    elif task == "question_answering":
        out["num_top_classes"] = raw.get("num_top_classes", 0)
        out["max_answer_length"] = raw.get("max_answer_length", 15)
    elif task == "text_embedding" and "embedding_size" in raw:
        out["embedding_size"] = raw["embedding_size"]
    if "results_field" in raw:
        out["results_field"] = raw["results_field"]
    if task == "text_similarity":
        function = str(raw.get("span_score_combination_function", "max")).lower()
        if function not in ("max", "mean"):
            raise IllegalArgument(f"No enum constant SpanScoreFunction.{function.upper()}")
        out["span_score_combination_function"] = function
    return out


def _tree_config(task: str, raw: dict[str, Any]) -> dict[str, Any]:
    if task == "regression":
        return {"results_field": raw.get("results_field", "predicted_value"),
                "num_top_feature_importance_values": raw.get("num_top_feature_importance_values", 0)}
    if task == "classification":
        return {"num_top_classes": raw.get("num_top_classes", 0),
                "top_classes_results_field": raw.get("top_classes_results_field", "top_classes"),
                "results_field": raw.get("results_field", "predicted_value"),
                "num_top_feature_importance_values": raw.get("num_top_feature_importance_values", 0),
                "prediction_field_type": raw.get("prediction_field_type", "string")}
    return dict(raw)


def inference_config(raw: Any) -> tuple[str, dict[str, Any]]:
    """Parse `inference_config` (one named object) into (task, config with defaults)."""
    if not isinstance(raw, dict) or len(raw) != 1:
        raise XContentParseError("[inference_config] must be a single named object")
    (task, body), = raw.items()
    body = body or {}
    if task in NLP_TASKS:
        return task, {task: _nlp_config(task, body)}
    if task in TREE_TASKS:
        return task, {task: _tree_config(task, body)}
    raise XContentParseError(f"[1:1] [inference_config] unknown field [{task}]")


# ---- tree models (stored, never run: out of the sandbox's scope) --------------------------------------------

def _tree_target(tree: dict[str, Any]) -> str:
    return tree.get("target_type") or ("classification" if tree.get("classification_labels") else "regression")


def _validate_tree(tree: dict[str, Any]) -> int:
    """ES Tree.validate (feature bounds) and estimatedNumOperations: ceil(ln(nodes)) + features."""
    features = tree.get("feature_names") or []
    nodes = tree.get("tree_structure") or []
    max_feature = max((n.get("split_feature", -1) for n in nodes if "leaf_value" not in n), default=-1)
    if max_feature >= len(features):
        raise StatusException(f"feature index [{max_feature}] is out of bounds for the [feature_names] array", 400)
    return math.ceil(math.log(max(len(nodes), 1))) + len(features)


def _model_operations(model: dict[str, Any]) -> tuple[str, int]:
    """(target type, estimated operations) of a tree or an ensemble (ES Ensemble: ceil(avg) + 2*(n-1))."""
    if "tree" in model:
        return _tree_target(model["tree"]), _validate_tree(model["tree"])
    if "ensemble" in model:
        ensemble = model["ensemble"]
        members = ensemble.get("trained_models") or []
        if not members:
            raise StatusException("[trained_models] must not be empty", 400)
        ops = [_model_operations(m)[1] for m in members]
        target = ensemble.get("target_type") or ("classification" if ensemble.get("classification_labels")
                                                 else "regression")
        return target, math.ceil(sum(ops) / len(ops)) + 2 * (len(ops) - 1)
    raise StatusException("the sandbox only understands [tree] and [ensemble] trained models", 400)


def compress_definition(definition: dict[str, Any]) -> str:
    """ES stores tree definitions as base64(gzip(JSON)) (InferenceToXContentCompressor)."""
    return base64.b64encode(gzip.compress(json.dumps(definition).encode())).decode()


def _tree_definition(model_id: str, task: str, body: dict[str, Any], defer: bool) -> dict[str, Any]:
    if "definition" in body:
        definition = body["definition"]
        target, operations = _model_operations(definition.get("trained_model") or {})
        if task in ("regression", "classification") and target != task:
            raise StatusException(f"Model [{model_id}] inference config type [{task}] does not support definition "
                                  f"target type [{target}]", 400)
        operations += len(definition.get("preprocessors") or [])
        return {"compressed_definition": compress_definition(definition), "estimated_operations": operations,
                "model_size_bytes": body.get("model_size_bytes") or len(json.dumps(definition))}
    compressed = body["compressed_definition"]
    if defer:
        if body.get("model_size_bytes") is None:
            raise ActionRequestValidation("when [defer_definition_decompression] is true and a compressed definition "
                                          "is provided, model_size_bytes must be set")
        return {"compressed_definition": compressed, "estimated_operations": body.get("estimated_operations", 0),
                "model_size_bytes": body["model_size_bytes"]}
    try:
        definition = json.loads(gzip.decompress(base64.b64decode(compressed)))
    except Exception as exc:  # noqa: BLE001 - any decoding failure is the client's bad definition
        raise StatusException(f"Could not deserialize trained model [{model_id}]", 400) from exc
    return _tree_definition(model_id, task, {**body, "definition": definition,
                                             "compressed_definition": None}, defer)


# ---- the whole config ----------------------------------------------------------------------------------------

def build_config(model_id: str, body: dict[str, Any], *, now: int, defer_decompression: bool = False,
                 ) -> tuple[dict[str, Any], str | None]:
    """Validate a PUT body like ES's strict parser and return (stored config, compressed tree definition)."""
    if not isinstance(body, dict):
        raise XContentParseError("request body must be an object")
    for key in body:
        if key in _GENERATED:
            raise ActionRequestValidation(f"illegal to set [{key}] at inference model creation")
        if key not in _TOP_LEVEL:
            raise unknown_field("trained_model_config", key)
    if body.get("model_id") not in (None, model_id):
        raise IllegalArgument(f"Inconsistent model_id; '{body['model_id']}' specified in the body differs from "
                              f"'{model_id}' specified as a URL argument")
    has_definition = "definition" in body or "compressed_definition" in body
    model_type = body.get("model_type") or ("tree_ensemble" if has_definition else None)
    if "inference_config" not in body:
        if model_type is None and "model_package" not in body:
            raise ActionRequestValidation("[inference_config] must not be null.")
        task, inference = None, {}
    else:
        try:
            task, inference = inference_config(body["inference_config"])
        except IllegalArgument as exc:
            # ES: the named-object parser wraps builder failures (ObjectParser rethrowFieldParseFailure)
            raise XContentParseError("[trained_model_config] failed to parse field [inference_config]",
                                     caused_by=exc) from exc
    if model_type is None:
        model_type = "pytorch" if task in NLP_TASKS else "tree_ensemble"
    if model_type not in ("pytorch", "tree_ensemble", "lang_ident"):
        raise IllegalArgument(f"No enum constant TrainedModelType.{str(model_type).upper()}")
    if model_type == "pytorch" and task in TREE_TASKS:
        raise StatusException(f"Model [{model_id}] inference config type [{task}] is not supported for model type "
                              f"[pytorch]", 400)
    raw_input = body.get("input")
    field_names = None
    if raw_input is not None:
        for key in raw_input:
            if key != "field_names":
                raise unknown_field("trained_model_config_input", key)
        field_names = raw_input.get("field_names")
        if isinstance(field_names, str):  # ES string-array fields accept a single string
            field_names = [field_names]
        if not field_names:
            raise ActionRequestValidation("[input.field_names] must not be empty")
    elif model_type != "pytorch" and task is not None:
        raise ActionRequestValidation("[input] must not be null.")

    config: dict[str, Any] = {
        "model_id": model_id,
        "model_type": model_type,
        "created_by": "api_user",
        "version": CONFIG_VERSION,
        "create_time": now,
        "model_size_bytes": body.get("model_size_bytes", 0),
        "estimated_operations": body.get("estimated_operations", 0),
        "license_level": "platinum",
        "description": body.get("description"),
        "tags": list(body.get("tags") or []),
        "metadata": body.get("metadata"),
        "input": {"field_names": field_names} if field_names else None,
        "inference_config": inference,
        "default_field_map": body.get("default_field_map"),
        "prefix_strings": body.get("prefix_strings"),
        "platform_architecture": body.get("platform_architecture"),
        "model_package": body.get("model_package"),
    }
    compressed = None
    if model_type == "pytorch":
        if has_definition:
            raise StatusException("pytorch models must be uploaded in parts with the definition part API", 400)
        config["location"] = {"index": {"name": NATIVE_STORE}}
    elif has_definition:
        tree = _tree_definition(model_id, task or "", body, defer_decompression)
        compressed = tree.pop("compressed_definition")
        config.update(tree)
    elif model_type == "tree_ensemble" and "model_package" not in body:
        raise ActionRequestValidation("[definition] must not be null.")
    if config["tags"] and any(not isinstance(t, str) for t in config["tags"]):
        raise XContentParseError("[tags] must be strings")
    if config["prefix_strings"] is not None:
        for key in config["prefix_strings"]:
            if key not in ("ingest", "search"):
                raise unknown_field("prefix_strings", key)
    return {k: v for k, v in config.items() if v is not None}, compressed


def check_model_id(model_id: str) -> None:
    """ES MlStrings.isValidId + length: lowercase alphanumerics, '-', '_', '.'; starts and ends alphanumeric."""
    import re

    if len(model_id) > 64 or not re.fullmatch(r"[a-z0-9](?:[a-z0-9_\-.]*[a-z0-9])?", model_id):
        raise EsError(f"Invalid model_id; '{model_id}' can contain lowercase alphanumeric (a-z and 0-9), hyphens or "
                      "underscores; must start and end with alphanumeric", status=400,
                      type="action_request_validation_exception")


def lang_ident_config() -> dict[str, Any]:
    """The built-in language identification model every cluster lists (values as ES reports them) [K]."""
    return {
        "model_id": "lang_ident_model_1",
        "model_type": "lang_ident",
        "created_by": "_xpack",
        "version": "7.6.0",
        "description": "Model used for identifying language from arbitrary input text.",
        "create_time": 1575548914594,
        "model_size_bytes": 1053992,
        "estimated_operations": 39629,
        "license_level": "basic",
        "tags": ["lang_ident", "prepackaged"],
        "input": {"field_names": ["text"]},
        "inference_config": {"classification": _tree_config("classification", {})},
    }
