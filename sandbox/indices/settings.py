"""Index settings: normalisation to flat `index.*` string values, nesting for output, validation."""

from __future__ import annotations

from typing import Any

from sandbox.errors import EsError, IllegalArgument
from sandbox.indices import settings_catalog as catalog
from sandbox.indices.names import glob_match

Value = str | list[str] | None


def _stringify(key: str, value: Any) -> Value:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return [_stringify(key, v) for v in value]  # type: ignore[misc]
    return str(value)


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    else:
        out[prefix] = value


def normalise(body: Any, *, what: str = "settings") -> dict[str, Value]:
    """Flat, nested or unprefixed settings -> {"index.x": "string" | [..] | None (reset)}."""
    if body is None:
        return {}
    if not isinstance(body, dict):
        # ES (poorly_formatted_bad_request): a non-object settings value is a 400, not a 500.
        raise EsError(f"Failed to parse [{what}]: expected an object but found [{type(body).__name__}]",
                      status=400, type="illegal_argument_exception")
    flat: dict[str, Any] = {}
    _flatten("", body, flat)
    result: dict[str, Value] = {}
    for key, value in flat.items():
        full = key if key.startswith("index.") else f"index.{key}"
        result[full] = _stringify(full, value)
    return result


def nest(flat: dict[str, Value]) -> dict[str, Any]:
    """{"index.a.b": "1"} -> {"index": {"a": {"b": "1"}}}, keys sorted like ES's Settings."""
    root: dict[str, Any] = {}
    for key in sorted(flat):
        node = root
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):  # "a" and "a.b" both set: keep the flat key (rare)
                child = node[part] = {"": child}
            node = child
        node[parts[-1]] = flat[key]
    return root


def render(flat: dict[str, Value], flat_settings: bool) -> dict[str, Any]:
    return dict(sorted(flat.items())) if flat_settings else nest(flat)


def filter_names(flat: dict[str, Value], names: list[str] | None) -> dict[str, Value]:
    if not names or "_all" in names:
        return flat
    return {k: v for k, v in flat.items() if any(glob_match(n, k) for n in names)}


def unknown_setting(key: str) -> IllegalArgument:
    return IllegalArgument(f"unknown setting [{key}] please check that any required plugins are installed, or check "
                           "the breaking changes documentation for removed settings")


def _check_value(key: str, value: Value) -> None:
    if value is None or isinstance(value, list):
        return
    if key in catalog.INT_MIN:
        try:
            number = int(value)
        except ValueError as exc:
            raise IllegalArgument(f"Failed to parse value [{value}] for setting [{key}]") from exc
        if number < catalog.INT_MIN[key]:
            raise IllegalArgument(f"Failed to parse value [{value}] for setting [{key}] must be >= "
                                  f"{catalog.INT_MIN[key]}")
        if key == "index.number_of_shards" and number > catalog.MAX_SHARDS:
            raise IllegalArgument(f"Failed to parse value [{value}] for setting [{key}] must be <= "
                                  f"{catalog.MAX_SHARDS}")
    elif key in catalog.BOOLEANS and value not in ("true", "false"):
        raise IllegalArgument(f"Failed to parse value [{value}] as only [true] or [false] are allowed.")
    elif key in catalog.CHOICES and value.lower() not in catalog.CHOICES[key]:
        if key == "index.codec":
            raise IllegalArgument(f"unknown value for [index.codec] must be one of [default, best_compression] "
                                  f"but was: {value}")
        if key == "index.mode":  # ES IndexMode.fromString
            raise IllegalArgument(f"[{value}] is an invalid index mode, valid modes are: "
                                  f"[{', '.join(catalog.CHOICES[key])}]")
        if key == "index.translog.durability":  # ES Translog.Durability.valueOf
            raise IllegalArgument(f"No enum constant org.elasticsearch.index.translog.Translog.Durability."
                                  f"{value.upper()}")
        raise IllegalArgument(f"unknown value [{value}] for setting [{key}]; must be one of "
                              f"{list(catalog.CHOICES[key])}")


def validate_known(flat: dict[str, Value], *, creating: bool) -> None:
    for key, value in flat.items():
        kind = catalog.kind_of(key)
        if kind is None:
            raise unknown_setting(key)
        if key in catalog.PRIVATE and value is not None:
            raise IllegalArgument(f"private index setting [{key}] can not be set explicitly")
        _check_value(key, value)


def validate_create(flat: dict[str, Value]) -> None:
    """Create-time rules (ES: MetadataCreateIndexService.validateIndexSettings / aggregateIndexSettings)."""
    validate_known(flat, creating=True)
    if flat.get("index.soft_deletes.enabled") == "false":
        raise IllegalArgument("Creating indices with soft-deletes disabled is no longer supported. Please do not "
                              "specify a value for setting [index.soft_deletes.enabled].")
    mode = flat.get("index.mode")
    if mode == "lookup":
        # ES: IndexMode.LOOKUP validates number_of_shards == 1 (LookupIndexModeIT / indices.create yaml)
        shards = flat.get("index.number_of_shards")
        if shards not in (None, "1"):
            raise IllegalArgument(f"index with [lookup] mode must have [index.number_of_shards] set to 1 or unset; "
                                  f"provided {shards}")
    if mode == "time_series" and not flat.get("index.routing_path"):
        raise IllegalArgument("[index.mode=time_series] requires a non-empty [index.routing_path]")
    from sandbox.indices.analysis import validate_analysis

    validate_analysis(flat)


def check_update(flat: dict[str, Value], indices: list[Any], reopen: bool) -> None:
    """Update rules of ES MetadataUpdateSettingsService.UpdateSettingsTask.execute:
    - any non-dynamic key (static or final) with an open index in the request: one error naming all open indices,
      unless reopen=true (8.12+: the open indices are closed, updated and reopened);
    - then, as for closed indices, AbstractScopedSettings.updateSettings refuses a changed final setting with
      "final <index name> setting [key], not updateable"."""
    validate_known(flat, creating=False)
    skipped = sorted(k for k in flat if catalog.kind_of(k) != "dynamic")
    opened = [i for i in indices if not i.closed]
    if skipped and opened and not reopen:
        listed = ", ".join(f"[{i.name}/{i.uuid}]" for i in opened)
        raise IllegalArgument(f"Can't update non dynamic settings [[{', '.join(skipped)}]] for open indices "
                              f"[{listed}]")
    for index in indices:
        for key in skipped:
            if catalog.kind_of(key) in ("final", "generated") and index.settings.get(key) != flat[key]:
                raise IllegalArgument(f"final {index.name} setting [{key}], not updateable")
    if any(k.startswith("index.analysis.") for k in flat):
        from sandbox.indices.analysis import validate_analysis

        validate_analysis(flat)


def defaults_for(flat: dict[str, Value]) -> dict[str, Value]:
    """Settings ES reports under `defaults` (include_defaults=true): known defaults not explicitly set."""
    return {k: v for k, v in sorted(catalog.DEFAULTS.items()) if k not in flat}
