"""`skip` and `requires` sections: what the runner supports and what the server advertises.

ES: README.asciidoc "Skipping tests" and the Java PrerequisiteSection. A section at the top of `setup` or
`teardown` applies to every test of the file; at the top of a test, to that test.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Any

from elasticsearch import ApiError, Elasticsearch

from conformance.yamlops import TestFailure, TestSkipped

# Test runner features this runner implements faithfully (README "Available test runner features").
SUPPORTED_RUNNER_FEATURES = frozenset({
    "allowed_warnings", "allowed_warnings_regex", "warnings", "warnings_regex", "headers", "contains",
    "close_to", "capabilities", "default_shards", "stash_in_key", "stash_in_path", "embedded_stash_key",
    "arbitrary_key", "transform_and_set", "catch_unauthorized", "gtelte", "is_after", "exists", "xpack",
})
# Not implemented, so tests needing them are skipped (as the README asks of a runner lacking a feature):
# node_selector (single node), skip_os, yaml (YAML bodies), no_xpack (the target is the default distribution),
# fips_140, stash_path_replace (doc snippet tests only).

_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")


def parse_version(text: str) -> tuple[int, int, int] | None:
    found = _VERSION.search(text or "")
    return tuple(int(x) for x in found.groups()) if found else None  # type: ignore[return-value]


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


class Server:
    """What the target reports about itself, fetched lazily once per run."""

    def __init__(self, client: Elasticsearch):
        self.client = client
        self._capabilities: dict[tuple, bool | None] = {}

    @cached_property
    def version(self) -> tuple[int, int, int]:
        number = self.client.info()["version"]["number"]
        parsed = parse_version(number)
        if parsed is None:
            raise TestFailure(f"cannot parse the server version [{number}]")
        return parsed

    @cached_property
    def features(self) -> set[str]:
        """Named cluster features, as the Java test framework reads them:
        GET _cluster/state?filter_path=nodes_features, a feature counting when every node has it."""
        try:
            state = self.client.perform_request("GET", "/_cluster/state", params={"filter_path": "nodes_features"},
                                                headers={"accept": "application/json"}).body
        except ApiError:
            return set()
        nodes = (state or {}).get("nodes_features") or []
        sets = [set(node.get("features") or []) for node in nodes if isinstance(node, dict)]
        return set.intersection(*sets) if sets else set()

    def has_feature(self, name: str) -> bool:
        synthetic = re.fullmatch(r"gte_v(\d+\.\d+\.\d+)", name)
        if synthetic:
            # ES: synthetic `gte_vX.Y.Z` features are present on every version >= X.Y.Z
            # (ES ESRestTestFeatureService.clusterHasFeature: treated as present when <= the server's version)
            return parse_version(synthetic.group(1)) <= self.version
        return name in self.features

    def supports(self, capability: dict) -> bool | None:
        """GET /_capabilities?method=&path=&parameters=&capabilities= -> `supported` (true/false/null)."""
        params = {"method": capability.get("method", "GET"), "path": capability["path"]}
        for key in ("parameters", "capabilities"):
            if capability.get(key):
                params[key] = ",".join(_as_list(capability[key]))
        cache_key = tuple(sorted(params.items()))
        if cache_key not in self._capabilities:
            try:
                body = self.client.perform_request("GET", "/_capabilities", params=params,
                                                   headers={"accept": "application/json"}).body
                self._capabilities[cache_key] = (body or {}).get("supported")
            except ApiError:
                self._capabilities[cache_key] = None
        return self._capabilities[cache_key]


def _version_in_ranges(ranges: str, version: tuple[int, int, int]) -> bool:
    if ranges.strip() == "all":
        return True
    for one in ranges.split(","):
        low, _, high = one.partition("-")
        low_v = parse_version(low) or (0, 0, 0)
        high_v = parse_version(high) or (999, 999, 999)
        if low_v <= version <= high_v:
            return True
    return False


def check_requires(server: Server, spec: dict) -> None:
    missing = [f for f in _as_list(spec.get("test_runner_features")) if f not in SUPPORTED_RUNNER_FEATURES]
    if missing:
        raise TestSkipped(f"runner does not support {missing}")
    absent = [f for f in _as_list(spec.get("cluster_features")) if not server.has_feature(f)]
    if absent:
        raise TestSkipped(f"cluster lacks features {absent}: {spec.get('reason', '')}".rstrip(": "),
                          gap=f"cluster features {absent} (GET /_cluster/state?filter_path=nodes_features)")
    for capability in _as_list(spec.get("capabilities")):
        if server.supports(capability) is not True:
            raise TestSkipped(f"capability not supported {capability}: {spec.get('reason', '')}".rstrip(": "),
                              gap=f"capability {capability} (GET /_capabilities)")


def check_skip(server: Server, spec: dict) -> None:
    reason = spec.get("reason", "")
    missing = [f for f in _as_list(spec.get("features")) if f not in SUPPORTED_RUNNER_FEATURES]
    if missing:
        raise TestSkipped(f"runner does not support {missing}")
    if spec.get("awaits_fix"):
        raise TestSkipped(f"awaits fix {spec['awaits_fix']}: {reason}")
    if "version" in spec and _version_in_ranges(str(spec["version"]), server.version):
        raise TestSkipped(f"version {spec['version']}: {reason}")
    present = [f for f in _as_list(spec.get("cluster_features")) if server.has_feature(f)]
    if present:
        raise TestSkipped(f"cluster has features {present}: {reason}")
    for issue in _as_list(spec.get("known_issues")):
        if server.has_feature(issue["cluster_feature"]) and not server.has_feature(issue["fixed_by"]):
            raise TestSkipped(f"known issue {issue}: {reason}")
    for capability in _as_list(spec.get("capabilities")):
        if server.supports(capability) is True:
            raise TestSkipped(f"capability supported {capability}: {reason}")
    if spec.get("os"):
        # skip_os is not supported, so a test guarded by `os` was already skipped by its `requires`
        raise TestSkipped(f"os-specific skip {spec['os']} not evaluated: {reason}")


def check_prerequisite(server: Server, step: dict) -> bool:
    """Evaluate a `skip` or `requires` step; True when the step was one."""
    if "requires" in step:
        check_requires(server, step["requires"] or {})
        return True
    if "skip" in step:
        check_skip(server, step["skip"] or {})
        return True
    return False
