"""Security REST APIs: `_authenticate` and API keys (create, get, invalidate).

Response shapes: elasticsearch-specification security/authenticate (AuthenticateResponse: username, roles,
full_name, email, metadata, enabled, authentication_realm, lookup_realm, authentication_type, api_key {id, name,
managed_by, internal}), security/create_api_key (id, name, expiration?, api_key, encoded), security/get_api_key
(api_keys[]), security/invalidate_api_key (invalidated_api_keys, previously_invalidated_api_keys, error_count).
"""

from __future__ import annotations

from typing import Any

from sandbox.errors import ActionRequestValidation, EsError, IllegalArgument
from sandbox.http import EsRequest, Route
from sandbox.security import privileges as p
from sandbox.security.roles import Role, Subject
from sandbox.security.store import parse_expiration


def _subject(req: EsRequest) -> Subject:
    if req.subject is None:
        # the sandbox was started without credentials: like a cluster with xpack.security.enabled: false
        raise EsError("Security must be explicitly enabled when using a [basic] license. Enable security by setting "
                      "[xpack.security.enabled] to [true] in the elasticsearch.yml file and restart the node.",
                      status=500, type="exception")
    return req.subject


def authenticate(sb: Any, req: EsRequest) -> dict[str, Any]:
    subject = _subject(req)
    body: dict[str, Any] = {
        "username": subject.username, "roles": list(subject.roles), "full_name": None, "email": None,
        "metadata": dict(subject.metadata), "enabled": True, "authentication_realm": dict(subject.realm),
        "lookup_realm": dict(subject.realm),
        "authentication_type": "api_key" if subject.api_key is not None else "realm",
    }
    if subject.api_key is not None:
        body["api_key"] = {"id": subject.api_key["id"], "name": subject.api_key.get("name"),
                           "managed_by": "elasticsearch", "internal": False}
    return body


def create_api_key(sb: Any, req: EsRequest) -> dict[str, Any]:
    subject = _subject(req)
    body = req.json_object()
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ActionRequestValidation("api key name is required")  # CreateApiKeyRequest#validate
    descriptors = body.get("role_descriptors") or {}
    if not isinstance(descriptors, dict):
        raise IllegalArgument("[role_descriptors] must be an object")
    try:
        own = Role.parse(list(descriptors.values()))
        if body.get("expiration") is not None:
            parse_expiration(body["expiration"])
    except ValueError as exc:
        raise IllegalArgument(str(exc)) from exc
    grants_any = bool(own.cluster or own.indices) and not all(
        priv.name == "none" for priv in own.cluster + [q for _, privs in own.indices for q in privs])
    key = subject.api_key or {}
    if key and not key.get("bootstrap") and grants_any:
        # TransportCreateApiKeyAction: an API key may only create keys without privileges of their own
        raise IllegalArgument("creating derived api keys requires an explicit role descriptor that is empty "
                              "(has no privileges)")
    return sb.cluster.security.create(subject, name, descriptors, body.get("expiration"),
                                      body.get("metadata") or {})


def _own_only(subject: Subject) -> bool:
    """manage_own_api_key (ManageOwnApiKeyClusterPrivilege) without manage_api_key: only the caller's keys."""
    action = "cluster:admin/xpack/security/api_key/get"
    return not all(any(priv.grants(action) and priv.name != "manage_own_api_key" for priv in layer.cluster)
                   for layer in subject.layers)


def get_api_keys(sb: Any, req: EsRequest) -> dict[str, Any]:
    subject = _subject(req)
    owner = req.flag("owner") or _own_only(subject)
    found = []
    for key in sb.cluster.security.keys.values():
        if req.args.get("id") and key["id"] != req.args["id"]:
            continue
        if req.args.get("name") and not p.match(req.args["name"], key["name"]):
            continue
        if owner and key["username"] != subject.username:
            continue
        entry = {"id": key["id"], "name": key["name"], "type": "rest", "creation": key["creation"]}
        if key["expiration"] is not None:
            entry["expiration"] = key["expiration"]
        entry.update(invalidated=key["invalidated"], username=key["username"], realm=key["realm"],
                     metadata=key["metadata"])
        found.append(entry)
    return {"api_keys": found}


def invalidate_api_keys(sb: Any, req: EsRequest) -> dict[str, Any]:
    subject = _subject(req)
    body = req.json_object()
    ids = body.get("ids") or ([body["id"]] if body.get("id") else None)
    owner = bool(body.get("owner")) or _own_only(subject)
    username = subject.username if owner else body.get("username")
    if ids is None and not body.get("name") and username is None:
        raise ActionRequestValidation("One of [api key id(s), api key name, username, realm name] must be specified "
                                      "if [owner] flag is false")
    done, before = sb.cluster.security.invalidate(ids=ids, name=body.get("name"), username=username)
    return {"invalidated_api_keys": done, "previously_invalidated_api_keys": before, "error_count": 0}


ROUTES = [
    Route(("GET",), "/_security/_authenticate", authenticate, writes=False, api="security.authenticate"),
    Route(("POST", "PUT"), "/_security/api_key", create_api_key, api="security.create_api_key"),
    Route(("GET",), "/_security/api_key", get_api_keys, api="security.get_api_key"),
    Route(("DELETE",), "/_security/api_key", invalidate_api_keys, api="security.invalidate_api_key"),
]
