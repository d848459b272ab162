"""ES query DSL -> tantivy queries over one index's searchable snapshot.

Text and keyword leaves are tantivy term/phrase queries, scored by tantivy's BM25 (see view.py for the scale
correction and the known differences with ES). Leaves ES scores as constant (numbers, dates, booleans, ids,
exists, range) are evaluated on the sources here and become a constant-score set query on `_id`.
"""

from __future__ import annotations

import datetime as dt
from fnmatch import fnmatchcase
from typing import Any

from sandbox.errors import EsError
from sandbox.search import analysis
from sandbox.search.fields import BOOLEAN, DATE, KEYWORD, NUMBER, TEXT, values_at
from sandbox.search.view import Built

BM25_K1 = 1.2
_LUCENE_SCALE = 1.0 / (1.0 + BM25_K1)  # tantivy multiplies BM25 by (k1 + 1); Lucene 8+ does not

# queries the sandbox knowingly does not run: refused as unsupported, not as unknown
UNSUPPORTED_QUERIES = {"wildcard", "prefix", "regexp", "fuzzy", "nested", "has_child", "has_parent", "knn",
                       "semantic", "sparse_vector", "function_score", "script_score", "script", "geo_distance",
                       "more_like_this", "simple_query_string", "match_bool_prefix", "match_phrase_prefix",
                       "combined_fields", "span_term", "intervals", "rank_feature", "text_expansion", "boosting"}


def parsing_error(reason: str) -> EsError:
    return EsError(reason, status=400, type="parsing_exception")


def _single_field(kind: str, spec: Any) -> tuple[str, Any]:
    if not isinstance(spec, dict) or len(spec) != 1:
        raise parsing_error(f"[{kind}] query doesn't support multiple fields, found {sorted(spec or [])}")
    return next(iter(spec.items()))


def minimum_should_match(spec: Any, optional: int) -> int:
    """ES Queries.calculateMinShouldMatch: ints, negative ints, percentages, and `N<spec` conditionals."""
    if spec is None:
        return 0
    text = str(spec).strip()
    if "<" in text:
        result = optional
        for part in text.split():
            upper, _, value = part.partition("<")
            if optional > int(upper):
                result = minimum_should_match(value, optional)
        return result
    try:
        if text.endswith("%"):
            pct = float(text[:-1])
            value = int(optional * pct / 100)
            result = value if pct >= 0 else optional + value
        else:
            value = int(text)
            result = value if value >= 0 else optional + value
    except ValueError as exc:
        raise EsError(f"failed to parse [minimum_should_match] value [{text}]", status=400,
                      type="illegal_argument_exception") from exc
    return max(0, min(result, optional)) if result >= 0 else 0


