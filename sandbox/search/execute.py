"""Running a search over resolved indices: matching and scoring (tantivy), sort, paging, hits (ES Search API docs).

Each ES index is searched on its own tantivy index (ES: per-shard statistics, 1 shard by default), and hits are
merged by score, ties broken by index order then document order (ES: shard index, then Lucene doc id).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from sandbox.errors import EsError
from sandbox.search import view
from sandbox.search.fields import KEYWORD, TEXT, values_at
from sandbox.search.queries import Compiler
from sandbox.search.source import filter_source

DEFAULT_TRACK_TOTAL_HITS = 10_000


@dataclass
class Hit:
    index: Any
    doc_id: str
    doc: Any
    score: float
    rank: tuple  # tie-break: (index position, doc position)
    sort: list[Any] | None = None


class Target(list):
    """The concrete indices of a search, with the expression they came from (for filtered aliases)."""

    def __init__(self, indices: list[Any], expression: str | None = None, store: Any = None):
        super().__init__(indices)
        self.expression, self.store = expression, store

    def alias_filters(self, index: Any) -> list[Any]:
        if self.store is None or not hasattr(self.store, "alias_filter"):
            return []
        filters = self.store.alias_filter(index.name, self.expression)
        if not filters:
            return []
        # several filtered aliases of one index: a document matching any of them is visible (ES AliasFilter)
        return [filters[0]] if len(filters) == 1 else [{"bool": {"should": filters, "minimum_should_match": 1}}]


def resolve_indices(sb: Any, expression: str | None, options: dict[str, Any]) -> Target:
    store = sb.cluster.indices
    indices = store.resolve(expression or "_all", **options)
    for index in indices:
        if getattr(index, "closed", False):
            # ES: searching a closed index by name (wildcards skip closed indices)
            raise EsError("closed", status=400, type="index_closed_exception", index_uuid=index.uuid,
                          index=index.name)
        if str((index.settings or {}).get("index.blocks.read", "false")).lower() == "true":
            # IndexMetadata.APIBlock.READ (id 7): searches of a read-blocked index fail (ClusterBlockException)
            raise EsError(f"index [{index.name}] blocked by: [FORBIDDEN/7/index read (api)];", status=403,
                          type="cluster_block_exception")
    return Target(indices, expression, store)


def search_hits(indices: list[Any], query: Any, filters: list[Any] | None = None,
                min_score: float | None = None) -> list[Hit]:
    """Every matching document of `indices`, scored and sorted by score (desc) with ES-like tie-breaks."""
    hits: list[Hit] = []
    for position, index in enumerate(indices):
        docs = view.visible_docs(index)
        if not docs:
            continue
        built = view.built(index)
        compiler = Compiler(built, docs, getattr(index, "settings", None))
        tquery = compiler.compile(query) if query is not None else compiler.q_match_all({})
        index_filters = list(filters or [])
        if isinstance(indices, Target):
            index_filters += indices.alias_filters(index)
        if index_filters:
            import tantivy

            clauses = [(tantivy.Occur.Must, tquery)]
            clauses += [(tantivy.Occur.Must, tantivy.Query.const_score_query(compiler.compile(f), 0.0))
                        for f in index_filters]
            tquery = tantivy.Query.boolean_query(clauses)
        searcher = built.tindex.searcher()
        result = searcher.search(tquery, limit=max(built.num_docs, 1), count=False)
        for score, address in result.hits:
            doc_id = built.doc_id(searcher, address)
            if doc_id not in docs:
                continue
            if min_score is not None and float(score) < f32(min_score):  # ES compares float32 scores
                continue
            hits.append(Hit(index, doc_id, docs[doc_id], float(score), (position, address.segment_ord, address.doc)))
    hits.sort(key=lambda h: (-h.score, h.rank))
    return hits


def matching_docs(sb: Any, indices: list[Any], query: Any) -> list[tuple[Any, str, Any]]:
    """(index, id, Document) of searchable documents matching `query`, in index then document order (reindex)."""
    hits = search_hits(indices, query)
    hits.sort(key=lambda h: h.rank)
    return [(h.index, h.doc_id, h.doc) for h in hits]


# ---- sort -----------------------------------------------------------------------------------------------
def parse_sort(spec: Any) -> list[tuple[str, str, Any]]:
    """[(field, order, missing)] from ES sort syntax (string, list, {field: order}, {field: {order, missing}})."""
    if spec is None:
        return []
    items = spec if isinstance(spec, list) else [spec]
    out = []
    for item in items:
        if isinstance(item, str):
            field, _, order = item.partition(":")
            out.append((field, order or ("desc" if field == "_score" else "asc"), None))
        elif isinstance(item, dict):
            for field, params in item.items():
                if isinstance(params, str):
                    out.append((field, params, None))
                else:
                    params = params or {}
                    out.append((field, params.get("order", "desc" if field == "_score" else "asc"),
                                params.get("missing")))
        else:
            raise EsError(f"malformed sort format [{item}]", status=400, type="parsing_exception")
    return out


def _shard_failure(reason: str, index: Any) -> EsError:
    cause = EsError(reason, status=400, type="illegal_argument_exception")
    return EsError("all shards failed", status=400, type="search_phase_execution_exception", caused_by=cause,
                   phase="query", grouped=True, failed_shards=[
                       {"shard": 0, "index": index.name, "node": "sandbox", "reason": cause.cause_dict()}])


def apply_sort(hits: list[Hit], sort: list[tuple[str, str, Any]]) -> None:
    if not sort:
        return
    builds: dict[str, Any] = {}
    for hit in hits:
        keys = []
        for field, order, _missing in sort:
            if field == "_score":
                keys.append(hit.score)
                continue
            if field == "_doc":
                keys.append(hit.rank[2])
                continue
            if hit.index.name not in builds:
                builds[hit.index.name] = view.built(hit.index)
            info = builds[hit.index.name].fields.get(field)
            if info is None:
                raise _shard_failure(f"No mapping found for [{field}] in order to sort on", hit.index)
            if info.family == TEXT:
                raise _shard_failure(
                    "Fielddata is disabled on [" + field + "] in [" + hit.index.name + "]. Text fields are not "
                    "optimised for operations that require per-document field data like aggregations and "
                    "sorting, so these operations are disabled by default. Please use a keyword field instead. "
                    "Alternatively, set fielddata=true on [" + field + "] in order to load field data by "
                    "uninverting the inverted index. Note that this can use significant memory.", hit.index)
            values = values_at(hit.doc.source, info.source_path)
            if info.family == KEYWORD:
                values = [str(v) for v in values]
            keys.append((min(values) if order == "asc" else max(values)) if values else None)
        hit.sort = keys

    def compare_key(hit: Hit) -> tuple:
        parts = []
        for (_field, order, missing), value in zip(sort, hit.sort or [], strict=False):
            is_missing = value is None
            # missing values sort last by default (ES `_last`), whatever the order
            last = missing != "_first"
            parts.append(_Ordered(value, order == "desc", is_missing, last))
        return (*parts, hit.rank)

    hits.sort(key=compare_key)


class _Ordered:
    __slots__ = ("value", "desc", "missing", "last")

    def __init__(self, value: Any, desc: bool, missing: bool, last: bool):
        self.value, self.desc, self.missing, self.last = value, desc, missing, last

    def __lt__(self, other: _Ordered) -> bool:
        if self.missing or other.missing:
            if self.missing and other.missing:
                return False
            return other.missing if self.last else self.missing
        if self.value == other.value:
            return False
        return self.value > other.value if self.desc else self.value < other.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Ordered) and self.missing == other.missing and self.value == other.value


# ---- response --------------------------------------------------------------------------------------------
def total_hits(count: int, track: Any, as_int: bool) -> Any:
    if track is False:
        return None
    limit = None if track is True else (DEFAULT_TRACK_TOTAL_HITS if track is None else int(track))
    if limit is not None and count > limit:
        total = {"value": limit, "relation": "gte"}
    else:
        total = {"value": count, "relation": "eq"}
    return total["value"] if as_int else total


def fields_option(hit: Hit, patterns: list[Any]) -> dict[str, list[Any]]:
    built = view.built(hit.index)
    out: dict[str, list[Any]] = {}
    for pattern in patterns:
        name = pattern.get("field") if isinstance(pattern, dict) else pattern
        for path, info in built.fields.items():
            if fnmatchcase(path, name):
                values = values_at(hit.doc.source, info.source_path)
                if values:
                    out[path] = values
    return out


def f32(value: float) -> float:
    return struct.unpack("<f", struct.pack("<f", value))[0]


def es_float(value: float | None) -> float | None:
    """A score as ES prints it: a float32, in its shortest decimal form (0.36787945, not 0.36787944117144233)."""
    if value is None or not math.isfinite(value):
        return value
    packed = struct.pack("<f", value)
    for digits in range(6, 10):
        text = f"{struct.unpack('<f', packed)[0]:.{digits}g}"
        if struct.pack("<f", float(text)) == packed:
            return float(text)
    return struct.unpack("<f", packed)[0]


def render_hit(hit: Hit, *, fetch: bool, includes: list[str], excludes: list[str], with_score: bool,
               fields: list[Any] | None, version: bool = False, seq_no: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"_index": hit.index.name, "_id": hit.doc_id}
    if version:
        body["_version"] = hit.doc.version
    if seq_no:
        body["_seq_no"], body["_primary_term"] = hit.doc.seq_no, hit.doc.primary_term
    body["_score"] = es_float(hit.score) if with_score else None
    if fetch:
        body["_source"] = filter_source(hit.doc.source, includes, excludes)
    if fields:
        rendered = fields_option(hit, fields)
        if rendered:
            body["fields"] = rendered
    if hit.sort is not None:
        body["sort"] = hit.sort
    return body


def shards_section(indices: list[Any]) -> dict[str, int]:
    shards = 0
    for index in indices:
        try:
            shards += int((index.settings or {}).get("index.number_of_shards", 1))
        except (TypeError, ValueError):
            shards += 1
    return {"total": shards, "successful": shards, "skipped": 0, "failed": 0}
