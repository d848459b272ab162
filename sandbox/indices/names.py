"""Index and alias names: validation, date-math names, wildcard matching, request index options."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sandbox.errors import EsError, IllegalArgument, InvalidIndexName

# ES: MetadataCreateIndexService.validateIndexOrAliasName / Strings.INVALID_FILENAME_CHARS
_INVALID_CHARS = ["\\", "/", "*", "?", '"', "<", ">", "|", " ", ","]
_INVALID_CHARS_TEXT = "[' ','\"','*',',','/','<','>','?','\\','|']"
MAX_NAME_BYTES = 255


class InvalidAliasName(EsError):
    status, type = 400, "invalid_alias_name_exception"

    def __init__(self, alias: str, why: str):
        super().__init__(f"Invalid alias name [{alias}]: {why}", index=alias, index_uuid="_na_")


def _name_problem(name: str) -> str | None:
    if not name:
        return "must not be empty"
    if any(c in name for c in _INVALID_CHARS):
        return f"must not contain the following characters {_INVALID_CHARS_TEXT}"
    if "#" in name:
        return "must not contain '#'"
    if ":" in name:
        return "must not contain ':'"
    if name[0] in "_-+":
        return "must not start with '_', '-', or '+'"
    if name in (".", ".."):
        return "must not be '.' or '..'"
    if len(name.encode()) > MAX_NAME_BYTES:
        return f"index name is too long, ({len(name.encode())} > {MAX_NAME_BYTES})"
    return None


def validate_index_name(name: str) -> None:
    """ES: MetadataCreateIndexService.validateIndexName (lowercase checked first for indices)."""
    if name != name.lower():
        raise InvalidIndexName(name, "must be lowercase")
    problem = _name_problem(name)
    if problem:
        raise InvalidIndexName(name, problem)


def validate_alias_name(alias: str) -> None:
    """ES: AliasValidator.validateAliasStandalone -> InvalidAliasNameException (400)."""
    problem = _name_problem(alias)
    if problem:
        raise InvalidAliasName(alias, problem)


def is_wildcard(expression: str) -> bool:
    return "*" in expression


def glob_match(pattern: str, name: str) -> bool:
    """ES's Regex.simpleMatch: only `*` is special."""
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, name, re.DOTALL) is not None


def patterns_overlap(a: str, b: str) -> bool:
    """Whether some name matches both simple `*` patterns (ES compares template patterns with automata)."""
    memo: dict[tuple[int, int], bool] = {}

    def go(i: int, j: int) -> bool:
        key = (i, j)
        if key in memo:
            return memo[key]
        if i == len(a) and j == len(b):
            result = True
        elif i < len(a) and a[i] == "*":
            result = go(i + 1, j) or (j < len(b) and (go(i, j + 1) if b[j] != "*" else go(i + 1, j) or go(i, j + 1)))
        elif j < len(b) and b[j] == "*":
            result = go(i, j + 1) or (i < len(a) and go(i + 1, j))
        elif i < len(a) and j < len(b):
            result = a[i] == b[j] and go(i + 1, j + 1)
        else:
            result = False
        memo[key] = result
        return result

    return go(0, 0)


# ---- date math names: <static_{date-math{format|time_zone}}> --------------------------------------------------
# ES: IndexNameExpressionResolver.DateMathExpressionResolver; default format uuuu.MM.dd, UTC.
_JAVA_TOKENS = [("yyyy", "%Y"), ("uuuu", "%Y"), ("yy", "%y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"),
                ("mm", "%M"), ("ss", "%S")]
_UNITS = {"y", "M", "w", "d", "h", "H", "m", "s"}


