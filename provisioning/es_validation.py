"""Offline checks of what Elasticsearch would reject, grounded in its specification (provisioning/es_spec): index
settings, analysis and mappings; inference services and their settings; check search bodies (queries, retrievers,
their parameters, fields of the target index). Pure: no I/O beyond the lazily loaded es_spec.json.

Every problem is at the line of the offending key (Resource.line_of). `unresolved_references` lists the references
to objects the manifests do not declare, for the planner to look up in the cluster.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from provisioning.errors import Problem
from provisioning.es_spec import NEEDS_DEFINITION, SETTING_RANGES, spec
from provisioning.model import Resource, SourceLocation

# TimeValue.parseTimeValue (org.elasticsearch.core.TimeValue): -1, 0, or a number with a unit
TIME_VALUE = re.compile(r"^(-1|0|[0-9]+(\.[0-9]+)?(nanos|micros|ms|s|m|h|d))$")
# what `index.number_of_*`-style settings the kind's JSON Schema already bounds below (no duplicate messages)
SCHEMA_LOWER_BOUNDS = {"number_of_shards", "number_of_replicas", "number_of_routing_shards", "max_result_window",
                       "max_inner_result_window", "max_rescore_window", "max_ngram_diff", "max_shingle_diff",
                       "priority"}
# Which trained-model task type an in-cluster endpoint task type needs (ES: TransportPutInferenceModelAction checks
# the deployed model's inference config: rerank -> TextSimilarityConfig, text_embedding -> TextEmbeddingConfig,
# sparse_embedding -> TextExpansionConfig).
MODEL_TASK_FOR_ENDPOINT = {"rerank": "text_similarity", "text_embedding": "text_embedding",
                           "sparse_embedding": "text_expansion"}
IN_CLUSTER_SERVICES = ("elasticsearch", "elser")
DEFAULT_RANK_WINDOW_SIZE = 10  # RankBuilder.DEFAULT_RANK_WINDOW_SIZE
META_FIELDS = {"_id", "_index", "_score", "_source", "_routing", "_ignored", "_doc", "_seq_no", "_version",
               "_tier", "_field_names", "_inference_fields"}

Reference = tuple[Resource, str, str, str, SourceLocation]


# ---- helpers -------------------------------------------------------------------------------------------------
class _Out:
    def __init__(self, resource: Resource):
        self.resource, self.problems = resource, []

    def add(self, path: str, message: str, hint: str) -> None:
        where = self.resource.line_of(path)
        self.problems.append(Problem(where.file, where.line, f"{self.resource.key}: {message}", hint))


def _close(word: Any, options: Any, cutoff: float = 0.6) -> str | None:
    if not isinstance(word, str):
        return None
    found = difflib.get_close_matches(word, sorted(str(o) for o in options), n=1, cutoff=cutoff)
    return found[0] if found else None


def _hint(word: Any, options: Any, what: str, limit: int = 15) -> str:
    close = _close(word, options)
    if close:
        return f"did you mean {close!r}?"
    shown = sorted(options)
    listing = ", ".join(shown[:limit]) + (f", ... ({len(shown) - limit} more)" if len(shown) > limit else "")
    return f"{what}: {listing}"


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
        return int(value)
    return None


# ---- index: settings ---------------------------------------------------------------------------------------
def _flat_settings(settings: dict[str, Any], prefix: list[str], path: str,
                   out: list[tuple[list[str], Any, str]]) -> None:
    for key, value in settings.items():
        parts = str(key).split(".")
        if not prefix and parts[0] == "index":  # `index.x` and {index: {x}} are the same setting
            parts = parts[1:]
        child = f"{path}.{key}"
        if not parts:
            if isinstance(value, dict):
                _flat_settings(value, prefix, child, out)
            continue
        if isinstance(value, dict) and parts[0] not in ("analysis", "similarity"):
            _flat_settings(value, prefix + parts, child, out)
        else:
            out.append((prefix + parts, value, child))


def _settings_problems(out: _Out, settings: dict[str, Any]) -> None:
    tree = spec()["index_settings"]
    flat: list[tuple[list[str], Any, str]] = []
    _flat_settings(settings, [], "spec.settings", flat)
    for parts, value, path in flat:
        if parts[0] in ("analysis", "similarity"):
            continue
        node_children, node, i = tree, None, 0
        while i < len(parts):
            # a key may itself contain dots in the specification ('indexing.slowlog')
            joined = next((".".join(parts[i:j]) for j in range(len(parts), i, -1)
                           if ".".join(parts[i:j]) in node_children), None)
            if joined is None:
                if i > 0 and (node or {}).get("open", True):
                    break
                known = list(node_children)
                close = _close(parts[i], known, cutoff=0.8)
                if close:  # the specification does not list every setting: only a near miss is certainly wrong
                    name = ".".join(["index", *parts[:i], parts[i]])
                    out.add(path, f"unknown setting [{name}]", f"did you mean {close!r}?")
                node = None
                break
            node = node_children[joined]
            i += joined.count(".") + 1
            node_children = node.get("children") or {}
            if not node_children:
                break
        if node is None or i < len(parts):
            continue
        _setting_value(out, ".".join(parts), node, value, path)


def _setting_value(out: _Out, name: str, node: dict[str, Any], value: Any, path: str) -> None:
    full = f"index.{name}"
    if name in SETTING_RANGES:
        number = _as_int(value)
        low, high = SETTING_RANGES[name]
        if number is not None and high is not None and number > high:
            out.add(path, f"{full} is {number}, above the maximum {high}",
                    f"Elasticsearch refuses {full} > {high}; use at most {high}")
        elif number is not None and number < low and name not in SCHEMA_LOWER_BOUNDS:
            out.add(path, f"{full} is {number}, below the minimum {low}", f"use at least {low}")
        return
    # strings of refresh_interval are checked by the kind's JSON Schema; a bare number has no unit either way
    bad_number = isinstance(value, int) and not isinstance(value, bool) and value not in (-1, 0)
    bad_text = isinstance(value, str) and not TIME_VALUE.match(value) and name != "refresh_interval"
    if node.get("type") == "Duration" and (bad_number or bad_text):
        out.add(path, f"{full}: {value!r} is not a time value",
                "write a number with a unit (nanos, micros, ms, s, m, h, d), e.g. 30s, or -1")
    if node.get("enum") and isinstance(value, str) and value not in node["enum"]:
        out.add(path, f"{full}: unknown value {value!r}", _hint(value, node["enum"], "use one of"))


# ---- index: analysis ---------------------------------------------------------------------------------------
def _analysis(settings: dict[str, Any]) -> tuple[dict[str, Any], str]:
    for key, path in (("analysis", "spec.settings.analysis"), ("index.analysis", "spec.settings.index.analysis")):
        if isinstance(settings.get(key), dict):
            return settings[key], path
    index = settings.get("index")
    if isinstance(index, dict) and isinstance(index.get("analysis"), dict):
        return index["analysis"], "spec.settings.index.analysis"
    return {}, "spec.settings.analysis"


def builtin(section: str) -> set[str]:
    """Names usable without a definition: the specification's component types, minus those that need settings."""
    return set(spec()["analysis"][section]) - NEEDS_DEFINITION[section]


