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

- sends every request with the client's own headers until the cluster refuses them: a 9.x cluster (and
  serverless) never does, so talking to it costs nothing extra and needs no privilege; an 8.x cluster answers the
  first request with the refusal above, naming the versions it accepts ("must be either version 8 or 7"): the
  node remembers that major and sends the same request again with `compatible-with=8`, and every later one;
- the full version (for the version facts of provisioning/versions.py) is asked only when a plan needs it
  (`cluster_version`: `GET _ml/info` native_code.version, which manage_ml grants, else `GET /`).

Every request goes through it: the API methods, `perform_request` with explicit `application/json` headers
(provisioning/operations.py), eland's uploads through the same client, `client.options(...)` copies (they share the
transport and its nodes).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

from elastic_transport import HttpHeaders, Urllib3HttpNode

_COMPAT = re.compile(r"(application/vnd\.elasticsearch\+[a-z-]+)\s*;\s*compatible-with\s*=\s*(\d+)")


def client_major() -> int:
    from elasticsearch import __versionstr__

    return int(__versionstr__.partition(".")[0])


@dataclass
class Negotiation:
    """What the connection learned; shared by every node (and client copy) of one connection."""

    version: str | None = None  # "8.19.0"; None until asked (cluster_version)
    source: str | None = None  # how: "refusal" (the major only), "GET _ml/info" or "GET /"
    refused_major: int | None = None  # the newest major an 8.x cluster said it accepts
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def major(self) -> int | None:
        if self.refused_major is not None:
            return self.refused_major
        try:
            return int(self.version.split(".")[0]) if self.version else None
        except ValueError:
            return None

    def compatible_with(self) -> int | None:
        """The `compatible-with` to send, when it is not the client's own (None: leave the headers alone)."""
        major = self.major
        return major if major is not None and major < client_major() else None


_ACCEPTED = re.compile(rb"version must be either version (\d+) or (\d+), but found (\d+)")


def accepted_major(status: int, body: bytes) -> int | None:
    """The newest major a cluster accepts, from its refusal of the client's compatible-with (None: not one)."""
    if status != 400 or b"media_type_header_exception" not in (body or b""):
        return None
    found = _ACCEPTED.search(body)
    return max(int(found.group(1)), int(found.group(2))) if found else None


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
        major = state.compatible_with()
        sent = _rewrite(headers, major) if major is not None else headers
        response = super().perform_request(method, target, body=body, headers=sent, **kwargs)
        if major is None:
            accepted = accepted_major(response.meta.status, response.body)
            if accepted is not None and accepted < client_major():
                with state.lock:
                    state.refused_major, state.source = accepted, state.source or "refusal"
                # refused before it was read: sending it again with the accepted version is safe
                response = super().perform_request(method, target, body=body, headers=_rewrite(headers, accepted),
                                                   **kwargs)
        return response


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
    """The cluster's full version: what this connection learned, else `GET _ml/info` (native_code.version, as
    importer.cluster_info does), else GET /. None when neither says (a serverless project). Remembered."""
    state = negotiation(client)
    if state is not None and state.version:
        return state.version
    from provisioning.model_import.importer import cluster_info

    info = cluster_info(client)
    version = info.get("version") or {}
    if version.get("build_flavor") == "serverless":
        return None
    number = version.get("number")
    if state is not None and number:
        state.version, state.source = str(number), state.source or "GET _ml/info"
    return number
