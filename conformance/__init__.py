"""Elasticsearch YAML REST test runner (used by `invoke conformance` and tests/conformance)."""
