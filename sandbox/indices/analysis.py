"""Validation of `index.analysis.*` settings: custom analyzers must reference known components.

ES builds the analysis registry when an index is created (AnalysisRegistry.build); a custom analyzer that names an
unknown tokenizer or filter fails index creation with a 400 illegal_argument_exception. The sandbox has no hunspell
dictionaries, so a hunspell filter fails like ES 9.x does for a missing dictionary (400; capability
`hunspell_dict_400`, ES PR "Return 400 for missing hunspell dictionary").
"""

from __future__ import annotations

from typing import Any

from sandbox.errors import IllegalArgument

_LANGUAGES = [
    "arabic", "armenian", "basque", "bengali", "brazilian", "bulgarian", "catalan", "cjk", "czech", "danish",
    "dutch", "english", "estonian", "finnish", "french", "galician", "german", "greek", "hindi", "hungarian",
    "indonesian", "irish", "italian", "latvian", "lithuanian", "norwegian", "persian", "portuguese", "romanian",
    "russian", "serbian", "sorani", "spanish", "swedish", "turkish", "thai"
]
ANALYZERS = {"standard", "simple", "whitespace", "stop", "keyword", "pattern", "fingerprint", "snowball", "custom",
             *_LANGUAGES}
TOKENIZERS = {"standard", "letter", "lowercase", "whitespace", "uax_url_email", "classic", "thai", "ngram",
              "edge_ngram", "keyword", "pattern", "simple_pattern", "simple_pattern_split", "char_group",
              "path_hierarchy"}
FILTERS = {
    "lowercase", "uppercase", "stop", "stemmer", "porter_stem", "kstem", "snowball", "asciifolding", "synonym",
    "synonym_graph", "word_delimiter", "word_delimiter_graph", "shingle", "ngram", "edge_ngram", "length",
    "trim", "truncate", "unique", "reverse", "elision", "keyword_marker", "keyword_repeat", "pattern_replace",
    "pattern_capture", "decimal_digit", "apostrophe", "cjk_bigram", "cjk_width", "classic", "common_grams",
    "condition", "delimited_payload", "dictionary_decompounder", "hyphenation_decompounder", "fingerprint",
    "flatten_graph", "hunspell", "keep", "keep_types", "limit", "min_hash", "multiplexer",
    "predicate_token_filter", "remove_duplicates", "stemmer_override", "german_normalization",
    "arabic_normalization", "persian_normalization", "hindi_normalization", "indic_normalization",
    "scandinavian_normalization", "scandinavian_folding", "serbian_normalization", "sorani_normalization",
    "bengali_normalization", "arabic_stem", "brazilian_stem", "czech_stem", "dutch_stem", "french_stem",
    "german_stem", "russian_stem"
}
CHAR_FILTERS = {"html_strip", "mapping", "pattern_replace"}


def _groups(flat: dict[str, Any], section: str) -> dict[str, dict[str, Any]]:
    prefix = f"index.analysis.{section}."
    groups: dict[str, dict[str, Any]] = {}
    for key, value in flat.items():
        if key.startswith(prefix) and value is not None:
            name, _, prop = key[len(prefix):].partition(".")
            groups.setdefault(name, {})[prop] = value
    return groups


def _as_list(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value] if value else []


def custom_analyzers(flat: dict[str, Any]) -> set[str]:
    return set(_groups(flat, "analyzer")) | set(_groups(flat, "normalizer"))


def validate_analysis(flat: dict[str, Any]) -> None:
    tokenizers = _groups(flat, "tokenizer")
    filters = _groups(flat, "filter")
    char_filters = _groups(flat, "char_filter")
    for kind, defined, known in (("tokenizer", tokenizers, TOKENIZERS), ("filter", filters, FILTERS),
                                 ("char_filter", char_filters, CHAR_FILTERS)):
        for name, props in defined.items():
            component_type = props.get("type")
            if not component_type:
                raise IllegalArgument(f"{kind} [{name}] must specify either an analyzer type, or a tokenizer")
            if component_type not in known:
                raise IllegalArgument(f"Unknown {kind} type [{component_type}] for [{name}]")
            if component_type == "hunspell":
                locale = props.get("locale") or props.get("language") or props.get("lang")
                raise IllegalArgument(f"failed to find hunspell dictionary for locale: {locale}")
    for name, props in _groups(flat, "analyzer").items():
        analyzer_type = props.get("type")
        if analyzer_type is None and "tokenizer" not in props:
            raise IllegalArgument(f"analyzer [{name}] must specify either an analyzer type, or a tokenizer")
        analyzer_type = analyzer_type or "custom"
        if analyzer_type not in ANALYZERS:
            raise IllegalArgument(f"Unknown analyzer type [{analyzer_type}] for [{name}]")
        if analyzer_type != "custom":
            continue
        tokenizer = props.get("tokenizer")
        if not tokenizer:
            raise IllegalArgument(f"custom analyzer [{name}] must be configured with a tokenizer")
        if tokenizer not in TOKENIZERS and tokenizer not in tokenizers:
            raise IllegalArgument(f"Custom Analyzer [{name}] failed to find tokenizer under name [{tokenizer}]")
        for filter_name in _as_list(props.get("filter")):
            if filter_name not in FILTERS and filter_name not in filters:
                raise IllegalArgument(f"Custom Analyzer [{name}] failed to find filter under name [{filter_name}]")
        for char_filter in _as_list(props.get("char_filter")):
            if char_filter not in CHAR_FILTERS and char_filter not in char_filters:
                raise IllegalArgument(f"Custom Analyzer [{name}] failed to find char_filter under name "
                                      f"[{char_filter}]")