def _analysis_problems(out: _Out, analysis: dict[str, Any], base: str) -> None:
    types = spec()["analysis"]
    defined = {s: set((analysis.get(s) or {}) if isinstance(analysis.get(s), dict) else ())
               for s in ("analyzer", "tokenizer", "filter", "char_filter", "normalizer")}
    for section in defined:
        for name, body in (analysis.get(section) or {}).items() if isinstance(analysis.get(section), dict) else ():
            path = f"{base}.{section}.{name}"
            if not isinstance(body, dict):
                continue
            kind = body.get("type")
            if kind is None and section in ("analyzer", "normalizer"):
                kind = "custom" if (section == "normalizer" or "tokenizer" in body) else None
                if kind is None:
                    out.add(path, f"analyzer [{name}] must specify either an analyzer type, or a tokenizer",
                            "add `type:` (e.g. standard) or `tokenizer:` (a custom analyzer)")
                    continue
            if kind is None:
                out.add(path, f"{section} [{name}] has no type", f"add `type:` ({section} types: "
                        f"{', '.join(sorted(types[section])[:10])}, ...)")
                continue
            if kind not in types[section]:
                out.add(f"{path}.type", f"unknown {section} type [{kind}] for [{name}]",
                        _hint(kind, types[section], f"{section} types"))
                continue
            params = set(types[section][kind])
            for key in body:
                if key not in params and key != "version":
                    close = _close(key, params, cutoff=0.75)
                    if close:
                        out.add(f"{path}.{key}", f"unknown parameter [{key}] of {section} type [{kind}]",
                                f"did you mean {close!r}?")
            refs = [("tokenizer", body.get("tokenizer"), f"{path}.tokenizer")] if section == "analyzer" else []
            for ref_section in ("filter", "char_filter"):
                value = body.get(ref_section)
                items = value if isinstance(value, list) else [value] if isinstance(value, str) else []
                refs += [(ref_section, item, f"{path}.{ref_section}.{i}" if isinstance(value, list)
                          else f"{path}.{ref_section}") for i, item in enumerate(items)]
            if section in ("analyzer", "normalizer") and kind != "custom":
                continue
            for ref_section, ref, ref_path in refs:
                if isinstance(ref, str) and ref not in defined[ref_section] and ref not in builtin(ref_section):
                    out.add(ref_path, f"{section} [{name}] uses {ref_section} [{ref}], which is neither defined "
                            f"in settings.analysis.{ref_section} nor built in",
                            _hint(ref, defined[ref_section] | builtin(ref_section), f"known {ref_section}s")
                            + f"; or define it under settings.analysis.{ref_section}")


