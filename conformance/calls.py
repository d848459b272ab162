"""The `do` section: call an API through the real elasticsearch client and check `catch` and warnings.

The client already knows every API's method, path and parameters (it is generated from the same REST API
spec the Java runner reads), so `do: indices.create` becomes `client.indices.create(**params)`, as in
elasticsearch-py's own YamlRunner. Differences from that runner (its test_rest_api_spec.py), on purpose:
* `catch: bad_request` (and every named catch) checks the status; `catch: /regex/` really searches the error;
* `ignore: 404` becomes `client.options(ignore_status=404)` instead of skipping the test;
* a parameter the client does not know is still sent as a query parameter, never dropped, if the REST API
  specification defines it; one it does not define fails the step before anything is sent, as in ES's
  ClientYamlTestClient ("path/param [x] not supported by [api] api"), and so does a body for an API without one.
"""

from __future__ import annotations

import base64
import inspect
import json
import re
import warnings
from dataclasses import dataclass, field
from typing import Any

from elasticsearch import ApiError, Elasticsearch, ElasticsearchWarning
from elasticsearch.exceptions import GeneralAvailabilityWarning

from conformance.yamlops import Context, TestFailure, show
from sandbox import rest_spec

# ES DoSection.CATCHES: the named catch values and the status each one requires
CATCH_STATUS = {
    "bad_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "missing": 404,
    "request_timeout": 408,
    "conflict": 409,
    "gone": 410,
    "unavailable": 503,
}
# ES DoSection: `request` is any 4xx/5xx except these (503 counts as `request` too)
_NOT_REQUEST = {400, 401, 403, 404, 408, 409, 410}
# `do` keys that are not the API call
DO_MODIFIERS = {"catch", "headers", "warnings", "warnings_regex", "allowed_warnings", "allowed_warnings_regex",
                "node_selector"}
# Python keyword clashes the client renames (elasticsearch-py's YamlRunner PARAMS_RENAMES)
PARAM_RENAMES = {"from": "from_"}
# ES test clusters define x_pack_rest_user as the superuser the runner itself authenticates as; a `do` sending
# its credentials means "as the runner's own user", so the runner's credentials are used (as elasticsearch-py's
# YamlRunner does), which also works against a cluster without that user.
# The spec's _common.json parameters (ClientYamlSuiteRestSpec#isGlobalParameter) and its client parameter
# `ignore` (#isClientParameter), accepted for every API by ES's runner.
SPEC_GLOBAL_PARAMS = frozenset({"error_trace", "filter_path", "human", "pretty", "source", "ignore"})
_TEST_SUPERUSER = "Basic " + base64.b64encode(b"x_pack_rest_user:x-pack-test-password").decode()
_WARNING = re.compile(r'\d{3} \S+ "((?:\\.|[^"\\])*)"')


@dataclass
class Exchange:
    """One request and its response, kept for the verbose report."""

    api: str
    params: dict
    status: int | None = None
    body: Any = None
    warnings: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return (f"    request:  {self.api} {show(self.params, 600)}\n"
                f"    response: {self.status} {show(self.body, 1200)}")


def parse_warnings(headers: Any) -> list[str]:
    values = []
    for key, value in (headers or {}).items():
        if key.lower() == "warning":
            values.extend(value if isinstance(value, list) else [value])
    found: list[str] = []
    for value in values:
        # `299 Elasticsearch-<version> "<text>"`, possibly several per header value; anything else is kept whole
        matches = _WARNING.findall(value) or [value]
        found.extend(m.replace('\\"', '"').replace("\\\\", "\\") for m in matches)
    return found


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list) -> dict:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise _DuplicateKey(keys)
    return dict(pairs)


def _decode_body(body: Any) -> Any:
    """Bodies written as JSON text (`body: >` blocks) become objects, so the client can merge them with its
    parameters (as elasticsearch-py's runner does). Text that is not one JSON object (ndjson for bulk, broken
    JSON, duplicate keys that ES must reject) is sent exactly as written."""
    if isinstance(body, str):
        try:
            return json.loads(body, object_pairs_hook=_no_duplicates)
        except ValueError:
            return body
    return body


