"""Indices, aliases, index templates and ingest pipelines: state and rules, no HTTP (api modules translate requests).

Contract used by other areas (documents, search, ml, inference) -- keep these names stable:
  IndexStore.get(name) -> Index | None                      concrete index by name
  IndexStore.create(name, body=None) -> Index               applies templates, validates, raises EsError
  IndexStore.resolve_write_index(name, auto_create=True)    index, alias (write index) or auto-created index
  IndexStore.resolve(expression, **options) -> list[Index]  comma lists, wildcards, aliases, _all, date math
      options: ignore_unavailable=False, allow_no_indices=True, expand_wildcards="open", allow_aliases=True
      (sandbox.indices.names.index_options(req) builds them from a request's query parameters)
  IndexStore.aliases: alias -> {index: properties}          properties: filter, index_routing, search_routing, ...
  IndexStore.alias_filter(index_name, expression)           the alias filters that apply when searching `expression`
  IndexStore.pipelines: pipeline id -> stored body          (pipelines.referenced_models(body) lists model ids)
  Index.docs: dict[str, Document]                           the stored documents
  Index.put_document(id, source, op_type) / delete_document(id) / refresh()
  Index.update_mapping_for(source) -> bool                  dynamic mapping of new fields (raises strict errors)
  Index.closed, Index.settings (flat "index.*" strings), Index.mappings
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sandbox import versions
from sandbox.errors import (
    EsError,
    IllegalArgument,
    IndexNotFound,
    InvalidIndexName,
    MapperParsing,
    ParseError,
    ResourceAlreadyExists,
)
from sandbox.ids import new_uuid, now_millis
from sandbox.indices import mappings as mapping_rules
from sandbox.indices import settings as settings_rules
from sandbox.indices.aliases import parse_alias
from sandbox.indices.analysis import custom_analyzers
from sandbox.indices.dynamic import dynamic_update
from sandbox.indices.names import (
    InvalidAliasName,
    expand_states,
    glob_match,
    is_wildcard,
    resolve_date_math,
    validate_alias_name,
    validate_index_name,
)
from sandbox.indices.templates import find_template

# IndexVersion id reported as index.version.created: ES IndexVersions.UPGRADE_TO_LUCENE_10_1_0 = def(9_009_0_00), a
# 9.x id (es-api-semantics.md §1.6). Not derived from the configured version: clients only read it as an opaque id.
INDEX_VERSION_CREATED = "9009000"
TIER_PREFERENCE = "index.routing.allocation.include._tier_preference"


class IndexClosed(EsError):
    status, type = 400, "index_closed_exception"

    def __init__(self, index: Index):
        super().__init__("closed", index_uuid=index.uuid, index=index.name)


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
    settings: dict[str, Any] = field(default_factory=dict)  # flat "index.*" keys, string (or list) values
    mappings: dict[str, Any] = field(default_factory=dict)
    docs: dict[str, Document] = field(default_factory=dict)
    creation_date: int = field(default_factory=now_millis)
    closed: bool = False
    next_seq_no: int = 0
    searchable_seq_no: int = -1  # documents with a higher seq_no are not visible to search until refresh

    @property
    def hidden(self) -> bool:
        return self.settings.get("index.hidden") == "true"

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

    def update_mapping_for(self, source: dict[str, Any]) -> bool:
        """Dynamic mapping: add fields the mapping does not have yet. All-or-nothing; returns whether it changed."""
        candidate = copy.deepcopy(self.mappings)
        changed = dynamic_update(candidate, source)
        if changed:
            self.mappings = candidate
        return changed

    def analyzers(self) -> set[str]:
        return custom_analyzers(self.settings)

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "docs"}
        data["docs"] = [dataclasses.asdict(doc) for doc in self.docs.values()]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Index:
        names = {f.name for f in dataclasses.fields(cls)} - {"docs"}
        index = cls(**{k: v for k, v in data.items() if k in names})
        doc_fields = {f.name for f in dataclasses.fields(Document)}
        index.docs = {d["id"]: Document(**{k: v for k, v in d.items() if k in doc_fields}) for d in data["docs"]}
        return index


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key in ("properties", "runtime", "_source"):
            out[key] = {**out[key], **copy.deepcopy(value)}
        else:
            out[key] = copy.deepcopy(value)
    return out


class IndexStore:
    def __init__(self, cluster: Any):
        self.cluster = cluster
        self.reset()

    def reset(self) -> None:
        self.indices: dict[str, Index] = {}
        self.aliases: dict[str, dict[str, dict[str, Any]]] = {}  # alias -> {index: alias properties}
        self.templates: dict[str, dict[str, Any]] = {}  # composable index templates, stored form
        self.pipelines: dict[str, dict[str, Any]] = {}  # ingest pipeline id -> body
        self.cluster_settings: dict[str, dict[str, Any]] = {"persistent": {}, "transient": {}}

    # ---- lookups ----------------------------------------------------------------------------------------
    def get(self, name: str) -> Index | None:
        return self.indices.get(name)

    def aliases_of(self, index_name: str) -> dict[str, dict[str, Any]]:
        return {alias: members[index_name] for alias, members in sorted(self.aliases.items())
                if index_name in members}

    def cluster_setting(self, key: str, default: str) -> str:
        for scope in ("transient", "persistent"):
            if key in self.cluster_settings[scope]:
                return str(self.cluster_settings[scope][key])
        return default

    def _state_ok(self, index: Index, states: set[str], pattern: str) -> bool:
        if index.hidden and "hidden" not in states and not pattern.startswith("."):
            return False
        return ("closed" if index.closed else "open") in states

    def resolve(self, expression: str | list[str] | None, *, ignore_unavailable: bool = False,
                allow_no_indices: bool = True, expand_wildcards: str | set[str] = "open",
                allow_aliases: bool = True) -> list[Index]:
        """Concrete indices for an index expression (ES IndexNameExpressionResolver, simplified)."""
        states = expand_states(expand_wildcards) if isinstance(expand_wildcards, str) else set(expand_wildcards)
        parts = expression if isinstance(expression, list) else [p for p in (expression or "").split(",") if p]
        parts = [p.strip() for p in parts if p.strip()]
        if not parts or parts == ["_all"]:
            parts = ["*"]
        found: dict[str, Index] = {}
        seen_wildcard = False
        for part in parts:
            if part.startswith("-") and seen_wildcard:
                for name in [n for n in found if glob_match(resolve_date_math(part[1:]), n)]:
                    del found[name]
                continue
            name = resolve_date_math(part)
            if is_wildcard(name) or name == "_all":
                seen_wildcard = True
                pattern = "*" if name == "_all" else name
                matched = [i for i in self.indices.values()
                           if glob_match(pattern, i.name) and self._state_ok(i, states, pattern)]
                if allow_aliases:
                    matched += [self.indices[i] for alias, members in self.aliases.items()
                                if glob_match(pattern, alias) for i in members
                                if self._state_ok(self.indices[i], states, pattern)]
                if not matched and not allow_no_indices:
                    raise IndexNotFound(name)  # ES checks allow_no_indices per wildcard expression
                found.update((i.name, i) for i in matched)
                continue
            if name in self.indices:
                found[name] = self.indices[name]
            elif name in self.aliases:
                if not allow_aliases:
                    if ignore_unavailable:
                        continue
                    raise IllegalArgument(f"The provided expression [{name}] matches an alias, specify the "
                                          f"corresponding concrete indices instead.")
                for index_name in self.aliases[name]:
                    index = self.indices[index_name]
                    if not index.closed or "closed" in states:
                        found[index_name] = index
            elif name.startswith("_"):
                raise InvalidIndexName(name, "must not start with '_'.")
            elif not ignore_unavailable:
                raise IndexNotFound(name)
        if not found and not allow_no_indices:
            shown = ",".join(parts)
            raise IndexNotFound(shown)
        return [found[name] for name in sorted(found)]

    def alias_filter(self, index_name: str, expression: str | None) -> list[dict[str, Any]] | None:
        """Filters of the aliases named in `expression` that point at `index_name`; None if the index is also
        addressed directly (or by a filterless alias), in which case no filter applies (ES AliasFilter)."""
        parts = [resolve_date_math(p) for p in (expression or "").split(",") if p] or ["_all"]
        filters = []
        for part in parts:
            pattern = "*" if part == "_all" else part
            if pattern == index_name or (is_wildcard(pattern) and glob_match(pattern, index_name)):
                return None
            names = ([a for a in self.aliases if glob_match(pattern, a)] if is_wildcard(pattern)
                     else [pattern])
            for alias in names:
                props = self.aliases.get(alias, {}).get(index_name)
                if props is None:
                    continue
                if "filter" not in props:
                    return None
                filters.append(props["filter"])
        return filters or None

    # ---- writes -----------------------------------------------------------------------------------------
    def resolve_write_index(self, name: str, auto_create: bool = True, require_alias: bool = False) -> Index:
        name = resolve_date_math(name)
        if name in self.aliases:
            members = self.aliases[name]
            writers = [i for i, props in members.items() if props.get("is_write_index")]
            if not writers and len(members) == 1:
                only = next(iter(members))
                if members[only].get("is_write_index") is not False:
                    writers = [only]
            if not writers:
                raise IllegalArgument(
                    f"no write index is defined for alias [{name}]. The write index may be explicitly disabled using "
                    f"is_write_index=false or the alias points to multiple indices without one being designated as "
                    f"a write index")
            index = self.indices[writers[0]]
        elif require_alias:
            raise IndexNotFound(name, f"no such index [{name}] and [require_alias] request flag is [true] and "
                                      f"[{name}] is not an alias")
        elif name in self.indices:
            index = self.indices[name]
        elif auto_create:
            self._check_auto_create(name)
            return self.create(name)
        else:
            raise IndexNotFound(name)
        if index.closed:
            raise IndexClosed(index)
        return index

    def _check_auto_create(self, name: str) -> None:
        """ES AutoCreateIndex: action.auto_create_index (true/false here) and a template's allow_auto_create."""
        template = find_template(name, self.templates)
        allowed = template[1].get("allow_auto_create") if template else None
        if allowed is False:
            raise IndexNotFound(name, f"composable template {template[1]['index_patterns']} forbids index "
                                      f"auto creation".replace("'", ""))
        if allowed is None and self.cluster_setting("action.auto_create_index", "true") == "false":
            raise IndexNotFound(name, f"no such index [{name}] and [action.auto_create_index] is [false]")

    def create(self, name: str, body: dict[str, Any] | None = None) -> Index:
        provided = name
        name = resolve_date_math(name)
        validate_index_name(name)
        if name in self.indices:
            index = self.indices[name]
            raise ResourceAlreadyExists(f"index [{name}/{index.uuid}] already exists",
                                        index_uuid=index.uuid, index=name)
        if name in self.aliases:
            raise InvalidIndexName(name, "already exists as alias")
        body = body or {}
        if not isinstance(body, dict):
            raise ParseError("Failed to parse content to map")
        unknown = [k for k in body if k not in ("settings", "mappings", "aliases")]
        if unknown:
            raise ParseError(f"unknown key [{unknown[0]}] for create index")
        settings = {k: v for k, v in settings_rules.normalise(body.get("settings")).items() if v is not None}
        raw_mappings = mapping_rules.strip_doc_wrapper(body.get("mappings"))
        raw_aliases = body.get("aliases") or {}
        if not isinstance(raw_aliases, dict):
            raise ParseError(f"Failed to parse aliases: expected an object but found [{raw_aliases!r}]")
        template = find_template(name, self.templates, hidden=settings.get("index.hidden") == "true")
        template_mappings: dict[str, Any] = {}
        if template is not None:
            spec = template[1].get("template", {})
            settings = {**spec.get("settings", {}), **settings}
            template_mappings = spec.get("mappings", {})
            raw_aliases = {**spec.get("aliases", {}), **raw_aliases}
        settings_rules.validate_create(settings)
        try:
            mappings = mapping_rules.parse_mapping(raw_mappings, custom_analyzers(settings))
        except EsError as error:  # ES MetadataCreateIndexService wraps mapping errors
            raise MapperParsing(f"Failed to parse mapping: {error.reason}", caused_by=error) from error
        if template_mappings:
            mappings = _deep_merge(template_mappings, mappings)
        aliases = {}
        for alias, props in raw_aliases.items():
            alias = resolve_date_math(alias)
            validate_alias_name(alias)
            if alias == name or alias in self.indices:
                raise InvalidAliasName(alias, "an index or data stream exists with the same name as the alias")
            aliases[alias] = parse_alias(alias, props,
                                         string_booleans=versions.alias_string_booleans(self.cluster.version))
            self._check_single_writer(alias, name, aliases[alias])
        index = Index(name)
        settings.setdefault("index.number_of_shards", "1")
        settings.setdefault("index.number_of_replicas", "1")
        settings.setdefault(TIER_PREFERENCE, "data_content")
        settings.setdefault("index.creation_date", str(index.creation_date))
        index.creation_date = int(settings["index.creation_date"])
        settings.update({"index.provided_name": provided, "index.uuid": index.uuid,
                         "index.version.created": INDEX_VERSION_CREATED})
        index.settings = dict(sorted(settings.items()))
        index.mappings = mappings
        self.indices[name] = index
        for alias, props in aliases.items():
            self.aliases.setdefault(alias, {})[name] = props
        return index

    def _check_single_writer(self, alias: str, index_name: str, props: dict[str, Any]) -> None:
        if not props.get("is_write_index"):
            return
        others = [i for i, p in self.aliases.get(alias, {}).items() if p.get("is_write_index") and i != index_name]
        if others:
            listed = ",".join(sorted([*others, index_name]))
            raise IllegalArgument(f"alias [{alias}] has more than one write index [{listed}]")

    def delete_index(self, name: str) -> None:
        self.indices.pop(name, None)
        for alias in list(self.aliases):
            self.aliases[alias].pop(name, None)
            if not self.aliases[alias]:
                del self.aliases[alias]

    def creation_date_string(self, index: Index) -> str:
        moment = dt.datetime.fromtimestamp(index.creation_date / 1000, dt.UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"

    # ---- persistence ------------------------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        return {
            "indices": [index.to_dict() for index in self.indices.values()],
            "aliases": copy.deepcopy(self.aliases),
            "templates": copy.deepcopy(self.templates),
            "pipelines": copy.deepcopy(self.pipelines),
            "cluster_settings": copy.deepcopy(self.cluster_settings),
        }

    def load(self, data: dict[str, Any]) -> None:
        self.reset()
        self.indices = {d["name"]: Index.from_dict(d) for d in data.get("indices", [])}
        self.aliases = copy.deepcopy(data.get("aliases", {}))
        self.templates = copy.deepcopy(data.get("templates", {}))
        self.pipelines = copy.deepcopy(data.get("pipelines", {}))
        self.cluster_settings = copy.deepcopy(data.get("cluster_settings", self.cluster_settings))
