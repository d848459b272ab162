"""Role descriptors and subjects: who is calling and what their privileges grant.

An API key's effective permission is the intersection of its own role descriptors and its owner's ("limited_by")
roles, each side being the union of its descriptors (ES: LimitedRole; ApiKeyService#getApiKeyIdAndRoleBytes). A key
created without role descriptors gets only the owner's snapshot (ES docs, create API key: "When it is not specified
or it is an empty array, the API key will have a point in time snapshot of permissions of the authenticated user").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sandbox.security import privileges as p

# ES ReservedRolesStore "superuser": every cluster and index privilege (restricted-index nuances not modelled).
SUPERUSER = {"cluster": ["all"], "indices": [{"names": ["*"], "privileges": ["all"],
                                                "allow_restricted_indices": True}]}


@dataclass
class Role:
    """One side of the intersection: the union of some role descriptors."""

    cluster: list[p.Privilege] = field(default_factory=list)
    indices: list[tuple[tuple[str, ...], list[p.Privilege]]] = field(default_factory=list)

    @classmethod
    def parse(cls, descriptors: list[dict[str, Any]]) -> Role:
        """Validated role descriptors (ES RoleDescriptor.parse; `index` is accepted for `indices`)."""
        role = cls()
        for descriptor in descriptors:
            for name in descriptor.get("cluster") or []:
                role.cluster.append(p.resolve("cluster", str(name)))
            for group in descriptor.get("indices", descriptor.get("index")) or []:
                names = group.get("names")
                names = [names] if isinstance(names, str) else list(names or [])
                if not names:
                    raise ValueError("indices privileges must refer to at least one index name or index name pattern")
                privs = [p.resolve("index", str(n)) for n in group.get("privileges") or []]
                if not privs:
                    raise ValueError("indices privileges must define at least one privilege")
                role.indices.append((tuple(names), privs))
        return role

    def cluster_grants(self, action: str) -> bool:
        return any(priv.grants(action) for priv in self.cluster)

    def index_grants(self, action: str, name: str) -> bool:
        return any(any(p.match(pattern, name) for pattern in names) and any(priv.grants(action) for priv in privs)
                   for names, privs in self.indices)

    def any_index_grants(self, action: str) -> bool:
        """RBACEngine for composite requests (bulk, msearch, mget, reindex): role.checkIndicesAction(action)."""
        return any(priv.grants(action) for _, privs in self.indices for priv in privs)


@dataclass
class Subject:
    """An authenticated caller. `layers` are intersected: a user has one, an API key two (own, then owner's)."""

    username: str
    layers: list[Role]
    roles: list[str] = field(default_factory=list)
    realm: dict[str, str] = field(default_factory=lambda: {"name": "reserved", "type": "reserved"})
    metadata: dict[str, Any] = field(default_factory=dict)
    api_key: dict[str, Any] | None = None  # {"id", "name"} when authenticated by an API key
    owner_descriptors: list[dict[str, Any]] = field(default_factory=list)  # what a key it creates is limited by

    def cluster_grants(self, action: str) -> bool:
        return all(layer.cluster_grants(action) for layer in self.layers)

    def index_grants(self, action: str, name: str) -> bool:
        return all(layer.index_grants(action, name) for layer in self.layers)

    def any_index_grants(self, action: str) -> bool:
        return all(layer.any_index_grants(action) for layer in self.layers)

    def describe(self) -> str:
        """AuthorizationDenialMessages.Default#successfulAuthenticationDescription (no run-as)."""
        if self.api_key is not None:
            return f"API key id [{self.api_key['id']}] of user [{self.username}]"  # API keys print no roles
        return f"user [{self.username}] with effective roles [{','.join(sorted(self.roles))}]"


def superuser(username: str, api_key: dict[str, Any] | None = None) -> Subject:
    realm = ({"name": "_es_api_key", "type": "_es_api_key"} if api_key is not None
             else {"name": "reserved", "type": "reserved"} if username == "elastic"
             else {"name": "default_file", "type": "file"})
    return Subject(username=username, layers=[Role.parse([SUPERUSER])], roles=[] if api_key else ["superuser"],
                   realm=realm, metadata={"_reserved": True} if username == "elastic" and not api_key else {},
                   api_key=api_key, owner_descriptors=[SUPERUSER])
