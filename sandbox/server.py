"""The sandbox HTTP server: protocol rules, auth, fault injection, request log, routing to API modules."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib
import json
import logging
import os
import re
import socket
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from sandbox.cluster import DEFAULT_VERSION, Cluster
from sandbox.errors import EsError, SecurityError, Unsupported
from sandbox.faults import Faults, RequestLog
from sandbox.http import ES_JSON, SUBJECT_KEY, EsRequest, Reply, Route, read_body
from sandbox.rest_spec import check_request
from sandbox.security import authz
from sandbox.security.actions import action_for
from sandbox.security.roles import Subject, superuser
from sandbox.transport import close_connections, serve

# Each module exposes ROUTES: list[Route]. The routing table is this list, nothing else.
ROUTE_MODULES = (
    "sandbox.hooks",
    "sandbox.cluster_api",
    "sandbox.indices.api",
    "sandbox.documents.api",
    "sandbox.search.api",
    "sandbox.search.rank_eval",
    "sandbox.ml.api",
    "sandbox.inference.api",
    "sandbox.security.api",
    "sandbox.preflight_api",  # read-only: _index_template/_simulate, _validate/query
    "sandbox.tasks",
)

# What ES answers for throttling and unavailability, used by injected faults.
_FAULT_TYPES = {
    429: "es_rejected_execution_exception",
    502: "bad_gateway",
    503: "unavailable_shards_exception",
    504: "gateway_timeout",
}

log = logging.getLogger("sandbox")


def collect_routes() -> list[Route]:
    routes: list[Route] = []
    for name in ROUTE_MODULES:
        routes.extend(importlib.import_module(name).ROUTES)
    return routes


class Sandbox:
    """A stand-in for an Elasticsearch 9.x (or 8.19: sandbox/versions.py) cluster, served over HTTP on 127.0.0.1."""

    def __init__(self, *, version: str = DEFAULT_VERSION, api_keys: tuple[str, ...] = (),
                 users: dict[str, str] | None = None, state_file: str | os.PathLike | None = None):
        self.cluster = Cluster(version=version)
        self.log = RequestLog()
        self.faults = Faults()
        self.api_keys = set(api_keys)
        self.users = dict(users or {})
        self.state_file = Path(state_file) if state_file else None
        self.routes = collect_routes()
        self.url_map = Map(
            [Rule(r.rule, methods=list(r.methods), endpoint=i) for i, r in enumerate(self.routes)],
            strict_slashes=False, merge_slashes=False,
        )
        self._server = None
        self._thread: threading.Thread | None = None
        self._dirty = threading.Event()
        self._save_lock = threading.Lock()
        self._stopping = threading.Event()
        if self.state_file and self.state_file.exists():
            self.cluster.load(json.loads(self.state_file.read_text()))

    # ---- lifecycle -------------------------------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 0) -> Sandbox:
        self._server = serve(host, port, self.wsgi)
        self._thread = threading.Thread(target=self._server.serve_forever, name="sandbox-http", daemon=True)
        self._thread.start()
        if self.state_file:
            threading.Thread(target=self._save_loop, name="sandbox-save", daemon=True).start()
        return self

    def serve_forever(self, host: str = "127.0.0.1", port: int = 9200) -> None:
        self.start(host, port)
        try:
            while self._thread and self._thread.is_alive():
                self._thread.join(0.5)
        finally:
            self.stop()

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            close_connections(self._server)
            self._server.server_close()
            self._server = None
        self.save()

    @property
    def port(self) -> int:
        assert self._server is not None, "sandbox not started"
        return self._server.server_port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        """Wipe state, request log and faults (between tests)."""
        self.cluster.reset()
        self.log.clear()
        self.faults = Faults()

    def save(self) -> None:
        if not self.state_file:
            return
        with self._save_lock:  # the save loop and stop() may both save
            tmp = self.state_file.with_suffix(self.state_file.suffix + ".tmp")
            tmp.write_text(json.dumps(self.cluster.dump()))
            tmp.replace(self.state_file)
            self._dirty.clear()

    def _save_loop(self) -> None:
        while not self._stopping.is_set():
            if self._dirty.wait(0.5) and not self._stopping.is_set():
                time.sleep(0.5)  # coalesce bursts of writes (definition parts, bulk)
                self.save()

    # ---- request handling ------------------------------------------------------------------------------
    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        read_body(environ)  # the whole body, always: the connection's next request starts right after it
        request = Request(environ)
        started = time.perf_counter()
        path = request.path
        if path.startswith("/_sandbox/") or path == "/_sandbox":
            response = self._dispatch(request)
            return response(environ, start_response)

        fault_kind = None
        if self.faults.latency_ms:
            time.sleep(self.faults.latency_ms / 1000)
            fault_kind = "latency"
        rule = self.faults.pick(request.method, path)
        write = self._is_write(request)
        if rule is not None and rule.drop:
            # logged first: once the socket closes, the client's next request may be logged before this one
            self._record(request, 0, started, "drop", write)
            self._drop(environ)
            return []
        if rule is not None and rule.status:
            error = EsError(f"injected fault: {rule.status}", status=rule.status,
                            type=_FAULT_TYPES.get(rule.status, "exception"))
            if rule.echo_settings:
                error = self._echoed_settings(request, rule.status)
            response = self._json_response(request, error.body(), rule.status)
            fault_kind = "status"
        else:
            response = (self._check_compatibility(request) or self._authenticate(request)
                        or self._dispatch(request))
            if write and response.status_code < 300 and self.state_file:
                self._dirty.set()
        self._record(request, response.status_code, started, fault_kind, write)
        return response(environ, start_response)

    @staticmethod
    def _echoed_settings(request: Request, status: int) -> EsError:
        """ES's ServiceUtils.throwIfNotEmptyMap: the settings, values included, as a Java map."""
        try:
            body = json.loads(request.get_data() or b"{}")
        except ValueError:
            body = {}
        settings = body.get("service_settings") or {} if isinstance(body, dict) else {}
        shown = ", ".join(f"{k}={v}" for k, v in settings.items())
        return EsError(f"Configuration contains settings [{{{shown}}}] unknown to the [{body.get('service')}] service",
                       status=status, type="status_exception")

    def _record(self, request: Request, status: int, started: float, fault: str | None, write: bool) -> None:
        self.log.add(method=request.method, path=request.path, query=request.query_string.decode(),
                     status=status, duration_ms=round((time.perf_counter() - started) * 1000, 3),
                     fault=fault, write=write)

    def _is_write(self, request: Request) -> bool:
        try:
            index, _ = self._match(request)
        except Exception:
            return request.method not in ("GET", "HEAD")
        return self.routes[index].is_write(request.method)

    def _match(self, request: Request) -> tuple[int, dict[str, Any]]:
        """Match a route; an encoded slash (%2F) stays inside its path segment, as ES treats it (date-math index
        names such as <logs-{now/d}> arrive as %3Clogs-%7Bnow%2Fd%7D%3E)."""
        adapter = self.url_map.bind_to_environ(request.environ)
        raw_path = (request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or "").split("?", 1)[0]
        if "%2f" not in raw_path.lower():
            return adapter.match()
        path = "/".join(unquote(part).replace("/", "\x00") for part in raw_path.split("/"))
        index, params = adapter.match(path_info=path)
        return index, {k: v.replace("\x00", "/") if isinstance(v, str) else v for k, v in params.items()}

    @staticmethod
    def _drop(environ: dict[str, Any]) -> None:
        sock = environ.get("werkzeug.socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _check_compatibility(self, request: Request) -> Response | None:
        """REST API compatibility headers (`compatible-with=N`), validated as ES's RestCompatibleVersionHelper does:
        N must be the current major or the one before, and with a body both headers must agree. ES wraps the reason
        in media_type_header_exception (RestRequest#parseHeaders)."""
        major = int(self.cluster.version.split(".")[0])
        problem = compatibility_problem(request.headers.get("Accept"), request.headers.get("Content-Type"),
                                        has_content=bool(request.content_length), major=major)
        if problem is None:
            return None
        reason = "Invalid media-type value on headers [Accept, Content-Type]"
        body = {"error": {"root_cause": [{"type": "media_type_header_exception", "reason": reason}],
                          "type": "media_type_header_exception", "reason": reason,
                          "caused_by": {"type": "status_exception", "reason": problem}}, "status": 400}
        return self._json_response(request, body, 400)

    @property
    def secured(self) -> bool:
        """Security is on when the sandbox was given credentials (like xpack.security.enabled on a real cluster)."""
        return bool(self.api_keys or self.users)

    def _authenticate(self, request: Request) -> Response | None:
        """Find the caller (bootstrap superuser key or user, or a key created through the API) and keep it in the
        WSGI environ for authorisation; None when authenticated (or security is off), else ES's 401."""
        if not self.secured:
            return None
        subject = self._subject(request.headers.get("Authorization", ""))
        if subject is not None:
            request.environ[SUBJECT_KEY] = subject
            return None
        header = request.headers.get("Authorization", "")
        reason = (f"missing authentication credentials for REST request [{request.path}]" if not header
                  else f"unable to authenticate with provided credentials for REST request [{request.path}]")
        challenge = {"WWW-Authenticate": 'Basic realm="security", charset="UTF-8", ApiKey'}
        error = SecurityError(reason, header={"WWW-Authenticate": [challenge["WWW-Authenticate"]]})
        return self._json_response(request, error.body(), 401, challenge)

    def _subject(self, header: str) -> Subject | None:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() == "apikey":
            if token in self.api_keys:
                return superuser("elastic", api_key={"id": bootstrap_key_id(token), "name": "sandbox-bootstrap",
                                                     "bootstrap": True})
            with self.cluster.lock:
                return self.cluster.security.authenticate(token)
        if scheme.lower() == "basic" and self.users:
            try:
                user, _, password = base64.b64decode(token).decode().partition(":")
            except ValueError:
                return None
            if user in self.users and self.users[user] == password:
                return superuser(user)
        return None

    def _authorize(self, route: Route, es_request: EsRequest, params: dict[str, Any]) -> None:
        """ES's authorisation of the route's action (sandbox/security/authz.py); a 403 raises."""
        subject = es_request.subject
        if subject is None or route.rule.startswith("/_sandbox"):
            return
        action = action_for(es_request.method, route.rule)
        if action is None:  # every route is mapped (tests/test_sandbox_security.py checks it)
            raise EsError(f"sandbox: no Elasticsearch action is mapped for [{es_request.method} {route.rule}]")
        authz.authorize(self, subject, action, es_request, params)

    def _dispatch(self, request: Request) -> Response:
        try:
            try:
                index, params = self._match(request)
            except (NotFound, MethodNotAllowed) as exc:
                raise Unsupported(request.method, request.path) from exc
            route = self.routes[index]
            api_name = route.api_for(request.method)
            if api_name is not None:
                check_request(api_name, method=request.method, path=request.path, params=set(request.args),
                              has_body=bool(request.content_length))
            es_request = EsRequest(request)  # reads the body outside the lock
            es_request.preparse()
            if route.locked:
                with self.cluster.lock:
                    self._authorize(route, es_request, params)
                    result = route.handler(self, es_request, **params)
            else:  # the handler takes the lock itself, only while it must (waits, checks of large bodies)
                if es_request.subject is not None:
                    with self.cluster.lock:
                        self._authorize(route, es_request, params)
                result = route.handler(self, es_request, **params)
            reply = result if isinstance(result, Reply) else Reply(result)
        except EsError as error:
            reply = Reply(error.body(_error_trace(request)), error.status, error.headers)
        except Exception as exc:  # a sandbox bug: answer like ES does for an unexpected failure
            log.exception("sandbox handler failed for %s %s", request.method, request.path)
            error = EsError(f"sandbox internal error: {type(exc).__name__}: {exc}", status=500)
            reply = Reply(error.body(_error_trace(request)), 500)
        return self._json_response(request, reply.body, reply.status, reply.headers)

    @staticmethod
    def _json_response(request: Request, body: Any, status: int, headers: dict[str, str] | None = None) -> Response:
        payload = b"" if request.method == "HEAD" or body is None else json.dumps(body).encode()
        response = Response(payload, status=status, content_type=ES_JSON)
        response.headers["X-Elastic-Product"] = "Elasticsearch"
        for key, value in (headers or {}).items():
            response.headers[key] = value
        return response


def bootstrap_key_id(token: str) -> str:
    """The id `_authenticate` shows for a bootstrap key: the id part of an encoded "id:secret" key, else a digest
    (the secret itself is never shown)."""
    try:
        key_id, sep, _ = base64.b64decode(token, validate=True).decode().partition(":")
    except ValueError:
        key_id, sep = "", ""
    return key_id if sep and key_id else hashlib.sha256(token.encode()).hexdigest()[:20]


def _compatible_with(header: str | None) -> int | None:
    match = re.search(r"compatible-with\s*=\s*(\d+)", header or "")
    return int(match.group(1)) if match else None


def compatibility_problem(accept: str | None, content_type: str | None, *, has_content: bool,
                          major: int) -> str | None:
    """ES RestCompatibleVersionHelper#getCompatibleVersion: the reason a header combination is refused, or None."""
    a_version, c_version = _compatible_with(accept), _compatible_with(content_type)
    accept_version = major if a_version is None else a_version
    content_version = major if c_version is None else c_version
    if not major - 1 <= accept_version <= major:
        return (f"Accept version must be either version {major} or {major - 1}, but found {accept_version}. "
                f"Accept={accept}")
    if has_content:
        if not major - 1 <= content_version <= major:
            return (f"Content-Type version must be either version {major} or {major - 1}, but found "
                    f"{content_version}. Content-Type={content_type}")
        if content_version != accept_version:
            return ("A compatible version is required on both Content-Type and Accept headers if either one has "
                    "requested a compatible version and the compatible versions must match. "
                    f"Accept={accept}, Content-Type={content_type}")
        if (a_version is None) != (c_version is None):
            return ("A compatible version is required on both Content-Type and Accept headers if either one has "
                    f"requested a compatible version. Accept={accept}, Content-Type={content_type}")
    return None


def _error_trace(request: Request) -> bool:
    return request.args.get("error_trace", "false").lower() in ("true", "")


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m sandbox", description="Run the Elasticsearch stand-in.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9200)
    parser.add_argument("--version", default=DEFAULT_VERSION,
                        help="Elasticsearch version to run as: 8.19.x or 9.x (sandbox/versions.py)")
    parser.add_argument("--state-file", help="keep state in this JSON file across restarts")
    parser.add_argument("--api-key", action="append", default=[], help="bootstrap superuser API key (repeatable)")
    args = parser.parse_args(argv)
    from sandbox.versions import check_supported

    try:
        check_supported(args.version)
    except ValueError as exc:
        parser.error(str(exc))
    sandbox = Sandbox(version=args.version, api_keys=tuple(args.api_key), state_file=args.state_file)
    print(f"sandbox (Elasticsearch {args.version} stand-in) listening on http://{args.host}:{args.port}", flush=True)
    sandbox.serve_forever(args.host, args.port)
