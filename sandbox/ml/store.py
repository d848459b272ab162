"""Trained models: configs, definition parts, vocabularies, aliases (deployments live in deployments.py).

Contract used by other areas (inference endpoints, search) -- keep these names stable:
  MlStore.get_model(id_or_alias) -> TrainedModel | None
  MlStore.deployments: Deployments         start/stop/infer (see sandbox/ml/deployments.py)
  MlStore.pipelines_referencing(model_id)  ingest pipelines whose inference processor names the model or an alias

State persistence (dump/load): configs, definition parts (base64 strings, as uploaded), vocabularies, aliases and
deployment parameters. Loaded TorchScript modules are never dumped; after load() each deployment is marked for a
lazy restart: its model is reloaded from the stored parts on first inference (ES re-assigns deployments after a
full cluster restart too).
"""

from __future__ import annotations

import base64
import fnmatch
import re
import time
from dataclasses import dataclass, field
from typing import Any

from sandbox.errors import ActionRequestValidation, EsError, ResourceAlreadyExists, ResourceNotFound, StatusException
from sandbox.ids import now_millis
from sandbox.ml.config import build_config, check_model_id, lang_ident_config
from sandbox.ml.deployments import Deployments

LANG_IDENT = "lang_ident_model_1"
# Models ES downloads itself (model packages); the sandbox has no network, so their download never finishes.
PACKAGED_MODELS = {".elser_model_1", ".elser_model_2", ".elser_model_2_linux-x86_64", ".multilingual-e5-small",
                   ".multilingual-e5-small_linux-x86_64", ".rerank-v1", ".elser_model_2_sagemaker"}



_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def base64_decoded_length(text: str) -> int:
    """Validate base64 as Java's Base64.getDecoder() does (padding optional, ES PutTrainedModelDefinitionPartAction
    decodes the part when parsing it) and return the decoded length without decoding: parts are decoded once, when
    a deployment starts, so concurrent 1 MiB uploads are not serialised on decoding. One pass over the text (the
    translate), no copy of it beyond the ASCII encoding."""
    data = text.encode("ascii") if isinstance(text, str) else bytes(text)
    padding = 2 if data.endswith(b"==") else 1 if data.endswith(b"=") else 0
    length = len(data) - padding
    tail = length % 4
    if data.translate(None, _BASE64_ALPHABET) != b"=" * padding or tail == 1 or (padding and len(data) % 4):
        raise ValueError("Input byte array has wrong 4-byte ending unit or an illegal character")
    return length // 4 * 3 + {0: 0, 2: 1, 3: 2}[tail]