def _api(client: Elasticsearch, name: str) -> Any:
    target: Any = client
    for part in name.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise TestFailure(f"API [{name}] is not known to the elasticsearch client")
    return target


def _accepted(func: Any) -> set[str] | None:
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return set(params) | {"body"}


def call(client: Elasticsearch, ctx: Context, do: dict, trace: list[Exchange]) -> None:
    """Run one `do` section: the response (or the caught error's body) becomes ctx.response."""
    do = dict(do)
    catch = do.get("catch")
    headers = ctx.resolve(do.get("headers") or {})
    expected_warnings = list(do.get("warnings") or [])
    expected_regex = list(do.get("warnings_regex") or [])
    allowed = set(do.get("allowed_warnings") or [])
    allowed_regex = list(do.get("allowed_warnings_regex") or [])
    apis = [k for k in do if k not in DO_MODIFIERS]
    if len(apis) != 1:
        raise TestFailure(f"a do section must name exactly one API, got {apis}")
    api_name = apis[0]
    if catch == "param":
        # ES DoSection: a client-side parameter error is expected, so nothing is sent and the response is kept
        return
    params = ctx.resolve(dict(do[api_name] or {}))
    check_spec(api_name, params)
    exchange = Exchange(api_name, dict(params))
    trace.append(exchange)

    options: dict[str, Any] = {}
    headers = {str(k): str(v) for k, v in headers.items()
               if not (str(k).lower() == "authorization" and str(v).strip() == _TEST_SUPERUSER)}
    if headers:
        options["headers"] = headers
    if "ignore" in params:
        ignore = params.pop("ignore")
        options["ignore_status"] = tuple(ignore) if isinstance(ignore, list) else int(ignore)
    target_client = client.options(**options) if options else client
    for old, new in PARAM_RENAMES.items():
        if old in params:
            params[new] = params.pop(old)
    # ES ClientYamlTestExecutionContext#callApi: requestParams.putIfAbsent("error_trace", "true"), so catch
    # regexes may match the Java exception lines of `stack_trace`.
    params.setdefault("error_trace", True)
    if "body" in params:
        params["body"] = _decode_body(params["body"])

    func = _api(target_client, api_name)
    accepted = _accepted(func)
    extra = {k: params.pop(k) for k in list(params) if accepted is not None and k not in accepted}
    if extra:
        # The client does not know these parameters: send them as query parameters anyway, like the Java
        # runner which puts every non-path parameter in the query string.
        func = _api(_with_extra_query(target_client, extra), api_name)

    status: int | None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ElasticsearchWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", GeneralAvailabilityWarning)  # the client's "technical preview" notice
            response = func(**params)
    except ApiError as error:
        status, body, got = error.meta.status, error.body, parse_warnings(error.meta.headers)
    except (TypeError, ValueError) as error:  # the client refused the parameters before sending anything
        exchange.status, exchange.body = None, f"client-side error: {error}"
        raise TestFailure(f"{api_name}: client-side error: {error}") from error
    else:
        meta = getattr(response, "meta", None)
        if meta is None:  # `ping` returns a plain bool (it swallows errors): true means 200, false an error
            status, body, got = (200 if response else 404), bool(response), []
        else:
            status, body, got = meta.status, response.body, parse_warnings(meta.headers)
    exchange.status, exchange.body, exchange.warnings = status, body, got

    is_error = status >= 400 and not (options.get("ignore_status") is not None and _ignored(status, options))
    # HEAD 404 is an answer (false), not an error, for the client and for the Java REST client
    if isinstance(body, bool):
        is_error = status >= 400 and status != 404
    if catch is None:
        if is_error:
            raise TestFailure(f"{api_name}: expected success, got {status} {_brief(body)}")
        # ES DoSection checks warning headers of successful calls only
        _check_warnings(api_name, got, expected_warnings, expected_regex, allowed, allowed_regex)
        ctx.set_response(body)
        return
    _check_catch(api_name, catch, status, body, is_error)
    ctx.set_response(body)