def _java_format(value: dt.datetime, pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        for token, code in _JAVA_TOKENS:
            if pattern.startswith(token, i):
                out.append(value.strftime(code))
                i += len(token)
                break
        else:
            out.append(pattern[i])
            i += 1
    return "".join(out)


def _add(value: dt.datetime, amount: int, unit: str) -> dt.datetime:
    if unit in ("y", "M"):
        months = value.month - 1 + amount * (12 if unit == "y" else 1)
        return value.replace(year=value.year + months // 12, month=months % 12 + 1)
    seconds = {"w": 604800, "d": 86400, "h": 3600, "H": 3600, "m": 60, "s": 1}[unit]
    return value + dt.timedelta(seconds=amount * seconds)


def _round(value: dt.datetime, unit: str) -> dt.datetime:
    if unit == "y":
        return value.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit == "M":
        return value.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit == "w":
        day = value - dt.timedelta(days=value.weekday())
        return day.replace(hour=0, minute=0, second=0, microsecond=0)
    fields = {"d": "hour", "h": "minute", "H": "minute", "m": "second", "s": "microsecond"}
    keep = ["hour", "minute", "second", "microsecond"]
    cut = keep[keep.index(fields[unit]):]
    return value.replace(**{f: 0 for f in cut})


def _eval_math(expression: str, now: dt.datetime, original: str) -> dt.datetime:
    if expression.startswith("now"):
        value, ops = now, expression[3:]
    elif "||" in expression:
        anchor, ops = expression.split("||", 1)
        try:
            value = dt.datetime.fromisoformat(anchor)
        except ValueError as exc:
            raise EsError(f"failed to parse date field [{anchor}]", status=400, type="parse_exception") from exc
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
    else:
        raise EsError(f"invalid date math expression [{original}]", status=400, type="parse_exception")
    position = 0
    while position < len(ops):
        match = re.match(r"([+-])(\d+)([yMwdhHms])|/([yMwdhHms])", ops[position:])
        if not match:
            raise EsError(f"operator not supported for date math [{ops}]", status=400, type="parse_exception")
        if match.group(4):
            value = _round(value, match.group(4))
        else:
            amount = int(match.group(2)) * (1 if match.group(1) == "+" else -1)
            value = _add(value, amount, match.group(3))
        position += match.end()
    return value


def resolve_date_math(name: str, now: dt.datetime | None = None) -> str:
    """`<logs_{2022-12-31||/d{yyyy-MM-dd}}>` -> `logs_2022-12-31`; other names unchanged."""
    if not (name.startswith("<") and name.endswith(">")):
        return name
    now = now or dt.datetime.now(dt.UTC)
    text, out, i = name[1:-1], [], 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if char != "{":
            if char == "}":
                raise EsError(f"invalid dynamic name expression [{text}]. invalid character at position [{i}]. "
                              "`{` and `}` are reserved characters and should be escaped when used as part of the "
                              "index name using `\\` (e.g. `\\{text\\}`)", status=400, type="parse_exception")
            out.append(char)
            i += 1
            continue
        depth, j = 1, i + 1
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        if depth:
            raise EsError(f"invalid dynamic name expression [{text}]. date math placeholder is open ended",
                          status=400, type="parse_exception")
        inner = text[i + 1:j - 1]
        fmt, zone = "uuuu.MM.dd", None
        if "{" in inner:
            inner, spec = inner.split("{", 1)
            spec = spec.rstrip("}")
            fmt, _, zone = spec.partition("|")
            fmt = fmt or "uuuu.MM.dd"
        value = _eval_math(inner, now, name)
        if zone:
            try:
                from zoneinfo import ZoneInfo

                value = value.astimezone(ZoneInfo(zone))
            except Exception as exc:  # noqa: BLE001 - unknown zone id is ES's 400
                raise IllegalArgument(f"The datetime zone id '{zone}' is not recognised") from exc
        out.append(_java_format(value, fmt))
        i = j
    return "".join(out)


# ---- index options from a request --------------------------------------------------------------------------
_STATES = {"open", "closed", "hidden", "all", "none"}


def expand_states(value: str | None, default: str = "open") -> set[str]:
    parts = [p.strip() for p in (value if value is not None else default).split(",") if p.strip()]
    states: set[str] = set()
    for part in parts:
        if part not in _STATES:
            raise IllegalArgument(f"No enum constant org.elasticsearch.action.support.IndicesOptions.WildcardStates."
                                  f"{part.upper()}")
        if part == "all":
            states |= {"open", "closed", "hidden"}
        elif part != "none":
            states.add(part)
    return states


def index_options(req: Any, expand_default: str = "open", **defaults: Any) -> dict[str, Any]:
    """The index options of a request (ES IndicesOptions) as keyword arguments for IndexStore.resolve."""
    options = {
        "ignore_unavailable": req.flag("ignore_unavailable", defaults.get("ignore_unavailable", False)),
        "allow_no_indices": req.flag("allow_no_indices", defaults.get("allow_no_indices", True)),
        "expand_wildcards": req.args.get("expand_wildcards", expand_default),
    }
    return options
