"""The YAML test language's data side: the stash, path lookup and the assertions.

Semantics follow Elasticsearch's Java runner (the reference), not elasticsearch-py's YamlRunner, whose bugs are
not copied (per ES's runner README.asciidoc: missing path must give null, `contains` is subset matching, ...).
ES: rest-api-spec/src/yamlRestTest/resources/rest-api-spec/test/README.asciidoc and
test/yaml-rest-runner (ObjectPath, Stash, MatchAssertion, ContainsAssertion, IsTrue/IsFalseAssertion).
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any


class TestFailure(AssertionError):
    """A test section failed: an assertion did not hold or a request did not answer as expected."""

    __test__ = False  # not a pytest test class


class TestSkipped(Exception):  # noqa: N818 - mirrors pytest.skip's vocabulary
    """A test section is skipped (skip/requires section, or the repository's skip list)."""

    __test__ = False

    def __init__(self, reason: str, gap: str | None = None):
        super().__init__(reason)
        self.reason = reason
        # set when the skip is due to something the target does not advertise (a named cluster feature, a
        # capability): against the sandbox, that is a conformance gap unless skips.yaml justifies it
        self.gap = gap


class _Missing:
    """A path that does not exist. ES's ObjectPath yields null for it, so assertions treat it as null."""

    def __repr__(self) -> str:
        return "<missing>"


MISSING = _Missing()

_STASH_WHOLE = re.compile(r"^\$(\{)?([A-Za-z_][\w.]*)(?(1)\})$")
_STASH_EMBEDDED = re.compile(r"(\\)?\$\{([^}]+)\}")


def show(value: Any, limit: int = 300) -> str:
    """A short JSON rendering of a value for failure messages."""
    if value is MISSING:
        return "<missing>"
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def split_path(path: str) -> list[str]:
    """`a.b\\.c.0` -> ["a", "b.c", "0"]; `''` -> [] (the whole response)."""
    if path in ("", "$body"):
        return []
    parts, current, i = [], "", 0
    while i < len(path):
        char = path[i]
        if char == "\\" and i + 1 < len(path) and path[i + 1] == ".":
            current += "."
            i += 2
            continue
        if char == ".":
            parts.append(current)
            current = ""
        else:
            current += char
        i += 1
    parts.append(current)
    return parts


class Context:
    """The state of one test section: the last response and the stash."""

    def __init__(self) -> None:
        self.stash: dict[str, Any] = {}
        self.response: Any = None

    def clear(self) -> None:
        self.stash.clear()
        self.response = None

    def set_response(self, body: Any) -> None:
        self.response = body
        # ES: the last response is always stashed as `body` (README "set")
        self.stash["body"] = body

    # ---- stash ---------------------------------------------------------------------------------------------
    def unstash(self, name: str) -> Any:
        """ES Stash.unstash: a path into the stash; null or missing is an error."""
        head, _, rest = name.partition(".")
        value = self.stash.get(head)
        if rest and value is not None:
            value = lookup(value, rest, self)
        if value is None or value is MISSING:
            raise TestFailure(f"stashed value not found for key [{name}]")
        return value

    def resolve(self, value: Any) -> Any:
        """Replace `$name` (the whole value, any type) and `${name}` (inside a string) with stashed values."""
        if isinstance(value, str):
            whole = _STASH_WHOLE.match(value)
            if whole:
                return self.unstash(whole.group(2))
            if "${" in value:
                # `\${x}` stays a literal `${x}` (ES Stash EXTENDED_KEY)
                return _STASH_EMBEDDED.sub(
                    lambda m: m.group(0)[1:] if m.group(1) else _as_text(self.unstash(m.group(2))), value)
            return value
        if isinstance(value, dict):
            return {self._resolve_key(k): self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    def _resolve_key(self, key: Any) -> Any:
        # stash_in_key: a key may itself be a stashed value
        if isinstance(key, str) and key.startswith("$"):
            return _as_text(self.resolve(key))
        return key

    def actual(self, path: str) -> Any:
        """The value an assertion examines: `$name...` reads the stash, anything else the last response."""
        if isinstance(path, str) and path.startswith("$") and not path.startswith("${"):
            return self.unstash(path[1:])
        return lookup(self.response, path, self)


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def lookup(root: Any, path: str, ctx: Context | None = None) -> Any:
    """ES ObjectPath.evaluate: a missing key yields null (MISSING here); a bad list index is an error."""
    value = root
    for part in split_path(path):
        if ctx is not None:
            part = _as_text(ctx.resolve(part)) if (part.startswith("$") or "${" in part) else part
        if value is MISSING or value is None:
            return MISSING
        if isinstance(value, dict):
            if part == "_arbitrary_key_":
                if not value:
                    raise TestFailure(f"[{path}]: no key to pick in an empty object")
                return next(iter(value))
            value = value.get(part, MISSING)
        elif isinstance(value, list):
            if not re.fullmatch(r"-?\d+", part):
                raise TestFailure(f"[{path}]: element was a list, but [{part}] was not numeric")
            index = int(part)
            if not 0 <= index < len(value):
                raise TestFailure(f"[{path}]: element was a list with {len(value)} elements, "
                                  f"but [{part}] was out of bounds")
            value = value[index]
        else:
            return MISSING
    return value


def _kind(value: Any) -> str:
    if value is None or value is MISSING:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def equal(actual: Any, expected: Any) -> bool:
    """JSON equality: objects compare all keys, numbers compare by value, true is not 1."""
    if _kind(actual) != _kind(expected):
        return False
    if isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(equal(actual[k], expected[k]) for k in expected)
    if isinstance(expected, list):
        return len(actual) == len(expected) and all(equal(a, e) for a, e in zip(actual, expected, strict=True))
    if _kind(expected) == "null":
        return True
    return actual == expected


def _regex(expected: Any) -> str | None:
    if isinstance(expected, str):
        text = expected.strip()
        if len(text) > 2 and text.startswith("/") and text.endswith("/"):
            return text[1:-1]
    return None


def _diff(actual: Any, expected: Any, where: str = "") -> str:
    """The first place two values differ, for a readable failure."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in expected:
            if key not in actual:
                return f"at {(where + '.' + str(key)).lstrip('.')}: expected {show(expected[key])}, missing"
            if not equal(actual[key], expected[key]):
                return _diff(actual[key], expected[key], f"{where}.{key}")
        extra = sorted(set(actual) - set(expected))
        return f"{('at ' + where.lstrip('.') + ': ') if where else ''}unexpected keys {extra}"
    if isinstance(expected, list) and isinstance(actual, list) and len(actual) == len(expected):
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            if not equal(a, e):
                return _diff(a, e, f"{where}.{i}")
    prefix = f"at {where.lstrip('.')}: " if where else ""
    return f"{prefix}expected {show(expected)}, got {show(actual)}"


# ---- assertions --------------------------------------------------------------------------------------------
def assert_match(ctx: Context, spec: dict) -> None:
    for path, raw_expected in spec.items():
        actual = ctx.actual(path)
        expected = ctx.resolve(raw_expected)
        pattern = _regex(expected)
        if pattern is not None:
            # ES MatchAssertion: the value must be a string; the regex is searched with the COMMENTS flag
            if not isinstance(actual, str):
                raise TestFailure(f"match [{path}]: expected a string matching /{pattern}/, got {show(actual)}")
            if not re.search(pattern, actual, re.VERBOSE):
                raise TestFailure(f"match [{path}]: {show(actual)} does not match /{pattern}/")
            continue
        if not equal(actual, expected):
            raise TestFailure(f"match [{path}]: {_diff(actual, expected)}")


def _truthy(value: Any) -> bool:
    # ES IsTrueAssertion/IsFalseAssertion: null, "", "false" and "0" (by string form) are false
    if value is None or value is MISSING:
        return False
    text = _as_text(value)
    return not (text in ("", "0") or text.lower() == "false")


def assert_is_true(ctx: Context, path: str) -> None:
    actual = ctx.actual(path)
    if not _truthy(actual):
        raise TestFailure(f"is_true [{path}]: got {show(actual)}")


def assert_is_false(ctx: Context, path: str) -> None:
    actual = ctx.actual(path)
    if _truthy(actual):
        raise TestFailure(f"is_false [{path}]: got {show(actual)}")


def assert_exists(ctx: Context, path: str) -> None:
    if ctx.actual(path) is MISSING:
        raise TestFailure(f"exists [{path}]: the path does not exist")


def assert_length(ctx: Context, spec: dict) -> None:
    for path, raw_expected in spec.items():
        actual = ctx.actual(path)
        expected = ctx.resolve(raw_expected)
        if not isinstance(actual, (list, dict, str)):
            raise TestFailure(f"length [{path}]: {show(actual)} has no length")
        if len(actual) != int(expected):
            raise TestFailure(f"length [{path}]: expected {expected}, got {len(actual)} in {show(actual)}")


def assert_contains(ctx: Context, spec: dict) -> None:
    """ES ContainsAssertion: an object is looked for as a subset of some object of the list, a string as a
    substring of a string; nothing else is supported (not even a scalar in a list)."""
    for path, raw_expected in spec.items():
        actual = ctx.actual(path)
        expected = ctx.resolve(raw_expected)
        if isinstance(expected, str) and isinstance(actual, str):
            ok = expected in actual
        elif isinstance(actual, list) and isinstance(expected, dict):
            ok = any(isinstance(item, dict) and all(k in item and equal(item[k], v) for k, v in expected.items())
                     for item in actual)
        else:
            raise TestFailure(f"contains [{path}]: only an object in a list of objects or a string in a string "
                              f"can be checked, got {show(expected)} in {show(actual)}")
        if not ok:
            raise TestFailure(f"contains [{path}]: {show(expected)} not found in {show(actual)}")


def assert_close_to(ctx: Context, spec: dict) -> None:
    for path, raw_expected in spec.items():
        actual = ctx.actual(path)
        expected = ctx.resolve(raw_expected)
        if not isinstance(expected, dict) or "value" not in expected or "error" not in expected:
            raise TestFailure(f"close_to [{path}]: expected {{value, error}}, got {show(expected)}")
        if _kind(actual) != "number":
            raise TestFailure(f"close_to [{path}]: expected a number, got {show(actual)}")
        if abs(actual - expected["value"]) > expected["error"]:
            raise TestFailure(f"close_to [{path}]: {actual} is not within {expected['error']} "
                              f"of {expected['value']}")


_COMPARISONS = {
    "gt": (lambda a, e: a > e, ">"),
    "gte": (lambda a, e: a >= e, ">="),
    "lt": (lambda a, e: a < e, "<"),
    "lte": (lambda a, e: a <= e, "<="),
}


def assert_compare(ctx: Context, op: str, spec: dict) -> None:
    check, symbol = _COMPARISONS[op]
    for path, raw_expected in spec.items():
        actual = ctx.actual(path)
        expected = ctx.resolve(raw_expected)
        if _kind(actual) != _kind(expected) or _kind(actual) not in ("number", "str"):
            raise TestFailure(f"{op} [{path}]: cannot compare {show(actual)} with {show(expected)}")
        if not check(actual, expected):
            raise TestFailure(f"{op} [{path}]: expected {show(actual)} {symbol} {show(expected)}")


def do_set(ctx: Context, spec: dict) -> None:
    for path, name in spec.items():
        value = ctx.actual(path)
        # ES SetSection stashes whatever the path yields, null for a missing path
        ctx.stash[name] = None if value is MISSING else value


def do_transform_and_set(ctx: Context, spec: dict) -> None:
    """`#base64EncodeCredentials(id,api_key)` reads both paths from the response; `#base64Encode(text)`
    encodes its (stash-resolved) text. ES: TransformAndSetSection."""
    for name, raw in spec.items():
        text = str(raw)
        creds = re.fullmatch(r"#base64EncodeCredentials\((.*),(.*)\)", text)
        plain = re.fullmatch(r"#base64Encode\((.*)\)", text)
        if creds:
            first, second = (ctx.actual(p.strip()) for p in creds.groups())
            value = f"{_as_text(first)}:{_as_text(second)}"
        elif plain:
            value = _as_text(ctx.resolve(plain.group(1)))
        else:
            # ES: an unknown transformation stashes the value as is
            ctx.stash[name] = ctx.resolve(raw)
            continue
        ctx.stash[name] = base64.b64encode(value.encode()).decode()