@dataclass
class TrainedModel:
    config: dict[str, Any]
    parts: dict[int, str] = field(default_factory=dict)  # part number -> base64 chunk as uploaded
    part_lengths: dict[int, int] = field(default_factory=dict)
    total_length: int | None = None
    total_parts: int | None = None
    vocabulary: dict[str, Any] | None = None
    compressed_definition: str | None = None  # tree models only
    downloading: bool = False
    # ES stores parts as documents of the .ml-inference-native index and refreshes it only when it stores the LAST
    # part (TransportPutTrainedModelDefinitionPartAction: refresh when part == total_parts - 1); what reads the
    # definition back (definition_status, the deployment start) searches, so a part stored after that refresh is
    # invisible until the index's next periodic refresh (Pace.ml_refresh_seconds, ES's 1s refresh_interval).
    part_stored_at: dict[int, float] = field(default_factory=dict)
    refreshed_at: float = 0.0

    @property
    def model_id(self) -> str:
        return self.config["model_id"]

    @property
    def model_type(self) -> str:
        return self.config["model_type"]

    def visible_parts(self, refresh_seconds: float = 1.0) -> list[int]:
        """The parts a search sees: stored before the last refresh, or long enough ago for a periodic refresh."""
        now = time.monotonic()
        return sorted(p for p, at in self.part_stored_at.items()
                      if at <= self.refreshed_at or at + refresh_seconds <= now)

    def fully_defined(self, refresh_seconds: float = 1.0) -> bool:
        """ES checkFullModelDefinitionIsPresent: all parts present (as a search sees them) and their lengths add
        up to the declared total."""
        if self.total_parts is None or not self.parts:
            return False
        visible = self.visible_parts(refresh_seconds)
        return (visible == list(range(self.total_parts))
                and sum(self.part_lengths[p] for p in visible) == self.total_length)

    def definition_bytes(self) -> bytes:
        # padding is optional for ES (Java's decoder), not for Python's
        return b"".join(base64.b64decode(self.parts[i] + "=" * (-len(self.parts[i]) % 4)) for i in sorted(self.parts))

    def dump(self) -> dict[str, Any]:
        return {"config": self.config, "parts": {str(k): v for k, v in self.parts.items()},
                "part_lengths": {str(k): v for k, v in self.part_lengths.items()},
                "total_length": self.total_length, "total_parts": self.total_parts, "vocabulary": self.vocabulary,
                "compressed_definition": self.compressed_definition, "downloading": self.downloading}

    @classmethod
    def load(cls, data: dict[str, Any]) -> TrainedModel:
        parts = {int(k): v for k, v in data.get("parts", {}).items()}
        return cls(config=data["config"], parts=parts, part_stored_at=dict.fromkeys(parts, 0.0),
                   part_lengths={int(k): v for k, v in data.get("part_lengths", {}).items()},
                   total_length=data.get("total_length"), total_parts=data.get("total_parts"),
                   vocabulary=data.get("vocabulary"), compressed_definition=data.get("compressed_definition"),
                   downloading=data.get("downloading", False))


def not_found(expression: str) -> ResourceNotFound:
    return ResourceNotFound(f"Could not find trained model [{expression}]")


_ALIAS_RE = re.compile(r"[a-z0-9](?:[a-z0-9_\-.]*[a-z])?")


# The one simulated ML node: what GET _ml/info reports and what deployments may use. Tests change these on
# `cluster.ml` (0 memory = a cluster without ML nodes); reset() restores them.
DEFAULT_ML_MEMORY_BYTES = 4 << 30
DEFAULT_ML_PROCESSORS = 2