# ---- index: mappings ---------------------------------------------------------------------------------------
def declared_fields(mappings: dict[str, Any]) -> dict[str, str]:
    """Every declared field path (objects' children and multi-fields dotted, as in queries) -> its type."""
    out: dict[str, str] = {}

    def walk(properties: Any, prefix: str) -> None:
        for name, body in (properties or {}).items() if isinstance(properties, dict) else ():
            if not isinstance(body, dict):
                continue
            full = f"{prefix}{name}"
            out[full] = body.get("type", "object" if "properties" in body else "")
            walk(body.get("properties"), f"{full}.")
            walk(body.get("fields"), f"{full}.")

    walk((mappings or {}).get("properties"), "")
    return out


def _mapping_problems(out: _Out, mappings: dict[str, Any], analysis: dict[str, Any]) -> None:
    types = spec()["field_types"]
    analyzers = set(analysis.get("analyzer") or {}) | builtin("analyzer")
    normalizers = set(analysis.get("normalizer") or {}) | builtin("normalizer")
    fields = declared_fields(mappings)
    copy_to: list[tuple[str, str]] = []

    def walk(properties: Any, path: str, prefix: str) -> None:
        if not isinstance(properties, dict):
            return
        for name, body in properties.items():
            fpath, full = f"{path}.{name}", f"{prefix}{name}"
            if not isinstance(body, dict):
                continue
            kind = body.get("type")
            if kind is None and "properties" not in body:
                out.add(fpath, f"field [{full}] has no type (Elasticsearch: No type specified for field [{name}])",
                        "add `type:` (e.g. keyword, text, long), or `properties:` for an object")
                continue
            kind = kind if kind is not None else "object"
            if not isinstance(kind, str) or kind not in types:
                continue  # the kind's JSON Schema reports an unknown type
            params = set(types[kind])
            for key in body:
                if key in params:
                    continue
                owners = sorted(t for t, p in types.items() if key in p)
                close = _close(key, params, cutoff=0.75)
                hint = (f"did you mean {close!r}?" if close else
                        f"[{key}] is a parameter of {', '.join(owners[:6])}{', ...' if len(owners) > 6 else ''}, "
                        f"not of {kind}; remove it" if owners else f"parameters of {kind}: {', '.join(sorted(params))}")
                out.add(f"{fpath}.{key}", f"unknown parameter [{key}] on field [{full}] of type [{kind}]", hint)
            for key in ("analyzer", "search_analyzer", "search_quote_analyzer"):
                ref = body.get(key)
                if key in params and isinstance(ref, str) and ref not in analyzers:
                    out.add(f"{fpath}.{key}", f"analyzer [{ref}] of field [{full}] is neither defined in "
                            "settings.analysis.analyzer nor built in",
                            _hint(ref, analyzers, "known analyzers")
                            + "; or define it under settings.analysis.analyzer")
            ref = body.get("normalizer")
            if "normalizer" in params and isinstance(ref, str) and ref not in normalizers:
                out.add(f"{fpath}.normalizer", f"normalizer [{ref}] of field [{full}] is not defined",
                        _hint(ref, normalizers, "known normalizers")
                        + "; or define it under settings.analysis.normalizer")
            targets = body.get("copy_to")
            for i, target in enumerate(targets if isinstance(targets, list) else [targets] if targets else []):
                copy_to.append((f"{fpath}.copy_to" + (f".{i}" if isinstance(targets, list) else ""), str(target)))
            walk(body.get("properties"), f"{fpath}.properties", f"{full}.")
            walk(body.get("fields"), f"{fpath}.fields", f"{full}.")

    walk((mappings or {}).get("properties"), "spec.mappings.properties", "")
    if str((mappings or {}).get("dynamic")) == "strict":
        for path, target in copy_to:
            if target not in fields:
                out.add(path, f"copy_to target [{target}] is not a declared field, and the mapping is dynamic: "
                        "strict (every document would be rejected)",
                        _hint(target, fields, "declared fields") + f"; or declare {target}")


