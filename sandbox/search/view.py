"""What search sees of an index: the last refreshed snapshot of its documents, indexed with tantivy.

Refresh semantics as in ES: a write is visible to GET by id at once (real-time, Index.docs) but to search only
after a refresh: an explicit one (`_refresh`, `?refresh=true|wait_for`) or the periodic one every
`index.refresh_interval` (1s by default, `-1` disables it). The periodic refresh is modelled as ticks every
interval since the index's creation: at search time, writes made before the last tick are applied.
Search-idle shards (no explicit refresh_interval, no search for 30s) skip scheduled refreshes and are refreshed by
the next search, as in ES (see search_access).

Relevance: tantivy's BM25 (k1=1.2, b=0.75, idf = ln(1 + (N - n + 0.5) / (n + 0.5))) as Lucene's BM25Similarity,
except that tantivy keeps the (k1 + 1) factor in the numerator that Lucene 8+ dropped; queries.py divides every
BM25 leaf by (k1 + 1) so scores land on ES's scale. Document lengths are quantised exactly as Lucene's norms
(SmallFloat.intToByte4); tests/sandbox/test_search.py checks scores against Lucene's formula to 1e-5.
Remaining differences with ES (documented, not hidden):
  * statistics are per ES index (ES: per shard; with the 9.x default of 1 shard these are the same, with
    number_of_shards > 1 ES scores each shard with its own statistics and the sandbox does not);
  * N (for idf) and avgdl count all documents of the index, Lucene only those having the field (differs only for
    fields missing from some documents);
  * analyzers: see analysis.py (a regex approximation of Lucene's StandardTokenizer: UAX#29 words, joined across
    ' . : between letters/digits; no CJK ideograph splitting, no 255-char token splitting);
  * keyword fields keep norms in tantivy (ES disables them); for single-valued keyword fields both come to a length
    of 1 and an avgdl of 1, so scores agree; multi-valued keyword fields score slightly differently.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sandbox.errors import EsError
from sandbox.search import analysis
from sandbox.search.fields import KEYWORD, TEXT, FieldInfo, field_infos, values_at

_STATE_ATTR = "_sandbox_search_state"  # stored on the Index object (the indices area owns Index; see report)
_tantivy_lock = threading.Lock()


def parse_interval_ms(value: Any) -> int:
    """`index.refresh_interval` as milliseconds; -1 (or any negative) disables periodic refresh."""
    if value is None:
        return 1000
    text = str(value).strip().lower()
    match = re.fullmatch(r"(-?\d+(?:\.\d+)?)(nanos|micros|ms|s|m|h|d)?", text)
    if not match:
        return 1000
    number = float(match.group(1))
    if number < 0:
        return -1
    factor = {"nanos": 1e-6, "micros": 1e-3, "ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
    return int(number * factor[match.group(2) or "ms"])


def _setting(index: Any, key: str) -> Any:
    settings = getattr(index, "settings", None) or {}
    if f"index.{key}" in settings:
        return settings[f"index.{key}"]
    nested = settings.get("index")
    if isinstance(nested, dict):
        return nested.get(key)
    return settings.get(key)


@dataclass
class Built:
    """A tantivy index over one snapshot."""

    tindex: Any
    schema: Any
    fields: dict[str, FieldInfo]
    tnames: dict[str, str]  # ES field path -> tantivy field name (text and keyword fields only)
    num_docs: int
    search_analyzers: dict[str, Any] = field(default_factory=dict)  # path -> TextAnalyzer for query text
    index_analyzers: dict[str, Any] = field(default_factory=dict)  # path -> TextAnalyzer used at index time
    field_errors: dict[str, Any] = field(default_factory=dict)  # path -> EsError raised when the field is queried
    ids: dict[tuple[int, int], str] = field(default_factory=dict)  # (segment, doc) -> _id, filled on demand

    def doc_id(self, searcher: Any, address: Any) -> str:
        key = (address.segment_ord, address.doc)
        if key not in self.ids:
            self.ids[key] = searcher.doc(address)["_id"][0]
        return self.ids[key]


@dataclass
class SearchState:
    visible: dict[str, Any]  # id -> Document, as of the last refresh
    pending: list[tuple[int, str, Any]] = field(default_factory=list)  # (time ms, id, Document | None)
    built: Built | None = None
    built_mapping: str = ""
    last_search_ms: int | None = None


def state(index: Any) -> SearchState:
    st = getattr(index, _STATE_ATTR, None)
    if st is None:
        # an index we have not seen written through the documents area (e.g. loaded from a state file): all visible
        st = SearchState(visible=dict(index.docs))
        setattr(index, _STATE_ATTR, st)
    return st


def record_write(index: Any, doc_id: str, doc: Any) -> None:
    """Called by every write (doc None = delete); the change becomes searchable on the next refresh."""
    state(index).pending.append((int(time.time() * 1000), doc_id, doc))


def _apply(st: SearchState, upto_ms: int | None) -> None:
    keep = []
    changed = False
    for entry in st.pending:
        when, doc_id, doc = entry
        if upto_ms is not None and when >= upto_ms:
            keep.append(entry)
            continue
        changed = True
        if doc is None:
            st.visible.pop(doc_id, None)
        else:
            st.visible[doc_id] = doc
    st.pending = keep
    if changed:
        st.built = None


def refresh(index: Any) -> None:
    """An explicit refresh: everything written so far becomes searchable."""
    _apply(state(index), None)
    index.refresh()


def periodic_refresh(index: Any, now_ms: int | None = None) -> None:
    """Apply the scheduled refreshes that happened since the last search (ticks every refresh_interval)."""
    st = state(index)
    if not st.pending:
        return
    interval = parse_interval_ms(_setting(index, "refresh_interval"))
    if interval <= 0:
        return
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    created = int(getattr(index, "creation_date", 0) or 0)
    ticks = (now_ms - created) // interval
    if ticks < 1:
        return  # the first scheduled refresh comes one interval after creation
    last_tick = created + ticks * interval
    if st.pending[0][0] < last_tick:
        _apply(st, last_tick)
        index.refresh()


SEARCH_IDLE_AFTER_MS = 30_000  # index.search.idle.after default


def search_access(index: Any, now_ms: int | None = None) -> None:
    """A search reaches the index. ES: when refresh_interval is not set explicitly, a shard without searches for
    index.search.idle.after (30s) is search-idle and skips scheduled refreshes; a search on it refreshes first
    (ES docs, index.refresh_interval). Otherwise only the scheduled refreshes apply."""
    st = state(index)
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    last = st.last_search_ms if st.last_search_ms is not None else int(getattr(index, "creation_date", 0) or 0)
    if st.pending and _setting(index, "refresh_interval") is None and now_ms - last >= SEARCH_IDLE_AFTER_MS:
        # idle: the scheduled refreshes stopped once the shard became idle, the search now triggers one
        _apply(st, None)
        index.refresh()
    else:
        periodic_refresh(index, now_ms)
    st.last_search_ms = now_ms


def visible_docs(index: Any) -> dict[str, Any]:
    search_access(index)
    return state(index).visible


def built(index: Any) -> Built:
    """The tantivy index of the visible snapshot, (re)built lazily after a refresh or a mapping change."""
    import json

    st = state(index)  # the caller has applied due refreshes (visible_docs); the build matches that snapshot
    mapping_key = json.dumps(getattr(index, "mappings", {}) or {}, sort_keys=True, default=str)
    if st.built is None or st.built_mapping != mapping_key:
        st.built = _build(index, st.visible)
        st.built_mapping = mapping_key
    return st.built


def _build(index: Any, docs: dict[str, Any]) -> Built:
    import tantivy

    sources = [d.source for d in docs.values()]
    infos = field_infos(getattr(index, "mappings", {}) or {}, sources)
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("_id", stored=True, tokenizer_name="raw", index_option="basic")
    settings = getattr(index, "settings", {}) or {}
    tnames: dict[str, str] = {}
    tokenizers: dict[str, Any] = {}
    built_parts: dict[str, dict[str, Any]] = {"search": {}, "index": {}, "errors": {}}
    for path, info in infos.items():
        if info.family not in (TEXT, KEYWORD):
            continue
        try:
            if info.family == TEXT:
                tokenizer, index_analyzer = analysis.analyzer_for(info.analyzer, settings)
                _, search_analyzer = analysis.analyzer_for(info.search_analyzer, settings)
                index_option = "position"
            elif info.normalizer:
                tokenizer, index_analyzer = analysis.normalizer_for(info.normalizer, settings)
                search_analyzer, index_option = index_analyzer, "freq"
            else:
                # ES keyword fields: one raw term per value (docs only, no norms in ES)
                tokenizer, index_analyzer, search_analyzer, index_option = "raw", None, None, "freq"
        except EsError as error:
            built_parts["errors"][path] = error  # raised only if a query uses this field
            continue
        tnames[path] = f"f{len(tnames)}"
        builder.add_text_field(tnames[path], tokenizer_name=tokenizer, index_option=index_option)
        if index_analyzer is not None:
            tokenizers[tokenizer] = index_analyzer
            built_parts["index"][path] = index_analyzer
        if search_analyzer is not None:
            built_parts["search"][path] = search_analyzer
    schema = builder.build()
    with _tantivy_lock:
        tindex = tantivy.Index(schema)
        for name, analyzer in tokenizers.items():
            tindex.register_tokenizer(name, analyzer)
        writer = tindex.writer(heap_size=15_000_000, num_threads=1)
        for doc_id, doc in docs.items():
            tdoc = tantivy.Document()
            tdoc.add_text("_id", doc_id)
            for path, tname in tnames.items():
                info = infos[path]
                for value in values_at(doc.source, info.source_path):
                    if isinstance(value, dict):
                        continue
                    text = _as_text(value)
                    if info.family == KEYWORD and info.ignore_above is not None and len(text) > info.ignore_above:
                        continue
                    tdoc.add_text(tname, text)
            writer.add_document(tdoc)
        writer.commit()
        writer.wait_merging_threads()
        tindex.reload()
    return Built(tindex, schema, infos, tnames, len(docs), built_parts["search"], built_parts["index"],
                 built_parts["errors"])


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