def check_spec(api_name: str, params: dict) -> None:
    """ES ClientYamlTestClient#callApi: every parameter must be a path part, a parameter of the API or a global
    one, and a body needs an API that takes one; otherwise the step fails before anything is sent."""
    try:
        spec = rest_spec.api(api_name)
    except KeyError:
        return  # not in the specification the sandbox carries: the client decides
    parts = rest_spec.path_parts(api_name)
    for name in params:
        if name == "body":
            if not spec["body"]:
                raise TestFailure(f"body is not supported by [{api_name}] api")
        elif name not in parts and name not in spec["params"] and name not in SPEC_GLOBAL_PARAMS:
            raise TestFailure(f"path/param [{name}] not supported by [{api_name}] api")


def _brief(body: Any) -> str:
    """An error body as `type: reason` (the verbose report shows it whole)."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and "type" in error:
        return f"{error['type']}: {str(error.get('reason'))[:300]}"
    return show(body, 300)


def _ignored(status: int, options: dict) -> bool:
    ignore = options["ignore_status"]
    return status in ignore if isinstance(ignore, tuple) else status == ignore


def _check_catch(api: str, catch: str, status: int, body: Any, is_error: bool) -> None:
    if not is_error:
        raise TestFailure(f"{api}: expected error [{catch}], got {status} {_brief(body)}")
    if catch in CATCH_STATUS:
        if status != CATCH_STATUS[catch]:
            raise TestFailure(f"{api}: expected [{catch}] ({CATCH_STATUS[catch]}), got {status} {_brief(body)}")
        return
    if catch == "request":
        if status in _NOT_REQUEST:
            raise TestFailure(f"{api}: expected [request] (an unnamed 4xx/5xx), got {status} {_brief(body)}")
        return
    text = catch.strip()
    if len(text) > 2 and text.startswith("/") and text.endswith("/"):
        # ES DoSection: the response must carry `error`, and the regex is searched in it
        error = body.get("error") if isinstance(body, dict) else None
        if error is None:
            raise TestFailure(f"{api}: expected an error matching {catch}, got {status} without [error]: "
                              f"{_brief(body)}")
        rendered = error if isinstance(error, str) else json.dumps(error, ensure_ascii=False)
        if not re.search(text[1:-1], rendered):
            raise TestFailure(f"{api}: error does not match {catch}: {status} {_brief(body)}")
        return
    raise TestFailure(f"catch value [{catch}] is not supported")


def _check_warnings(api: str, got: list[str], expected: list[str], expected_regex: list[str],
                    allowed: set[str], allowed_regex: list[str]) -> None:
    """ES DoSection.checkWarningHeaders: expected ones must all come, unexpected ones fail unless allowed;
    the regexes must match a whole warning (Matcher.matches)."""
    unexpected = [w for w in got if w not in expected and w not in allowed
                  and not any(re.fullmatch(r, w) for r in expected_regex + allowed_regex)]
    missing = [w for w in expected if w not in got]
    missing += [r for r in expected_regex if not any(re.fullmatch(r, w) for w in got)]
    if unexpected:
        raise TestFailure(f"{api}: unexpected warning headers {unexpected}")
    if missing:
        raise TestFailure(f"{api}: expected warning headers {missing} not received (got {got})")


def _with_extra_query(client: Elasticsearch, extra: dict) -> Elasticsearch:
    """A client whose requests also carry `extra` as query parameters."""
    copy = client.options()
    original = copy.perform_request

    def perform_request(method: str, path: str, *, params: Any = None, **kwargs: Any) -> Any:
        return original(method, path, params={**(params or {}), **extra}, **kwargs)

    copy.perform_request = perform_request  # type: ignore[method-assign]
    return copy
