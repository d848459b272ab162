"""Elasticsearch's naming rules, as data with their source, checked at load time (no I/O).

Kinds call `name_problems(resource, RULE)` from their validate(); the engine itself names no kind here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from provisioning.errors import Problem
from provisioning.model import Resource


@dataclass(frozen=True)
class NameRule:
    what: str  # "index name", "trained model id", ...
    source: str  # where Elasticsearch enforces it
    pattern: str | None = None  # full-match regex
    lowercase: bool = False
    forbidden_chars: str = ""
    forbidden_prefixes: tuple[str, ...] = ()
    reserved: tuple[str, ...] = ()
    max_bytes: int | None = None
    max_chars: int | None = None
    hint: str = ""


# ES: MetadataCreateIndexService.validateIndexOrAliasName (Strings.INVALID_FILENAME_CHARS = \ / * ? " < > | , space;
# then '#', ':'), validateIndexName (lowercase; no leading '_', '-', '+'; not '.' or '..'; at most 255 bytes).
# Aliases go through the same validateIndexOrAliasName (AliasValidator.validateAliasStandalone).
INDEX_NAME = NameRule(
    what="index name",
    source="Elasticsearch MetadataCreateIndexService.validateIndexOrAliasName",
    lowercase=True,
    forbidden_chars='\\/*?"<>|, #:',
    forbidden_prefixes=("_", "-", "+"),
    reserved=(".", ".."),
    max_bytes=255,
    hint="use lowercase letters, digits, '-' and '_', not starting with '_', '-' or '+'",
)
# The index kind serves `name` as an alias over physical indices `<name>-000001`, `-000002` ... (kinds/index.py),
# so the name itself must leave room for that 7-byte suffix within ES's 255 bytes.
MANAGED_INDEX_NAME = NameRule(**{**INDEX_NAME.__dict__, "max_bytes": 255 - len("-000001"),
                                 "source": INDEX_NAME.source + " (255 bytes, minus the -NNNNNN version suffix)"})
ALIAS_NAME = NameRule(**{**INDEX_NAME.__dict__, "what": "alias name",
                         "source": "Elasticsearch AliasValidator (validateIndexOrAliasName)"})

# ES: MlStrings.VALID_ID_CHAR_PATTERN "[a-z0-9](?:[a-z0-9_\-.]*[a-z0-9])?" and ID_LENGTH_LIMIT = 64, checked by
# PutTrainedModelAction (isValidId + hasValidLengthForId); "_all" is rejected by isValidId.
TRAINED_MODEL_ID = NameRule(
    what="trained model id",
    source="Elasticsearch MlStrings.isValidId / MlStrings.ID_LENGTH_LIMIT",
    pattern=r"[a-z0-9](?:[a-z0-9_\-.]*[a-z0-9])?",
    reserved=("_all",),
    max_chars=64,
    hint="use lowercase letters, digits, '-', '_' and '.', starting and ending with a letter or digit, "
         "at most 64 characters",
)
# ES: PutInferenceModelAction.Request.validate -> MlStrings.isValidId(inference_id) (same pattern, no length check).
INFERENCE_ID = NameRule(
    what="inference endpoint id",
    source="Elasticsearch PutInferenceModelAction.Request.validate (MlStrings.isValidId)",
    pattern=r"[a-z0-9](?:[a-z0-9_\-.]*[a-z0-9])?",
    reserved=("_all",),
    hint="use lowercase letters, digits, '-', '_' and '.', starting and ending with a letter or digit",
)
# A deployment id is checked like a model id (StartTrainedModelDeploymentAction.Request.validate).
DEPLOYMENT_ID = NameRule(**{**TRAINED_MODEL_ID.__dict__, "what": "deployment id",
                            "source": "Elasticsearch StartTrainedModelDeploymentAction (MlStrings.isValidId)"})


def name_errors(rule: NameRule, name: str) -> list[str]:
    """Why `name` breaks `rule` (empty when it is valid)."""
    if not isinstance(name, str) or not name:
        return [f"{rule.what} must be a non-empty string"]
    errors = []
    if name in rule.reserved:
        errors.append(f"{rule.what} {name!r} is reserved")
    if rule.lowercase and name != name.lower():
        errors.append(f"{rule.what} {name!r} must be lowercase")
    bad = sorted({c for c in name if c in rule.forbidden_chars})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        errors.append(f"{rule.what} {name!r} must not contain {shown}")
    if name.startswith(rule.forbidden_prefixes):
        errors.append(f"{rule.what} {name!r} must not start with {name[0]!r}")
    if rule.max_bytes and len(name.encode()) > rule.max_bytes:
        errors.append(f"{rule.what} is {len(name.encode())} bytes long, more than {rule.max_bytes}")
    if rule.max_chars and len(name) > rule.max_chars:
        errors.append(f"{rule.what} is {len(name)} characters long, more than {rule.max_chars}")
    if rule.pattern and not errors and not re.fullmatch(rule.pattern, name):
        errors.append(f"{rule.what} {name!r} is not valid")
    return errors


def name_problems(resource: Resource, rule: NameRule, name: str | None = None, path: str = "name") -> list[Problem]:
    """Problems for the resource's name (or another name inside it, at `path`), with the rule's hint and source."""
    name = resource.name if name is None else name
    where = resource.line_of(path)
    return [Problem(where.file, where.line, message, f"{rule.hint} ({rule.source})")
            for message in name_errors(rule, name)]