def _to_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _to_millis(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text == "now":
        return dt.datetime.now(dt.UTC).timestamp() * 1000
    if text.isdigit():
        return float(text)
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp() * 1000


def _to_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in ("true", "false"):
        return value == "true"
    return None


_MATCH_PARAMS = {"query", "operator", "minimum_should_match", "boost", "analyzer", "fuzziness", "prefix_length",
                 "max_expansions", "fuzzy_transpositions", "fuzzy_rewrite", "lenient", "zero_terms_query",
                 "auto_generate_synonyms_phrase_query", "_name"}


def _refuse_unsupported(kind: str, params: dict[str, Any]) -> None:
    """Valid ES options the sandbox does not implement are refused, not ignored."""
    if params.get("fuzziness") not in (None, 0, "0"):
        raise EsError(f"the sandbox does not support [fuzziness] in [{kind}]", status=400,
                      type="sandbox_unsupported_exception")


class Compiler:
    """Compiles one query for one index: `compile(query_dict) -> tantivy.Query`."""

    def __init__(self, built: Built, docs: dict[str, Any], settings: dict[str, Any] | None = None):
        import tantivy

        self.t = tantivy
        self.built = built
        self.docs = docs
        self.settings = settings or {}

    # ---- helpers ----------------------------------------------------------------------------------------
    def _ids_query(self, ids: list[str], boost: float = 1.0) -> Any:
        if not ids:
            return self.t.Query.empty_query()
        return self.t.Query.const_score_query(self.t.Query.term_set_query(self.built.schema, "_id", ids), boost)

    def _where(self, field: str, predicate: Any, boost: float = 1.0) -> Any:
        info = self.built.fields.get(field)
        path = info.source_path if info else field
        ids = [doc_id for doc_id, doc in self.docs.items()
               if any(predicate(v) for v in values_at(doc.source, path))]
        return self._ids_query(ids, boost)

    def _term_leaf(self, tname: str, token: str) -> Any:
        return self.t.Query.boost_query(self.t.Query.term_query(self.built.schema, tname, token, "freq"),
                                        _LUCENE_SCALE)

    def _boost(self, query: Any, boost: float) -> Any:
        return query if boost == 1.0 else self.t.Query.boost_query(query, float(boost))

    def _bool(self, clauses: list[tuple[Any, Any]], msm: int | None = None) -> Any:
        if msm:
            return self.t.Query.boolean_query(clauses, msm)
        return self.t.Query.boolean_query(clauses)

    def fields_matching(self, patterns: list[str]) -> list[tuple[str, float]]:
        """`["title^2", "plot*"]` -> [(field, boost)] over the known fields. A pattern expands to every queryable
        field it matches (ES QueryParserHelper.resolveMappingField; those expansions are lenient)."""
        out: list[tuple[str, float]] = []
        for pattern in patterns:
            name, _, boost_text = pattern.partition("^")
            boost = float(boost_text) if boost_text else 1.0
            if any(ch in name for ch in "*?"):
                for path, info in self.built.fields.items():
                    if fnmatchcase(path, name) and info.family in (TEXT, KEYWORD, NUMBER, DATE, BOOLEAN):
                        out.append((path, boost))
            else:
                out.append((name, boost))
        return out

    # ---- leaf queries -----------------------------------------------------------------------------------
    def term_value(self, field: str, value: Any, boost: float = 1.0) -> Any:
        """A `term` query (value not analyzed)."""
        if field == "_id":
            return self._ids_query([str(value)] if str(value) in self.docs else [], boost)
        info = self.info(field)
        if info is None:
            return self.t.Query.empty_query()
        if info.family in (TEXT, KEYWORD):
            text = ("true" if value else "false") if isinstance(value, bool) else str(value)
            if info.family == KEYWORD and field in self.built.search_analyzers:
                # ES: term queries on a keyword field go through its normalizer
                text = next(iter(self.built.search_analyzers[field].analyze(text)), text)
            return self._boost(self._term_leaf(self.built.tnames[field], text), boost)
        return self._where(field, self._equals(info.family, value), boost)

    def _index_terms(self, field: str, value: Any) -> list[str]:
        analyzer = self.built.index_analyzers.get(field)
        return [str(value)] if analyzer is None else list(analyzer.analyze(str(value)))

    def _equals(self, family: str, value: Any) -> Any:
        if family == NUMBER:
            wanted = _to_number(value)
            return lambda v: _to_number(v) == wanted
        if family == DATE:
            wanted = _to_millis(value)
            return lambda v: _to_millis(v) == wanted
        if family == BOOLEAN:
            wanted = _to_bool(value)
            return lambda v: _to_bool(v) == wanted
        return lambda v: str(v) == str(value)

    def info(self, field: str) -> Any:
        """The field's FieldInfo; a field whose analysis the sandbox cannot reproduce fails here, when queried."""
        if field in self.built.field_errors:
            raise self.built.field_errors[field]
        return self.built.fields.get(field)

    def text_terms(self, field: str, text: Any, analyzer: str | None = None) -> list[str] | None:
        """What a full-text query's text becomes for this field (None: field unknown/not full-text)."""
        info = self.info(field)
        if info is None or info.family not in (TEXT, KEYWORD):
            return None
        if analyzer is not None:
            return list(analysis.analyzer_for(analyzer, self.settings)[1].analyze(str(text)))
        search_analyzer = self.built.search_analyzers.get(field)
        return [str(text)] if search_analyzer is None else list(search_analyzer.analyze(str(text)))

    def match_field(self, field: str, text: Any, operator: str = "or", msm: Any = None, boost: float = 1.0,
                    analyzer: str | None = None) -> Any:
        info = self.info(field)
        if info is not None and info.family not in (TEXT, KEYWORD):
            return self._where(field, self._equals(info.family, text), boost)  # ES: a term query on that field
        tokens = self.text_terms(field, text, analyzer if info is not None and info.family == TEXT else None)
        if not tokens:
            return self.t.Query.empty_query()  # unmapped field or no tokens (zero_terms_query: none)
        tname = self.built.tnames[field]
        leaves = [self._term_leaf(tname, tok) for tok in tokens]
        if len(leaves) == 1:
            return self._boost(leaves[0], boost)
        if str(operator).lower() == "and":
            query = self._bool([(self.t.Occur.Must, q) for q in leaves])
        else:
            query = self._bool([(self.t.Occur.Should, q) for q in leaves],
                               minimum_should_match(msm, len(leaves)) if msm is not None else None)
        return self._boost(query, boost)

    def phrase_field(self, field: str, text: Any, slop: int = 0, boost: float = 1.0) -> Any:
        info = self.info(field)
        tokens = self.text_terms(field, text)
        if not tokens:
            return self.t.Query.empty_query()
        if info.family == KEYWORD or len(tokens) == 1:
            return self.match_field(field, text, boost=boost)
        query = self.t.Query.phrase_query(self.built.schema, self.built.tnames[field], tokens, int(slop))
        return self._boost(self.t.Query.boost_query(query, _LUCENE_SCALE), boost)

    # ---- compound and DSL -------------------------------------------------------------------------------
    def compile(self, query: Any) -> Any:
        if not isinstance(query, dict) or len(query) != 1:
            raise parsing_error("[_na] query malformed, must start with start_object" if not isinstance(query, dict)
                                else "[_na] query malformed, no start_object after query name")
        kind, spec = next(iter(query.items()))
        handler = getattr(self, f"q_{kind}", None)
        if handler is None:
            if kind in UNSUPPORTED_QUERIES:
                raise EsError(f"the sandbox does not support the [{kind}] query", status=400,
                              type="sandbox_unsupported_exception")
            raise parsing_error(f"unknown query [{kind}]")
        return handler(spec)

    def q_match_all(self, spec: dict) -> Any:
        return self.t.Query.const_score_query(self.t.Query.all_query(), float((spec or {}).get("boost", 1.0)))

    def q_match_none(self, spec: dict) -> Any:
        return self.t.Query.empty_query()

    def q_match(self, spec: dict) -> Any:
        field, params = _single_field("match", spec)
        if not isinstance(params, dict):
            params = {"query": params}
        if "query" not in params:
            raise parsing_error("[match] requires query value")
        unknown = set(params) - _MATCH_PARAMS
        if unknown:
            raise parsing_error(f"[match] query does not support [{sorted(unknown)[0]}]")
        _refuse_unsupported("match", params)
        if params.get("zero_terms_query", "none") == "all" and not self.text_terms(field, params["query"]) \
                and field in self.built.fields and self.built.fields[field].family == TEXT:
            return self.q_match_all({"boost": params.get("boost", 1.0)})
        return self.match_field(field, params["query"], params.get("operator", "or"),
                                params.get("minimum_should_match"), float(params.get("boost", 1.0)),
                                params.get("analyzer"))

    def q_match_phrase(self, spec: dict) -> Any:
        field, params = _single_field("match_phrase", spec)
        if not isinstance(params, dict):
            params = {"query": params}
        return self.phrase_field(field, params.get("query", ""), params.get("slop", 0),
                                 float(params.get("boost", 1.0)))

    def q_multi_match(self, spec: dict) -> Any:
        if "query" not in spec:
            raise parsing_error("[multi_match] requires query value")
        _refuse_unsupported("multi_match", spec)
        kind = spec.get("type", "best_fields")
        fields = spec.get("fields") or ["*"]
        fields = [fields] if isinstance(fields, str) else fields
        per_field = []
        for field, boost in self.fields_matching(fields):
            if kind in ("phrase", "phrase_prefix"):
                per_field.append(self.phrase_field(field, spec["query"], spec.get("slop", 0), boost))
            elif kind in ("best_fields", "most_fields"):
                per_field.append(self.match_field(field, spec["query"], spec.get("operator", "or"),
                                                  spec.get("minimum_should_match"), boost))
            else:
                raise EsError(f"the sandbox does not support multi_match type [{kind}]", status=400,
                              type="sandbox_unsupported_exception")
        if not per_field:
            return self.t.Query.empty_query()
        # ES MultiMatchQueryParser: best_fields = dis_max(tie_breaker, default 0); most_fields = sum (tie 1.0)
        tie = 1.0 if kind == "most_fields" else float(spec.get("tie_breaker", 0.0))
        query = per_field[0] if len(per_field) == 1 else self.t.Query.disjunction_max_query(per_field, tie)
        return self._boost(query, float(spec.get("boost", 1.0)))

    def q_query_string(self, spec: dict) -> Any:
        from sandbox.search.query_string import compile_query_string

        return compile_query_string(self, spec)

    def q_term(self, spec: dict) -> Any:
        field, params = _single_field("term", spec)
        if isinstance(params, dict):
            if "value" not in params:
                raise parsing_error("[term] query does not support [" + ",".join(params) + "]")
            return self.term_value(field, params["value"], float(params.get("boost", 1.0)))
        return self.term_value(field, params)

    def q_terms(self, spec: dict) -> Any:
        boost = float(spec.get("boost", 1.0))
        fields = {k: v for k, v in spec.items() if k != "boost"}
        if len(fields) != 1:
            raise parsing_error("[terms] query does not support multiple fields")
        field, values = next(iter(fields.items()))
        if not isinstance(values, list):
            raise parsing_error(f"[terms] query does not support [{field}]")
        info = self.info(field)
        if field == "_id":
            return self._ids_query([str(v) for v in values if str(v) in self.docs], boost)
        if info is None:
            return self.t.Query.empty_query()
        wanted = {str(v).lower() if isinstance(v, bool) else str(v) for v in values}
        if info.family in (TEXT, KEYWORD):
            # ES: terms is a constant-score query (TermInSetQuery)
            def matches(value: Any) -> bool:
                if info.family == KEYWORD and not info.normalizer:
                    return (str(value).lower() if isinstance(value, bool) else str(value)) in wanted
                return any(t in wanted for t in self._index_terms(field, value))

            return self._where(field, matches, boost)
        preds = [self._equals(info.family, v) for v in values]
        return self._where(field, lambda v: any(p(v) for p in preds), boost)

    def q_ids(self, spec: dict) -> Any:
        return self._ids_query([str(v) for v in spec.get("values", []) if str(v) in self.docs],
                               float(spec.get("boost", 1.0)))

    def q_exists(self, spec: dict) -> Any:
        field = spec.get("field")
        if not field:
            raise parsing_error("[exists] must be provided with a [field]")
        fields = [f for f, _ in self.fields_matching([field])] if "*" in field else [field]
        ids = [doc_id for doc_id, doc in self.docs.items()
               if any(values_at(doc.source, self.built.fields[f].source_path if f in self.built.fields else f)
                      for f in fields)]
        return self._ids_query(ids, float(spec.get("boost", 1.0)))

    def q_range(self, spec: dict) -> Any:
        field, params = _single_field("range", spec)
        info = self.built.fields.get(field)
        if info is None:
            return self.t.Query.empty_query()
        convert = {NUMBER: _to_number, DATE: _to_millis}.get(info.family, str)
        bounds = []
        for key in ("gt", "gte", "lt", "lte", "from", "to"):
            if params.get(key) is not None:
                bounds.append((key, convert(params[key])))

        def predicate(value: Any) -> bool:
            v = convert(value)
            if v is None:
                return False
            for key, bound in bounds:
                if bound is None:
                    continue
                if (key == "gt" and not v > bound) or (key in ("gte", "from") and not v >= bound) or \
                        (key == "lt" and not v < bound) or (key in ("lte", "to") and not v <= bound):
                    return False
            return True

        return self._where(field, predicate, float(params.get("boost", 1.0)))

    def q_constant_score(self, spec: dict) -> Any:
        if "filter" not in spec:
            raise parsing_error("[constant_score] requires a 'filter' element")
        return self.t.Query.const_score_query(self.compile(spec["filter"]), float(spec.get("boost", 1.0)))

    def q_dis_max(self, spec: dict) -> Any:
        queries = [self.compile(q) for q in spec.get("queries", [])]
        if not queries:
            return self.t.Query.empty_query()
        query = self.t.Query.disjunction_max_query(queries, float(spec.get("tie_breaker", 0.0)))
        return self._boost(query, float(spec.get("boost", 1.0)))

    def q_bool(self, spec: dict) -> Any:
        def listed(key: str) -> list[Any]:
            value = spec.get(key, [])
            return [value] if isinstance(value, dict) else list(value or [])

        must, should, filters, must_not = listed("must"), listed("should"), listed("filter"), listed("must_not")
        occur = self.t.Occur
        if not (must or should or filters or must_not):
            return self.q_match_all({"boost": spec.get("boost", 1.0)})
        clauses = [(occur.Must, self.compile(q)) for q in must]
        # filter clauses must match but do not score
        clauses += [(occur.Must, self.t.Query.const_score_query(self.compile(q), 0.0)) for q in filters]
        clauses += [(occur.MustNot, self.compile(q)) for q in must_not]
        clauses += [(occur.Should, self.compile(q)) for q in should]
        msm_spec = spec.get("minimum_should_match")
        if msm_spec is not None:
            msm = minimum_should_match(msm_spec, len(should))
        else:
            msm = 1 if should and not (must or filters) else 0
        if not (must or filters or should):
            # only must_not: ES matches everything else (score 0)
            clauses.append((occur.Must, self.t.Query.const_score_query(self.t.Query.all_query(), 0.0)))
        query = self._bool(clauses, msm if should else None)
        return self._boost(query, float(spec.get("boost", 1.0)))
