"""Shared normalisation and diff helpers, so an unchanged manifest plans no change (no perpetual diffs).

Rules (as terraform-provider-elasticstack's mappings_value.go and index_settings_value.go do): compare only what the
user declared; normalise the way Elasticsearch reports values (settings flat, `index.`-prefixed, stringified; mappings
without the implicit `type: object`); never compare secrets, only their hashes; remove a key the user dropped only if WE
set it (last-applied, kubectl-style).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from provisioning.model import FieldDiff

MASK = "(sensitive value)"


# ---- hashing ------------------------------------------------------------------------------------------
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def canonical_json(value: Any) -> str:
    """Deterministic JSON (sorted keys, no whitespace) for hashing and stable output. One encoder for every call:
    json.dumps with options builds a new one each time, a quarter of the cost for a small document."""
    return _CANONICAL.encode(value)


def spec_hash(value: Any) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(value).encode()).hexdigest()[:32]


def secret_hash(value: str, salt: str) -> str:
    """A salted hash of a secret, so rotation is detected without storing the secret (secrets_wo_version idea)."""
    return "hmac-sha256:" + hmac.new(salt.encode(), value.encode(), hashlib.sha256).hexdigest()[:32]


# ---- scalars ------------------------------------------------------------------------------------------
def stringify(value: Any) -> Any:
    """ES renders setting values as strings: 1 -> "1", True -> "true"; lists element-wise; None stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return [stringify(v) for v in value]
    if isinstance(value, dict):
        return {k: stringify(v) for k, v in value.items()}
    return str(value)


def scalar_equal(desired: Any, live: Any) -> bool:
    """Equality that treats a stringified scalar as the scalar ("true" == True, "1" == 1)."""
    if desired == live:
        return True
    if isinstance(desired, dict | list) or isinstance(live, dict | list):
        return stringify(desired) == stringify(live)
    return desired is not None and live is not None and stringify(desired) == stringify(live)


# ---- settings -----------------------------------------------------------------------------------------
def flatten(value: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts to dotted keys; lists and scalars are leaves."""
    flat: dict[str, Any] = {}
    for key, item in value.items():
        path = f"{prefix}{key}"
        if isinstance(item, dict) and item:
            flat.update(flatten(item, path + "."))
        else:
            flat[path] = item
    return flat


def flat_settings(settings: dict[str, Any] | None) -> dict[str, Any]:
    """Settings in ES's flat form: `index.`-prefixed dotted keys with string values (flat, nested and bare
    keys all normalise to the same thing, ES Settings.Builder.normalizePrefix)."""
    out: dict[str, Any] = {}
    for key, value in flatten(settings or {}).items():
        out[key if key.startswith("index.") else f"index.{key}"] = stringify(value)
    return out


# ---- mappings -----------------------------------------------------------------------------------------
def normalise_mapping(node: Any) -> Any:
    """Drops what ES adds or reformats in a mapping: the implicit `type: object` beside `properties`,
    and stringified booleans/numbers in parameters are compared as scalars by declared_diffs anyway."""
    if isinstance(node, dict):
        out = {k: normalise_mapping(v) for k, v in node.items()}
        if out.get("type") == "object" and "properties" in out:
            del out["type"]
        return out
    if isinstance(node, list):
        return [normalise_mapping(v) for v in node]
    return node


# ---- declared-keys-only comparison --------------------------------------------------------------------
def declared_diffs(desired: Any, live: Any, path: str = "", *, ignore: frozenset[str] = frozenset()) -> list[FieldDiff]:
    """FieldDiffs for the keys the user declared that live does not match. Keys only live has (server defaults,
    ES-added `model_settings`, template extras) are not drift. Lists compare whole (order matters in ES lists)."""
    if isinstance(desired, dict) and isinstance(live, dict):
        diffs: list[FieldDiff] = []
        for key in sorted(desired):
            if key in ignore:
                continue
            sub = f"{path}.{key}" if path else key
            diffs += declared_diffs(desired[key], live.get(key), sub, ignore=ignore)
        return diffs
    if isinstance(desired, dict) and live is None:
        return [FieldDiff(path, None, desired)]
    if scalar_equal(desired, live):
        return []
    return [FieldDiff(path, live, desired)]


# ---- documents -------------------------------------------------------------------------------------
def field_value(doc: dict[str, Any], dotted: str) -> Any:
    """doc["a"]["b"] for "a.b" (or a literal dotted key)."""
    if dotted in doc:
        return doc[dotted]
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


# ---- secrets ------------------------------------------------------------------------------------------
def redact(value: Any, sensitive_keys: frozenset[str] = frozenset({"api_key", "password", "secret", "token"})) -> Any:
    """A copy with the values of sensitive-looking keys masked (for plan output and error messages)."""
    if isinstance(value, dict):
        return {k: (MASK if k.lower() in sensitive_keys or k.lower().endswith(("_key", "_secret", "_token",
                                                                              "password"))
                    and not isinstance(v, dict) else redact(v, sensitive_keys)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, sensitive_keys) for v in value]
    return value