class MlStore:
    def __init__(self, cluster: Any):
        self.cluster = cluster
        self.deployments = Deployments(self)
        self.reset()

    # ---- lifecycle -----------------------------------------------------------------------------------------
    def reset(self) -> None:
        self.ml_memory_bytes = DEFAULT_ML_MEMORY_BYTES
        self.ml_processors = DEFAULT_ML_PROCESSORS
        self.models: dict[str, TrainedModel] = {LANG_IDENT: TrainedModel(lang_ident_config())}
        self.aliases: dict[str, str] = {}
        self.deployments.reset()

    def dump(self) -> dict[str, Any]:
        return {"models": {k: m.dump() for k, m in self.models.items() if k != LANG_IDENT},
                "aliases": dict(self.aliases), "deployments": self.deployments.dump()}

    def load(self, data: dict[str, Any]) -> None:
        self.reset()
        for model_id, model in data.get("models", {}).items():
            self.models[model_id] = TrainedModel.load(model)
        self.aliases = dict(data.get("aliases", {}))
        self.deployments.load(data.get("deployments", {}))

    # ---- lookups ---------------------------------------------------------------------------------------------
    def get_model(self, id_or_alias: str) -> TrainedModel | None:
        return self.models.get(self.aliases.get(id_or_alias, id_or_alias))

    def require_model(self, id_or_alias: str) -> TrainedModel:
        model = self.get_model(id_or_alias)
        if model is None:
            raise not_found(id_or_alias)
        return model

    def aliases_of(self, model_id: str) -> list[str]:
        return sorted(a for a, m in self.aliases.items() if m == model_id)

    def expand(self, expression: str | None, allow_no_match: bool = True) -> list[TrainedModel]:
        """ES ExpandedIdsMatcher over model ids and aliases: csv, wildcards, `_all`; sorted by model id."""
        parts = [p for p in (expression or "_all").split(",") if p] or ["_all"]
        found: dict[str, TrainedModel] = {}
        missing = []
        for part in parts:
            if part in ("_all", "*"):
                found.update(self.models)
                continue
            if "*" in part:
                matched = [m for i, m in self.models.items() if fnmatch.fnmatchcase(i, part)]
                matched += [self.models[m] for a, m in self.aliases.items()
                            if fnmatch.fnmatchcase(a, part) and m in self.models]
                if not matched and not allow_no_match:
                    missing.append(part)
                found.update({m.model_id: m for m in matched})
                continue
            model = self.get_model(part)
            if model is None:
                missing.append(part)
            else:
                found[model.model_id] = model
        if missing:
            raise not_found(",".join(missing))
        return [found[k] for k in sorted(found)]

    def pipelines_referencing(self, model_id: str) -> list[str]:
        """Pipelines with an inference processor naming the model or one of its aliases.

        The indices area stores pipelines as `cluster.indices.pipelines` (id -> body); it may not exist yet.
        """
        names = {model_id, *self.aliases_of(model_id)}
        return [pid for pid, body in self._pipelines().items() if names & _inference_processor_ids(body)]

    def pipeline_references(self, names: set[str]) -> list[str]:
        return [pid for pid, body in self._pipelines().items() if names & _inference_processor_ids(body)]

    def _pipelines(self) -> dict[str, Any]:
        return getattr(self.cluster.indices, "pipelines", None) or {}

    # ---- writes ----------------------------------------------------------------------------------------------
    def put_model(self, model_id: str, body: dict[str, Any], *, defer_decompression: bool = False,
                  wait_for_completion: bool = False) -> dict[str, Any]:
        if model_id in PACKAGED_MODELS:
            return self._put_packaged(model_id, body)
        check_model_id(model_id)
        if model_id in self.models:
            # ES: TrainedModelProvider.storeTrainedModel -> ResourceAlreadyExistsException (§2.2)
            raise ResourceAlreadyExists(f"Trained machine learning model [{model_id}] already exists")
        if model_id in self.deployments.by_id:
            raise StatusException(f"Cannot create model [{model_id}] the id is the same as an current model "
                                  f"deployment", 400)
        config, compressed = build_config(model_id, body, now=now_millis(), defer_decompression=defer_decompression)
        self.models[model_id] = TrainedModel(config, compressed_definition=compressed)
        return config

    def _put_packaged(self, model_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """ES downloads packaged models from its model repository after PUT; without network it never finishes."""
        if model_id in self.models:
            raise ResourceAlreadyExists(f"Trained machine learning model [{model_id}] already exists")
        config = {"model_id": model_id, "model_type": "pytorch", "created_by": "api_user",
                  "version": "12.0.0", "create_time": now_millis(), "model_size_bytes": 0, "estimated_operations": 0,
                  "license_level": "platinum", "tags": [],
                  "input": body.get("input") or {"field_names": ["text_field"]},
                  "inference_config": {}, "location": {"index": {"name": ".ml-inference-native-000002"}},
                  "model_package": {"packaged_model_id": model_id.lstrip(".")}}
        self.models[model_id] = TrainedModel(config, downloading=True)
        return config

    @staticmethod
    def check_definition_part(part: int, body: dict[str, Any]) -> int:
        """Parse and validate a definition part as ES's REST layer and Request#validate do, before any model
        lookup; returns the decoded length. Needs no lock, so concurrent uploads check in parallel."""
        allowed = {"definition", "total_definition_length", "total_parts"}
        for key in body:
            if key not in allowed:
                raise EsError(f"[put_trained_model_definition_part_action] unknown field [{key}]", status=400,
                              type="x_content_parse_exception")
        problems = []
        for key in sorted(allowed):
            if body.get(key) is None:
                problems.append(f"[{key}] is required")
        if problems:
            raise EsError(f"[put_trained_model_definition_part_action] failed to parse: {'; '.join(problems)}",
                          status=400, type="x_content_parse_exception")
        total_parts, total_length = int(body["total_parts"]), int(body["total_definition_length"])
        # ES PutTrainedModelDefinitionPartAction.Request.validate
        validation = []
        if part < 0:
            validation.append("[part] must be greater or equal to 0")
        if total_parts <= 0:
            validation.append("[total_parts] must be greater than 0")
        if part >= total_parts:
            validation.append("[part] must be less than total_parts")
        if total_length <= 0:
            validation.append("[total_definition_length] must be greater than 0")
        if validation:
            raise ActionRequestValidation(*validation)
        try:
            return base64_decoded_length(body["definition"])
        except ValueError as exc:
            raise EsError(f"[definition] failed to decode base64: {exc}", status=400,
                          type="x_content_parse_exception") from exc

    def store_definition_part(self, model_id: str, part: int, body: dict[str, Any], raw_length: int) -> None:
        """Store a checked part (under the cluster lock: a dict insert, so parts are stored concurrently)."""
        model = self.models.get(model_id)
        if model is None:
            raise not_found(model_id)
        if model.model_type != "pytorch":
            # ES TransportPutTrainedModelDefinitionPartAction: only models stored by location (pytorch) take parts
            raise StatusException(f"cannot put definition for model [{model_id}] as location is null", 400)
        if part in model.parts:
            # ES TrainedModelProvider.storeTrainedModelDefinitionDoc: the part is indexed with op_type=create and the
            # version conflict becomes ResourceAlreadyExistsException (INFERENCE_TRAINED_MODEL_DOC_EXISTS)
            raise ResourceAlreadyExists(f"Trained machine learning model chunked doc [{model_id}][{part}] already "
                                        f"exists")
        total_parts = int(body["total_parts"])
        model.parts[part] = body["definition"]
        model.part_lengths[part] = raw_length
        model.part_stored_at[part] = time.monotonic()
        model.total_parts = total_parts
        model.total_length = int(body["total_definition_length"])
        if part == total_parts - 1:
            model.refreshed_at = time.monotonic()  # the last part's write refreshes the index

    def put_definition_part(self, model_id: str, part: int, body: dict[str, Any]) -> None:
        self.store_definition_part(model_id, part, body, self.check_definition_part(part, body))

    def put_vocabulary(self, model_id: str, body: dict[str, Any]) -> None:
        model = self.models.get(model_id)
        if model is None:
            raise not_found(model_id)
        for key in body:
            if key not in ("vocabulary", "merges", "scores"):
                raise EsError(f"[put_trained_model_vocabulary] unknown field [{key}]", status=400,
                              type="x_content_parse_exception")
        # ES PutTrainedModelVocabularyAction.Request.validate
        if not body.get("vocabulary"):
            raise ActionRequestValidation("[vocabulary] must not be empty")
        if body.get("scores") and len(body["scores"]) != len(body["vocabulary"]):
            raise ActionRequestValidation("[scores] must have same length as [vocabulary]")
        if model.model_type != "pytorch":
            raise StatusException(f"cannot put vocabulary for model [{model_id}] as it is not an NLP model", 400)
        if model.vocabulary is not None:
            # ES TrainedModelProvider.storeTrainedModelVocabulary: REST requests never allow overwriting
            # (PutTrainedModelVocabularyAction.Request.parseRequest passes allowOverwriting=false), so the vocabulary
            # doc is indexed with op_type=create and a second upload is INFERENCE_TRAINED_MODEL_VOCAB_EXISTS
            raise ResourceAlreadyExists(f"Trained machine learning model [{model_id}] vocabulary already exists")
        model.vocabulary = {k: body[k] for k in ("vocabulary", "merges", "scores") if k in body}

    def delete_model(self, model_id: str, force: bool = False) -> None:
        model = self.models.get(model_id)
        if model is None:
            raise not_found(model_id)
        if model_id == LANG_IDENT:
            raise StatusException(f"Unable to delete model [{model_id}] as it is required by machine learning", 400)
        if not force:
            # ES TransportDeleteTrainedModelAction: pipelines (directly, then via an alias), then deployments.
            if self.pipeline_references({model_id}):
                raise StatusException(f"Cannot delete model [{model_id}] as it is still referenced by ingest "
                                      f"processors; use force to delete the model", 409)
            for alias in self.aliases_of(model_id):
                if self.pipeline_references({alias}):
                    raise StatusException(f"Cannot delete model [{model_id}] as it has a model_alias [{alias}] that "
                                          f"is still referenced by ingest processors; use force to delete the model",
                                          409)
            if self.deployments.of_model(model_id):
                raise StatusException(f"Cannot delete model [{model_id}] as it is currently deployed; use force to "
                                      f"delete the model", 409)
        for deployment in self.deployments.of_model(model_id):
            self.deployments.remove(deployment.deployment_id)
        for alias in self.aliases_of(model_id):
            del self.aliases[alias]
        del self.models[model_id]

    # ---- aliases (ES TransportPutTrainedModelAliasAction) ------------------------------------------------------
    def put_alias(self, alias: str, model_id: str, reassign: bool = False) -> None:
        if not _ALIAS_RE.fullmatch(alias):
            raise EsError(f"Invalid model_alias; '{alias}' can contain lowercase alphanumeric (a-z and 0-9), hyphens "
                          "or underscores; must start with alphanumeric and cannot end with numbers", status=400,
                          type="action_request_validation_exception")
        if alias == model_id:
            raise EsError("model_alias cannot be the same as model_id", status=400,
                          type="action_request_validation_exception")
        if alias in self.models:
            raise StatusException(f"model_alias [{alias}] cannot equal an existing model_id", 400)
        model = self.models.get(model_id)
        if model is None:
            raise not_found(model_id)
        old_id = self.aliases.get(alias)
        if old_id is not None and old_id != model_id:
            if not reassign:
                raise StatusException(f"cannot assign model_alias [{alias}] to model_id [{model_id}] as "
                                      f"model_alias already refers to [{old_id}]. Set parameter [reassign] to [true] "
                                      f"if model_alias should be reassigned.", 400)
            old = self.models.get(old_id)
            if old is not None:
                old_task = next(iter(old.config.get("inference_config", {})), None)
                new_task = next(iter(model.config.get("inference_config", {})), None)
                if old_task != new_task:
                    raise StatusException(f"cannot reassign model_alias [{alias}] to model [{model_id}] with inference "
                                          f"config type [{new_task}] from model [{old_id}] with type [{old_task}]", 400)
                if (old.model_type == "pytorch" and self.deployments.of_model(old_id)
                        and not self.deployments.of_model(model_id)):
                    raise StatusException(f"cannot reassign model_alias [{alias}] to model [{model_id}] from model "
                                          f"[{old_id}] as it is not yet deployed", 400)
        self.aliases[alias] = model_id

    def delete_alias(self, alias: str, model_id: str) -> None:
        current = self.aliases.get(alias)
        if current is None:
            raise ResourceNotFound(f"model_alias [{alias}] could not be found")
        if current != model_id:
            raise StatusException(f"model_alias [{alias}] does not refer to provided model_id [{model_id}]", 409)
        del self.aliases[alias]


def _inference_processor_ids(pipeline: Any) -> set[str]:
    """model_id of every inference processor, including on_failure and nested processors."""
    ids: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            inference = value.get("inference")
            if isinstance(inference, dict) and isinstance(inference.get("model_id"), str):
                ids.add(inference["model_id"])
            for child in value.values():
                walk(child)
        elif isinstance(value, list):
            for child in value:
                walk(child)

    walk(pipeline)
    return ids