def index_problems(resource: Resource) -> list[Problem]:
    out = _Out(resource)
    settings = resource.spec.get("settings") or {}
    mappings = resource.spec.get("mappings") or {}
    if isinstance(settings, dict):
        _settings_problems(out, settings)
        analysis, base = _analysis(settings)
        _analysis_problems(out, analysis, base)
    else:
        analysis = {}
    if isinstance(mappings, dict):
        _mapping_problems(out, mappings, analysis)
    return out.problems


# ---- inference endpoints --------------------------------------------------------------------------------------
def endpoint_problems(resource: Resource, resources: dict[str, Resource]) -> list[Problem]:
    out = _Out(resource)
    body = resource.spec
    services = spec()["inference_services"]
    service, task = body.get("service"), body.get("task_type")
    if service not in services:
        out.add("spec.service", f"unknown inference service {service!r}", _hint(service, services, "services"))
        return out.problems
    info = services[service]
    if task not in info["task_types"]:
        out.add("spec.task_type", f"service {service} does not support task type {task!r}",
                f"{service} supports: {', '.join(info['task_types'])}")
    settings = body.get("service_settings") or {}
    secrets = set(body.get("secrets") or {})
    allowed = set(info["service_settings"])
    if not info["service_settings_open"]:
        for key in settings:
            if key not in allowed:
                out.add(f"spec.service_settings.{key}", f"unknown service_settings key {key!r} for service {service}",
                        _hint(key, allowed, f"{service} service_settings"))
        for key in sorted(secrets - allowed):
            out.add(f"spec.secrets.{key}", f"unknown secret {key!r} for service {service} (secrets are merged into "
                    "service_settings)", _hint(key, allowed, f"{service} service_settings"))
    skip = {"num_threads"} if service == "elasticsearch" else set()  # the kind reports it already
    if "adaptive_allocations" in settings:
        skip.add("num_allocations")
    for key in info["required_service_settings"]:
        if key not in settings and key not in secrets and key not in skip:
            where = "spec.secrets" if key in ("api_key", "access_key", "secret_key") else "spec.service_settings"
            hint = (f"add `{key}: {{env: VARIABLE}}` under spec.secrets" if where == "spec.secrets"
                    else f"add `{key}:` under service_settings")
            out.add(where if where in resource.lines else "spec.service_settings",
                    f"service {service} requires service_settings.{key}", hint)
    task_settings = body.get("task_settings") or {}
    if info["task_settings"] is None and task_settings:
        out.add("spec.task_settings", f"service {service} takes no task_settings", "remove task_settings")
    elif info["task_settings"] is not None and not info["task_settings_open"]:
        for key in task_settings:
            if key not in info["task_settings"]:
                out.add(f"spec.task_settings.{key}", f"unknown task_settings key {key!r} for service {service}",
                        _hint(key, info["task_settings"], f"{service} task_settings"))
    model = resources.get(f"trained_model/{settings.get('model_id')}") if service in IN_CLUSTER_SERVICES else None
    wanted = MODEL_TASK_FOR_ENDPOINT.get(task)
    if model is not None and wanted and model.spec.get("task_type") != wanted:
        out.add("spec.service_settings.model_id",
                f"a {task} endpoint needs a {wanted} model; {model.key} is declared with task type "
                f"{model.spec.get('task_type')!r} ({model.line_of('spec.task_type')})",
                f"use a {wanted} model, or set the endpoint's task_type to the one matching the model's")
    return out.problems


