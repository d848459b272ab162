"""API keys created through `POST /_security/api_key`: stored with a hash of their secret, never the secret.

Formats as ES 9.x ApiKeyService: the id is a 20-character base64 UUID (UUIDs.base64UUID), the secret 22 characters
(UUIDs.randomBase64UUIDSecureString), and `encoded` is Base64(id + ":" + api_key), what the `ApiKey` Authorization
scheme carries.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from typing import Any

from sandbox.security.roles import Role, Subject

_UNITS_MS = {"nanos": 1e-6, "micros": 1e-3, "ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_expiration(value: Any) -> int:
    """ES TimeValue.parseTimeValue for `expiration` (e.g. "1d", "30m"), in milliseconds."""
    match = re.fullmatch(r"\s*(\d+)\s*(nanos|micros|ms|s|m|h|d)\s*", str(value))
    if not match:
        raise ValueError(f"failed to parse setting [expiration] with value [{value}] as a time value: unit is "
                         f"missing or unrecognized")
    return int(int(match.group(1)) * _UNITS_MS[match.group(2)])


class SecurityStore:
    """Keys by id: name, owner, role descriptors, owner's descriptors, creation/expiration, invalidated."""

    def __init__(self, cluster: Any = None):
        self.reset()

    def reset(self) -> None:
        self.keys: dict[str, dict[str, Any]] = {}

    def dump(self) -> dict[str, Any]:
        return {"keys": self.keys}

    def load(self, data: dict[str, Any]) -> None:
        self.keys = dict(data.get("keys") or {})

    def create(self, owner: Subject, name: str, role_descriptors: dict[str, Any], expiration: Any,
               metadata: dict[str, Any]) -> dict[str, Any]:
        key_id = base64.urlsafe_b64encode(secrets.token_bytes(15)).decode()  # 20 characters
        secret = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")  # 22 characters
        now = int(time.time() * 1000)
        expires = now + parse_expiration(expiration) if expiration is not None else None
        self.keys[key_id] = {
            "id": key_id, "name": name, "digest": _digest(secret), "creation": now, "expiration": expires,
            "invalidated": False, "username": owner.username, "realm": owner.realm.get("name"),
            "role_descriptors": role_descriptors, "limited_by": owner.owner_descriptors,
            "metadata": metadata,
        }
        response: dict[str, Any] = {"id": key_id, "name": name}
        if expires is not None:
            response["expiration"] = expires
        encoded = base64.b64encode(f"{key_id}:{secret}".encode()).decode()
        response.update(api_key=secret, encoded=encoded)
        return response

    def authenticate(self, token: str) -> Subject | None:
        """The subject of an `ApiKey <encoded>` credential, or None (unknown, wrong secret, expired, invalidated)."""
        try:
            key_id, _, secret = base64.b64decode(token, validate=True).decode().partition(":")
        except ValueError:
            return None
        key = self.keys.get(key_id)
        if key is None or key["invalidated"] or not hmac.compare_digest(key["digest"], _digest(secret)):
            return None
        if key["expiration"] is not None and key["expiration"] <= time.time() * 1000:
            return None
        own = list(key["role_descriptors"].values())
        owner = Role.parse(key["limited_by"])
        # no descriptors: the owner's snapshot alone (ES: the key's own role is then the limited-by role)
        layers = [Role.parse(own), owner] if own else [owner]
        return Subject(username=key["username"], layers=layers, roles=[],
                       realm={"name": "_es_api_key", "type": "_es_api_key"},
                       api_key={"id": key_id, "name": key["name"]}, owner_descriptors=key["limited_by"])

    def invalidate(self, *, ids: list[str] | None, name: str | None,
                   username: str | None) -> tuple[list[str], list[str]]:
        """Keys matching every given filter: (newly invalidated ids, previously invalidated ids)."""
        done, before = [], []
        for key in self.keys.values():
            if ids is not None and key["id"] not in ids:
                continue
            if name is not None and key["name"] != name:
                continue
            if username is not None and key["username"] != username:
                continue
            (before if key["invalidated"] else done).append(key["id"])
            key["invalidated"] = True
        return done, before
