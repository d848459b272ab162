"""Indices, aliases and index templates: state and rules, no HTTP (the API module translates requests).

Contract used by other areas (documents, search, ml, inference) -- keep these names stable:
  IndexStore.get(name) -> Index | None                      concrete index by name
  IndexStore.create(name, body=None) -> Index               applies templates, validates, raises EsError
  IndexStore.resolve_write_index(name, auto_create=True)    index, alias (write index) or auto-created index
  IndexStore.resolve(expression, **options) -> list[Index]  comma lists, wildcards, aliases, _all
  Index.docs: dict[str, Document]                           the stored documents
  Index.put_document(id, source, op_type) / delete_document(id) / refresh()
  Index.update_mapping_for(source)                          dynamic mapping of new fields
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sandbox.cluster import new_uuid, now_millis
from sandbox.errors import IndexNotFound, ResourceAlreadyExists


@dataclass
class Document:
    id: str
    source: dict[str, Any]
    version: int = 1
    seq_no: int = 0
    primary_term: int = 1


@dataclass
class Index:
    name: str
    uuid: str = field(default_factory=new_uuid)
    settings: dict[str, str] = field(default_factory=dict)  # flat "index.*" keys, string values
    mappings: dict[str, Any] = field(default_factory=dict)
    docs: dict[str, Document] = field(default_factory=dict)
    creation_date: int = field(default_factory=now_millis)
    closed: bool = False
    next_seq_no: int = 0
    searchable_seq_no: int = -1  # documents with a higher seq_no are not visible to search until refresh

    def put_document(self, doc_id: str, source: dict[str, Any], op_type: str = "index") -> tuple[Document, str]:
        existing = self.docs.get(doc_id)
        version = existing.version + 1 if existing else 1
        doc = Document(doc_id, source, version, self.next_seq_no)
        self.next_seq_no += 1
        self.docs[doc_id] = doc
        return doc, "updated" if existing else "created"

    def delete_document(self, doc_id: str) -> Document | None:
        doc = self.docs.pop(doc_id, None)
        if doc is not None:
            self.next_seq_no += 1
        return doc

    def refresh(self) -> None:
        self.searchable_seq_no = self.next_seq_no - 1

    def update_mapping_for(self, source: dict[str, Any]) -> None:
        """Dynamic mapping: add fields the mapping does not have yet (implemented by the indices area)."""


class IndexStore:
    def __init__(self, cluster: Any):
        self.cluster = cluster
        self.reset()

    def reset(self) -> None:
        self.indices: dict[str, Index] = {}
        self.aliases: dict[str, dict[str, dict[str, Any]]] = {}  # alias -> {index: alias properties}
        self.templates: dict[str, dict[str, Any]] = {}

    def get(self, name: str) -> Index | None:
        return self.indices.get(name)

    def create(self, name: str, body: dict[str, Any] | None = None) -> Index:
        if name in self.indices:
            index = self.indices[name]
            raise ResourceAlreadyExists(f"index [{name}/{index.uuid}] already exists",
                                        index_uuid=index.uuid, index=name)
        index = Index(name)
        self.indices[name] = index
        return index

    def resolve_write_index(self, name: str, auto_create: bool = True) -> Index:
        if name in self.indices:
            return self.indices[name]
        if auto_create:
            return self.create(name)
        raise IndexNotFound(name)

    def resolve(self, expression: str, **options: Any) -> list[Index]:
        names = [n for n in expression.split(",") if n]
        found = []
        for name in names:
            if name in self.indices:
                found.append(self.indices[name])
            elif name in self.aliases:
                found.extend(self.indices[i] for i in self.aliases[name] if i in self.indices)
            else:
                raise IndexNotFound(name)
        return found

    def dump(self) -> dict[str, Any]:
        return {}

    def load(self, data: dict[str, Any]) -> None:
        pass