# ---- checks: search bodies ------------------------------------------------------------------------------------
class _Search:
    def __init__(self, out: _Out, fields: dict[str, str] | None, index: str, request: dict[str, Any]):
        self.out, self.fields, self.index, self.request = out, fields, index, request
        self.classes = spec()["search_classes"]
        self.compounds: list[tuple[str, Any]] = []  # enclosing compound retrievers: (name, rank_window_size)

    def field(self, name: Any, path: str) -> None:
        if self.fields is None or not isinstance(name, str):
            return
        bare = name.split("^")[0]
        if "*" in bare or bare in META_FIELDS or bare in self.fields:
            return
        self.out.add(path, f"field [{bare}] is not in the mapping declared for index {self.index}",
                     _hint(bare, self.fields, "declared fields"))

    def query(self, body: Any, path: str) -> None:
        if not isinstance(body, dict):
            return
        queries = spec()["queries"]
        if len(body) != 1:
            self.out.add(path, f"a query must have exactly one key, the query name (got {len(body)}: "
                         f"{', '.join(map(str, body)) or 'none'})", "split it, e.g. into a bool query's `must` list")
        for name, value in body.items():
            qpath = f"{path}.{name}"
            if name not in queries:
                self.out.add(qpath, f"unknown query [{name}]", _hint(name, queries, "queries"))
                continue
            entry = queries[name]
            if entry.get("field_keyed"):
                if not isinstance(value, dict):
                    continue
                for field, params in value.items():
                    self.field(field, f"{qpath}.{field}")
                    if isinstance(params, dict):
                        self.object(entry["class"], params, f"{qpath}.{field}", f"[{name}] query")
            else:
                self.object(entry["class"], value, qpath, f"[{name}] query")

    def retriever(self, body: Any, path: str) -> None:
        if not isinstance(body, dict):
            return
        retrievers = spec()["retrievers"]
        for name, value in body.items():
            rpath = f"{path}.{name}"
            if name not in retrievers:
                self.out.add(rpath, f"unknown retriever [{name}]", _hint(name, retrievers, "retrievers"))
                continue
            cls = retrievers[name]["class"]
            compound = isinstance(value, dict) and "rank_window_size" in self.classes[cls]["fields"]
            if compound:
                self.window_rules(name, value, rpath)
                self.compounds.append((name, value.get("rank_window_size", DEFAULT_RANK_WINDOW_SIZE)))
            try:
                self.object(cls, value, rpath, f"[{name}] retriever")
            finally:
                if compound:
                    self.compounds.pop()

    def window_rules(self, name: str, value: dict[str, Any], rpath: str) -> None:
        """CompoundRetrieverBuilder.validate, for every compound retriever of the request (it recurses into its
        inner retrievers): rank_window_size (default 10) >= the request's size, not negative, and not larger than
        that of a compound sub-retriever."""
        given = _as_int(value.get("rank_window_size"))
        window = DEFAULT_RANK_WINDOW_SIZE if given is None else given
        at = f"{rpath}.rank_window_size" if given is not None else rpath
        size = _as_int(self.request.get("size"))
        if size is not None and size > window:
            self.out.add(at if given is not None else "spec.request.size",
                         f"[{name}] requires [rank_window_size: {window}] be greater than or equal to [size: {size}]",
                         f"raise rank_window_size to at least {size}, or lower size")
        if window < 0:
            self.out.add(at, f"[rank_window_size] parameter cannot be negative, found [{window}]",
                         "use a positive rank_window_size")
        if self.compounds:
            parent, parent_window = self.compounds[-1]
            parent_window = _as_int(parent_window)
            if parent_window is not None and parent_window > window:
                self.out.add(at, f"[{parent}] requires [rank_window_size: {parent_window}] to be smaller than or "
                             f"equal to its sub retriever's {name} [rank_window_size: {window}]",
                             f"raise this rank_window_size to at least {parent_window}, or lower the outer one")

    def object(self, cls: str, value: Any, path: str, what: str) -> None:
        info = self.classes.get(cls)
        if info is None or not isinstance(value, dict):
            return
        for key, item in value.items():
            kpath = f"{path}.{key}"
            type_text = info["fields"].get(key)
            if type_text is None:
                if info["open"]:
                    self.field(key, kpath)  # e.g. terms {<field>: [...]}, geo_distance {<field>: ...}
                else:
                    self.out.add(kpath, f"{what} does not support [{key}]",
                                 _hint(key, info["fields"], "its parameters"))
                continue
            self.value(type_text, item, kpath, key)
        for key in info["required"]:
            if key not in value:
                self.out.add(path, f"{what} requires [{key}]", f"add `{key}:`")

    def value(self, type_text: str, item: Any, path: str, key: str) -> None:
        items = item if isinstance(item, list) else [item]
        suffix = (lambda i: f"{path}.{i}") if isinstance(item, list) else (lambda i: path)
        for i, one in enumerate(items):
            names_field = (key in ("field", "default_field") and type_text in ("Field", "string")) \
                or (key == "fields" and "Field" in type_text)
            if names_field and isinstance(one, str):
                self.field(one, suffix(i))
            elif "QueryContainer" in type_text:
                self.query(one, suffix(i))
            elif "RetrieverContainer" in type_text or "RRFRetrieverEntry" in type_text:
                if isinstance(one, dict) and "retriever" in one and len(one) <= 2 and "RRFRetrieverEntry" in type_text:
                    self.object("RRFRetrieverComponent", one, suffix(i), "[rrf] retriever entry")
                else:
                    self.retriever(one, suffix(i))
            elif "InnerRetriever" in type_text:
                self.object("InnerRetriever", one, suffix(i), "[linear] retriever entry")
            elif isinstance(one, dict):
                for ref in re.findall(r"[A-Za-z_]\w*", type_text):
                    if ref in self.classes:
                        self.object(ref, one, suffix(i), f"[{key}]")
                        break


