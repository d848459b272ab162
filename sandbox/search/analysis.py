"""Analyzers for search: ES built-in analyzers and simple custom ones, built from tantivy's tokenizers and filters.

Supported (anything else raises a 400 sandbox_unsupported_exception when searched, never a silent substitute):
  built-in analyzers  standard, simple, whitespace, keyword, stop, english
  custom analyzers    tokenizer standard | whitespace | letter | lowercase | keyword, and filters lowercase,
                      asciifolding, stop (_english_, _none_ or a list), stemmer / snowball / porter_stem (english),
                      plus `index.analysis.filter.*` definitions of those types.
Approximations (documented): the standard tokenizer is a regex over UAX#29 word rules (see _TOKEN); English
stemming is Snowball English (Porter2) where ES's `english` analyzer and `porter_stem` use Porter (Porter1):
most words stem alike, a few differ (e.g. "generously").
"""

from __future__ import annotations

import threading
from typing import Any

from sandbox.errors import EsError

_TOKEN = r"\w+(?:[.'’:]\w+)*"  # UAX#29-like words: "don't", "u.s.a", "3.14" stay one token; "flesh-eating" splits
_LETTERS = r"[^\W\d_]+"  # LetterTokenizer: maximal runs of letters
# Lucene EnglishAnalyzer.ENGLISH_STOP_WORDS_SET (ES `_english_`)
ENGLISH_STOP = ["a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no",
                "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this",
                "to", "was", "will", "with"]
_BUILTIN = {
    "standard": ("standard", ["lowercase"]),
    "default": ("standard", ["lowercase"]),
    "simple": ("lowercase", []),
    "whitespace": ("whitespace", []),
    "keyword": ("keyword", []),
    "stop": ("lowercase", [{"type": "stop", "stopwords": "_english_"}]),
    "english": ("standard", ["lowercase", {"type": "stop", "stopwords": "_english_"},
                             {"type": "stemmer", "language": "english"}]),
}
_lock = threading.Lock()
_cache: dict[str, Any] = {}


def unsupported(what: str) -> EsError:
    return EsError(f"the sandbox cannot search with {what}", status=400, type="sandbox_unsupported_exception")


def _settings_tree(settings: dict[str, Any], prefix: str) -> dict[str, dict[str, Any]]:
    """{name: {key: value}} from flat `index.analysis.<kind>.<name>.<key>` settings (or a nested form)."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in (settings or {}).items():
        if key.startswith(prefix):
            name, _, rest = key[len(prefix):].partition(".")
            out.setdefault(name, {})[rest] = value
    return out


def resolve(name: str | None, settings: dict[str, Any]) -> tuple[str, tuple]:
    """(cache key, spec) of an analyzer name as an index sees it: its own definitions first, then built-ins."""
    name = name or "default"
    custom = _settings_tree(settings, "index.analysis.analyzer.")
    filters = _settings_tree(settings, "index.analysis.filter.")
    if name in custom:
        definition = custom[name]
        kind = definition.get("type", "custom")
        if kind != "custom":
            if kind not in _BUILTIN or set(definition) - {"type"}:
                raise unsupported(f"analyzer [{name}] of type [{kind}] with options {sorted(definition)}")
            return resolve(kind, {})
        tokenizer = definition.get("tokenizer", "standard")
        chain = definition.get("filter", [])
        chain = [chain] if isinstance(chain, str) else list(chain or [])
        if definition.get("char_filter"):
            raise unsupported(f"char_filter in analyzer [{name}]")
        steps = [filters.get(f, f) for f in chain]
        return f"custom:{name}:{tokenizer}:{steps}", (tokenizer, steps)
    if name not in _BUILTIN:
        raise unsupported(f"analyzer [{name}]")
    return name, _BUILTIN[name]


def _stopwords(value: Any) -> list[str]:
    if value in (None, "_english_"):
        return ENGLISH_STOP
    if value == "_none_":
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    raise unsupported(f"stopwords [{value}]")


def build(key: str, spec: tuple) -> Any:
    """A tantivy TextAnalyzer for (tokenizer, filters); cached by key."""
    with _lock:
        if key in _cache:
            return _cache[key]
    import tantivy

    tokenizer, steps = spec
    tokenizers = {"standard": lambda: tantivy.Tokenizer.regex(_TOKEN), "letter": lambda: tantivy.Tokenizer.regex(
        _LETTERS), "lowercase": lambda: tantivy.Tokenizer.regex(_LETTERS), "whitespace": tantivy.Tokenizer.whitespace,
        "keyword": tantivy.Tokenizer.raw}
    if tokenizer not in tokenizers:
        raise unsupported(f"tokenizer [{tokenizer}]")
    builder = tantivy.TextAnalyzerBuilder(tokenizers[tokenizer]())
    if tokenizer == "lowercase":
        builder = builder.filter(tantivy.Filter.lowercase())
    for step in steps:
        definition = step if isinstance(step, dict) else {"type": step}
        kind = definition.get("type")
        if kind == "lowercase":
            builder = builder.filter(tantivy.Filter.lowercase())
        elif kind == "asciifolding":
            builder = builder.filter(tantivy.Filter.ascii_fold())
        elif kind == "stop":
            builder = builder.filter(tantivy.Filter.custom_stopword(_stopwords(definition.get("stopwords"))))
        elif kind in ("stemmer", "snowball", "porter_stem"):
            language = str(definition.get("language", definition.get("name", "english"))).lower()
            if language not in ("english", "porter"):
                raise unsupported(f"{kind} filter for language [{language}]")
            builder = builder.filter(tantivy.Filter.stemmer("english"))
        else:
            raise unsupported(f"token filter [{kind}]")
    analyzer = builder.build()
    with _lock:
        _cache[key] = analyzer
    return analyzer


def normalizer_for(name: str, settings: dict[str, Any]) -> tuple[str, Any]:
    """A keyword normalizer (built-in `lowercase`, or a custom one of lowercase/asciifolding filters)."""
    import hashlib

    if name == "lowercase":
        steps: list[Any] = ["lowercase"]
    else:
        definition = _settings_tree(settings, "index.analysis.normalizer.").get(name)
        if definition is None or definition.get("char_filter"):
            raise unsupported(f"normalizer [{name}]")
        chain = definition.get("filter", [])
        steps = [chain] if isinstance(chain, str) else list(chain or [])
        if any(step not in ("lowercase", "asciifolding") for step in steps):
            raise unsupported(f"normalizer [{name}] with filters {steps}")
    key = f"normalizer:{name}:{steps}"
    return "es_" + hashlib.sha1(key.encode()).hexdigest()[:16], build(key, ("keyword", steps))


def analyzer_for(name: str | None, settings: dict[str, Any]) -> tuple[str, Any]:
    """(tantivy tokenizer name, TextAnalyzer) for an analyzer name in an index's settings."""
    import hashlib

    key, spec = resolve(name, settings)
    return "es_" + hashlib.sha1(key.encode()).hexdigest()[:16], build(key, spec)
