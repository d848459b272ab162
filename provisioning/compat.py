"""Talking to Elasticsearch 8.x with the 9.x client: REST API compatibility negotiated on first contact.

The `elasticsearch` 9.x client sends `Accept`/`Content-Type: application/vnd.elasticsearch+json; compatible-with=9`
on every request (elasticsearch/_sync/client/_base.py: `_COMPAT_MIMETYPE_TEMPLATE` is built from the client's own
major version and applied to every `application/json` or `application/x-ndjson` header in `_perform_request`). An
8.x node accepts only `compatible-with=8` or `7` and refuses 9 with 400 media_type_header_exception caused by
"Accept version must be either version 8 or 7, but found 9" (elastic/elasticsearch
server/src/main/java/org/elasticsearch/rest/RestCompatibleVersionHelper.java#getCompatibleVersion: the version must
lie between RestApiVersion.minimumSupported() and current(), 7 and 8 on 8.x; RestRequest#parseHeaders wraps it in
media_type_header_exception "Invalid media-type value on headers [Accept, Content-Type]"). Without
`compatible-with` the request is taken as the server's current version (same method), so plain
`application/json` is understood by 8.x and 9.x alike.

The client's per-request and default headers cannot fix this: an API method sets its own `accept` for each call,
which wins over the default headers and is then rewritten to compatible-with=9. So the fix lives where the
transport hands the final headers to the wire: a `node_class`, the extension point elastic-transport documents
for `Elasticsearch(node_class=...)` (a subclass of one of its node classes). Our node class:

- before the cluster's version is known, sends its first request's probe, `GET /` with plain `application/json`
  (accepted by every version), reads `version.number`; without the `monitor` privilege (403) it asks
  `GET _ml/info` (`native_code.version`, which manage_ml grants), as provisioning/model_import/importer.py does;
- then rewrites `compatible-with=9` to the cluster's major when the cluster is older than the client (8.x);
  a 9.x cluster gets the client's headers untouched.

Every request goes through it: the API methods, `perform_request` with explicit `application/json` headers
(provisioning/operations.py), eland's uploads through the same client, `client.options(...)` copies (they share the
transport and its nodes).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from elastic_transport import HttpHeaders, Urllib3HttpNode

_COMPAT = re.compile(r"(application/vnd\.elasticsearch\+[a-z-]+)\s*;\s*compatible-with\s*=\s*(\d+)")
_VENDOR = re.compile(r"application/vnd\.elasticsearch\+([a-z-]+)\s*;\s*compatible-with\s*=\s*\d+")


def client_major() -> int:
    from elasticsearch import __versionstr__

    return int(__versionstr__.partition(".")[0])


@dataclass
class Negotiation:
    """What the first contact learned; shared by every node (and client copy) of one connection."""

    version: str | None = None  # "8.19.0"; None until known
    source: str | None = None  # "GET /" or "GET _ml/info"
    tried: bool = False  # probed once (a failed probe is not repeated: the client's behaviour is the default)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def major(self) -> int | None:
        try:
            return int(self.version.split(".")[0]) if self.version else None
        except ValueError:
            return None

    def compatible_with(self) -> int | None:
        """The `compatible-with` to send, when it is not the client's own (None: leave the headers alone)."""
        major = self.major
        return major if major is not None and major < client_major() else None


def _plain(headers: HttpHeaders) -> HttpHeaders:
    """The same headers without any compatibility version: understood as "current version" by 8.x and 9.x."""
    copy = headers.copy()
    for name in ("accept", "content-type"):
        value = copy.get(name)
        if value:
            copy[name] = _VENDOR.sub(r"application/\1", value)
    return copy


def _rewrite(headers: HttpHeaders, major: int) -> HttpHeaders:
    copy = headers.copy()
    for name in ("accept", "content-type"):
        value = copy.get(name)
        if value:
            copy[name] = _COMPAT.sub(lambda m: f"{m.group(1)}; compatible-with={major}", value)
    return copy


class NegotiatingNode(Urllib3HttpNode):
    """Urllib3HttpNode that sends the cluster's REST compatibility version (see the module docstring)."""

    negotiation: Negotiation  # set on the per-connection subclass made by node_class()

    def perform_request(self, method: str, target: str, body: bytes | None = None,
                        headers: HttpHeaders | None = None, **kwargs: Any) -> Any:
        headers = headers if headers is not None else HttpHeaders()
        state = self.negotiation
        if not state.tried:
            with state.lock:
                if not state.tried:
                    self._probe(headers, kwargs.get("request_timeout"))
        major = state.compatible_with()
        if major is not None:
            headers = _rewrite(headers, major)
        return super().perform_request(method, target, body=body, headers=headers, **kwargs)

    def _probe(self, headers: HttpHeaders, request_timeout: Any) -> None:
        """GET / (needs `monitor`), else GET _ml/info (manage_ml); credentials are the request's own. A connection
        error propagates (the request would have failed the same way); any other failure leaves the default."""
        plain = _plain(headers)
        plain["accept"] = "application/json"
        plain.pop("content-type", None)
        state = self.negotiation
        for path, read, source in (("/", _version_from_root, "GET /"),
                                   ("/_ml/info", _version_from_ml_info, "GET _ml/info")):
            response = super().perform_request("GET", path, body=None, headers=plain,
                                               **({"request_timeout": request_timeout}
                                                  if request_timeout is not None else {}))
            status = response.meta.status
            if 200 <= status < 300:
                version = read(response.body)
                if version:
                    state.version, state.source = version, source
                break  # serverless (GET / without a version to act on) keeps the client's own headers
            elif status not in (401, 403, 404):
                break
        state.tried = True


def _json(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _version_from_root(raw: bytes) -> str | None:
    version = _json(raw).get("version") or {}
    if version.get("build_flavor") == "serverless":  # serverless speaks the client's version: nothing to negotiate
        return None
    number = version.get("number")
    return str(number) if number else None


def _version_from_ml_info(raw: bytes) -> str | None:
    number = (_json(raw).get("native_code") or {}).get("version")
    return str(number) if number else None


def node_class() -> type[NegotiatingNode]:
    """A node class with its own negotiation state: one per connection (connect() makes one per client)."""
    return type("NegotiatingNode", (NegotiatingNode,), {"negotiation": Negotiation()})


def negotiation(client: Any) -> Negotiation | None:
    """The negotiation of a client made by connect() (or a copy of it), None for any other client."""
    for node in client.transport.node_pool.all():
        state = getattr(node, "negotiation", None)
        if isinstance(state, Negotiation):
            return state
    return None


def known_version(client: Any) -> str | None:
    """The version the first contact learned, without sending anything (None: not known yet, or not connect()'s)."""
    state = negotiation(client)
    return state.version if state is not None else None


def cluster_version(client: Any) -> str | None:
    """The cluster's version: what the first contact learned, else `GET _ml/info` (native_code.version, as
    importer.cluster_info), else GET /. None when neither says (a serverless project)."""
    state = negotiation(client)
    if state is not None and state.version:
        return state.version
    from provisioning.model_import.importer import cluster_info

    info = cluster_info(client)
    version = info.get("version") or {}
    if version.get("build_flavor") == "serverless":
        return None
    return version.get("number")