def check_problems(resource: Resource, resources: dict[str, Resource]) -> list[Problem]:
    out = _Out(resource)
    request = resource.spec.get("request")
    if not isinstance(request, dict):
        return []
    keys = set(spec()["search_request"])
    for key in request:
        if key not in keys:
            out.add(f"spec.request.{key}", f"unknown key {key!r} in spec.request (not a search body parameter)",
                    _hint(key, keys, "search body keys"))
    index_name = resource.spec.get("index")
    target = _declared_index(index_name, resources)
    fields = declared_fields(target.spec.get("mappings") or {}) if target is not None else None
    search = _Search(out, fields, str(index_name), request)
    if "query" in request:
        search.query(request["query"], "spec.request.query")
    if "post_filter" in request:
        search.query(request["post_filter"], "spec.request.post_filter")
    if "retriever" in request:
        retriever = request["retriever"]
        if isinstance(retriever, dict) and len(retriever) != 1:
            out.add("spec.request.retriever", "a retriever must have exactly one key, the retriever name",
                    "e.g. `retriever: {standard: {query: ...}}`")
        search.retriever(retriever, "spec.request.retriever")
        if "query" in request:
            out.add("spec.request.query", "cannot specify [retriever] and [query]",
                    "put the query inside the retriever (standard: {query: ...})")
    return out.problems


def _declared_index(name: Any, resources: dict[str, Resource]) -> Resource | None:
    for resource in resources.values():
        if resource.kind == "index" and (resource.name == name or name in (resource.spec.get("aliases") or {})):
            return resource
    return None


