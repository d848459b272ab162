"""Request parsing and response building shared by every API module of the sandbox."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from werkzeug.wrappers import Request

from sandbox.errors import EsError, IllegalArgument, ParseError

# The 9.x client sends this; plain JSON is accepted too (ES docs: REST API compatibility; ES XContentType.VND_JSON).
ES_JSON = "application/vnd.elasticsearch+json;compatible-with=9"
_TRUE = {"true", "", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
SUBJECT_KEY = "sandbox.subject"
BODY_KEY = "sandbox.body"  # the body as read once (read_body)


def read_body(environ: dict[str, Any]) -> bytes:
    """The request body, read once in one call (werkzeug's get_data reads it in 64 KiB pieces: a third of the
    server's time on a 1 MiB definition part) and kept in the environ (EsRequest's data); wsgi.input then replays it."""
    if BODY_KEY not in environ:
        stream = environ["wsgi.input"]
        if environ.get("wsgi.input_terminated"):  # chunked: the server's stream ends with the body
            data = stream.read()
        else:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            data = stream.read(length) if length > 0 else b""
        environ[BODY_KEY], environ["wsgi.input"] = data, io.BytesIO(data)
    return environ[BODY_KEY]


@dataclass
class Route:
    """One entry of the routing table. `writes` marks requests that change state (for the request log); `api` is
    the REST API specification's name of the API the route serves (one name, or one per method), which decides the
    query parameters and body it accepts (sandbox/rest_spec.py). Only /_sandbox/ hooks have none."""

    methods: tuple[str, ...]
    rule: str
    handler: Callable[..., Any]
    writes: bool | None = None  # None: any method other than GET/HEAD writes
    api: str | dict[str, str] | None = None
    locked: bool = True  # False: the handler takes the cluster lock itself, for as short a time as it can

    def is_write(self, method: str) -> bool:
        return self.writes if self.writes is not None else method not in ("GET", "HEAD")

    def api_for(self, method: str) -> str | None:
        return self.api.get(method) if isinstance(self.api, dict) else self.api


@dataclass
class Reply:
    """A handler's answer when it is not a plain 200 JSON object."""

    body: Any = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


class EsRequest:
    """What handlers see: method, path, query parameters with ES's parsing rules, and the body."""

    def __init__(self, request: Request):
        self.raw = request
        self.method = request.method
        self.path = request.path
        self.args = request.args
        self._data = read_body(request.environ)
        self._json: Any = ...
        # the authenticated caller (sandbox/security/roles.Subject), None when the sandbox runs without security
        self.subject: Any = request.environ.get(SUBJECT_KEY)

    def preparse(self) -> None:
        """Parse a JSON body before the cluster lock is taken, so that concurrent requests (definition parts of
        1 MiB) read and decode in parallel; a malformed body is left for the handler, which reports it as ES does."""
        if self._json is ... and self.has_body() and "ndjson" not in (self.raw.content_type or ""):
            with contextlib.suppress(ValueError, UnicodeDecodeError):
                self._json = json.loads(self._data)

    @property
    def data(self) -> bytes:
        return self._data

    def has_body(self) -> bool:
        return bool(self._data.strip())

    def json(self, default: Any = None) -> Any:
        """The JSON body, or `default` when there is none. Malformed JSON is ES's 400 parse error."""
        if self._json is ...:
            if not self.has_body():
                self._json = None
            else:
                try:
                    self._json = json.loads(self._data)
                except (ValueError, UnicodeDecodeError) as exc:
                    raise EsError(f"Failed to parse request body: {exc}", status=400,
                                  type="x_content_parse_exception") from exc
        return default if self._json is None else self._json

    def json_object(self) -> dict[str, Any]:
        """A JSON object body ({} when there is none); any other JSON value is ES's 400 parse error."""
        body = self.json({})
        if not isinstance(body, dict):
            raise EsError("request body must be a JSON object", status=400, type="x_content_parse_exception")
        return body

    def ndjson(self) -> list[Any]:
        """Bulk bodies: one JSON value per non-empty line."""
        lines = []
        for number, line in enumerate(self._data.decode("utf-8").splitlines(), 1):
            if line.strip():
                try:
                    lines.append(json.loads(line))
                except ValueError as exc:
                    raise IllegalArgument(f"Malformed action/metadata line [{number}], "
                                          f"expected a simple value for field but found [{exc}]") from exc
        return lines

    def flag(self, name: str, default: bool = False) -> bool:
        """ES boolean query parameter: `?x`, `?x=true`, `?x=false`; anything else is a 400."""
        if name not in self.args:
            return default
        value = self.args.get(name, "").lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise ParseError(f"Failed to parse value [{value}] as only [true] or [false] are allowed.")

    def int_arg(self, name: str, default: int | None = None) -> int | None:
        if name not in self.args:
            return default
        try:
            return int(self.args[name])
        except ValueError as exc:
            raise IllegalArgument(f"Failed to parse int parameter [{name}] with value [{self.args[name]}]") from exc

    def list_arg(self, name: str) -> list[str] | None:
        if name not in self.args:
            return None
        return [part for part in self.args[name].split(",") if part]


def warning_headers(version: str, warnings: list[str]) -> dict[str, str]:
    """Deprecation warnings as ES sends them (HeaderWarning#formatWarning): `299 Elasticsearch-<version> "<text>"`,
    several joined by commas as one header."""
    if not warnings:
        return {}
    quoted = [w.replace("\\", "\\\\").replace('"', '\\"') for w in warnings]
    return {"Warning": ", ".join(f'299 Elasticsearch-{version} "{w}"' for w in quoted)}


def xcontent_token(value: Any) -> str:
    """The XContent token name ES reports for a JSON value in parse errors (START_OBJECT, VALUE_STRING, ...)."""
    if isinstance(value, dict):
        return "START_OBJECT"
    if isinstance(value, list):
        return "START_ARRAY"
    if isinstance(value, bool):  # before numbers: bool is an int in Python
        return "VALUE_BOOLEAN"
    if isinstance(value, int | float):
        return "VALUE_NUMBER"
    return "VALUE_NULL" if value is None else "VALUE_STRING"


def split_names(expression: str | None) -> list[str]:
    """A comma-separated path segment ("a,b,c") as a list."""
    if not expression:
        return []
    return [part for part in expression.split(",") if part]