def resource_problems(resource: Resource, resources: dict[str, Resource]) -> list[Problem]:
    """Every specification-grounded problem of one (schema-valid) resource."""
    if resource.kind == "index":
        return index_problems(resource)
    if resource.kind == "inference_endpoint":
        return endpoint_problems(resource, resources)
    if resource.kind == "check":
        return check_problems(resource, resources)
    return []


# ---- references to objects the manifests do not declare --------------------------------------------------------
def _references(resource: Resource) -> list[tuple[str, str, str]]:
    """(path, kind, name) of every object this resource names."""
    body = resource.spec
    refs: list[tuple[str, str, str]] = []
    if resource.kind in ("documents", "check") and isinstance(body.get("index"), str):
        refs.append(("spec.index", "index", body["index"]))
    if resource.kind == "inference_endpoint" and body.get("service") in IN_CLUSTER_SERVICES:
        model = (body.get("service_settings") or {}).get("model_id")
        if isinstance(model, str):
            refs.append(("spec.service_settings.model_id", "trained_model", model))
    if resource.kind == "index":
        def walk(properties: Any, path: str) -> None:
            for name, field in (properties or {}).items() if isinstance(properties, dict) else ():
                if not isinstance(field, dict):
                    continue
                fpath = f"{path}.{name}"
                if field.get("type") == "semantic_text":
                    for key in ("inference_id", "search_inference_id"):
                        if isinstance(field.get(key), str):
                            refs.append((f"{fpath}.{key}", "inference_endpoint", field[key]))
                walk(field.get("properties"), f"{fpath}.properties")
                walk(field.get("fields"), f"{fpath}.fields")
        walk((body.get("mappings") or {}).get("properties"), "spec.mappings.properties")
    if resource.kind == "check":
        def scan(value: Any, path: str) -> None:
            if isinstance(value, dict):
                for key, item in value.items():
                    if key == "inference_id" and isinstance(item, str):
                        refs.append((f"{path}.{key}", "inference_endpoint", item))
                    else:
                        scan(item, f"{path}.{key}")
            elif isinstance(value, list):
                for i, item in enumerate(value):
                    scan(item, f"{path}.{i}")
        scan(body.get("request"), "spec.request")
    return refs


def unresolved_references(resources: list[Resource]) -> list[Reference]:
    """References to objects no manifest declares: (resource, path, kind, name, location). Names starting with '.'
    (Elastic's built-in models and preconfigured endpoints) are left out. No I/O: the planner looks them up in
    its batched reads of the cluster and reports those that do not exist there either."""
    declared: dict[str, set[str]] = {}
    for resource in resources:
        declared.setdefault(resource.kind, set()).add(resource.name)
        if resource.kind == "index":
            declared["index"] |= set(resource.spec.get("aliases") or {})
    out: list[Reference] = []
    for resource in resources:
        for path, kind, name in _references(resource):
            if name.startswith(".") or name in declared.get(kind, set()):
                continue
            out.append((resource, path, kind, name, resource.line_of(path)))
    return out


def unresolved_problem(ref: Reference) -> Problem:
    """The Problem to report for a reference the cluster does not have either."""
    resource, path, kind, name, where = ref
    noun = {"index": "an index or alias", "trained_model": "a trained model",
            "inference_endpoint": "an inference endpoint"}
    return Problem(where.file, where.line, f"{resource.key}: {path.rpartition('.')[2]} {name!r} names "
                   f"{noun.get(kind, kind)} that is neither declared in the manifests nor present in the cluster",
                   f"declare {kind}/{name} in the manifests, create it in the cluster, or fix the name")


def missing_in_cluster(refs: list[Reference], live_names: dict[str, Any]) -> list[Problem]:
    """Problems for the unresolved references the cluster does not have either. `live_names` by kind: "index"
    (index and alias names), "trained_model" (model ids), "inference_endpoint" (inference ids), from the planner's
    batched reads. A kind absent from `live_names` was not read: its references are not judged."""
    return [unresolved_problem(ref) for ref in refs if ref[2] in live_names and ref[3] not in set(live_names[ref[2]])]
