"""Named privileges and the action patterns they grant, as data, from Elasticsearch's source.

Cluster privileges: ClusterPrivilegeResolver (x-pack core, 9.x: MONITOR_PATTERN, MANAGE_ML_PATTERN,
MANAGE_INFERENCE_PATTERN, ... and VALUES). Index privileges: IndexPrivilege (x-pack core: READ_AUTOMATON,
CREATE_DOC_AUTOMATON, MANAGE_AUTOMATON, ... and VALUES). Patterns are ES Automatons patterns: `*` matches any run of
characters (including `/`), `?` one character.

The denial message lists the privileges that would grant an action "from least to most privileged"
(`findPrivilegesThatGrant`, sorted by `sortByAccessLevel`: how many other named privileges each one implies, then by
name). `order()` reproduces that sort; implication is computed on the patterns below, all of which are literals or
prefixes ending in `*`.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

# Action name constants used below (ES 9.x Transport*Action / *Action NAME or TYPE).
CLUSTER_STATE = "cluster:monitor/state"  # ClusterStateAction
HAS_PRIVILEGES = "cluster:admin/xpack/security/user/has_privileges"  # HasPrivilegesAction
GET_INDEX_TEMPLATES = "indices:admin/template/get"  # GetIndexTemplatesAction
GET_COMPONENT_TEMPLATE = "cluster:admin/component_template/get"  # GetComponentTemplateAction
GET_COMPOSABLE_TEMPLATE = "indices:admin/index_template/get"  # GetComposableIndexTemplateAction


@dataclass(frozen=True)
class Privilege:
    name: str
    patterns: tuple[str, ...]
    excluded: tuple[str, ...] = field(default=())  # ES ActionClusterPrivilege(name, allowed, excluded): `manage`

    def grants(self, action: str) -> bool:
        return any(match(p, action) for p in self.patterns) and not any(match(p, action) for p in self.excluded)

    def implies(self, other: Privilege) -> bool:
        if not other.patterns:
            return True  # `none`: everything implies it (an empty automaton is a subset of any)
        return all(any(_covers(p, q) for p in self.patterns) and not any(_overlaps(x, q) for x in self.excluded)
                   for q in other.patterns)


def _prefix(pattern: str) -> str:
    return pattern[:-1] if pattern.endswith("*") else pattern


def _covers(outer: str, inner: str) -> bool:
    """Every action `inner` matches is matched by `outer` (both literal or prefix*)."""
    if not outer.endswith("*"):
        return outer == inner
    return _prefix(inner).startswith(_prefix(outer))


def _overlaps(a: str, b: str) -> bool:
    pa, pb = _prefix(a), _prefix(b)
    if a.endswith("*") and b.endswith("*"):
        return pa.startswith(pb) or pb.startswith(pa)
    if a.endswith("*"):
        return b.startswith(pa)
    if b.endswith("*"):
        return a.startswith(pb)
    return a == b


@functools.lru_cache(maxsize=4096)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.DOTALL)


def match(pattern: str, value: str) -> bool:
    """ES Automatons.patterns semantics for `*` and `?` (regex patterns `/.../` are not supported here)."""
    return _regex(pattern).fullmatch(value) is not None


def _p(name: str, *patterns: str, excluded: tuple[str, ...] = ()) -> Privilege:
    return Privilege(name, tuple(patterns), excluded)


_ALL_CLUSTER = ("cluster:*", "indices:admin/template/*", "indices:admin/index_template/*")

# ClusterPrivilegeResolver (9.x). manage_own_api_key is conditional in ES (ManageOwnApiKeyClusterPrivilege: only the
# caller's own keys); the sandbox applies that condition in sandbox/security/api.py.
CLUSTER: dict[str, Privilege] = {p.name: p for p in [
    _p("none"),
    _p("all", *_ALL_CLUSTER),
    _p("monitor", "cluster:monitor/*", GET_INDEX_TEMPLATES, GET_COMPONENT_TEMPLATE, GET_COMPOSABLE_TEMPLATE),
    _p("monitor_inference", "cluster:monitor/xpack/inference*",
       "cluster:monitor/xpack/ml/trained_models/deployment/infer"),
    _p("monitor_ml", "cluster:monitor/xpack/ml/*"),
    _p("monitor_text_structure", "cluster:monitor/text_structure/*"),
    _p("monitor_data_frame_transforms", "cluster:monitor/data_frame/*", "cluster:monitor/transform/*"),
    _p("monitor_transform", "cluster:monitor/data_frame/*", "cluster:monitor/transform/*"),
    _p("monitor_watcher", "cluster:monitor/xpack/watcher/*"),
    _p("monitor_rollup", "cluster:monitor/xpack/rollup/*"),
    _p("monitor_enrich", "cluster:monitor/xpack/enrich/*", "cluster:admin/xpack/enrich/get"),
    _p("manage", *_ALL_CLUSTER, excluded=("cluster:admin/xpack/security/*",)),
    _p("manage_inference", "cluster:admin/xpack/inference/*", "cluster:monitor/xpack/inference*",
       "cluster:admin/xpack/ml/trained_models/deployment/start",
       "cluster:admin/xpack/ml/trained_models/deployment/stop",
       "cluster:monitor/xpack/ml/trained_models/deployment/infer"),
    _p("manage_ml", "cluster:admin/xpack/ml/*", "cluster:monitor/xpack/ml/*"),
    _p("manage_data_frame_transforms", "cluster:admin/data_frame/*", "cluster:monitor/data_frame/*",
       "cluster:monitor/transform/*", "cluster:admin/transform/*"),
    _p("manage_transform", "cluster:admin/data_frame/*", "cluster:monitor/data_frame/*",
       "cluster:monitor/transform/*", "cluster:admin/transform/*"),
    _p("manage_token", "cluster:admin/xpack/security/token/*"),
    _p("manage_watcher", "cluster:admin/xpack/watcher/*", "cluster:monitor/xpack/watcher/*"),
    _p("manage_index_templates", "indices:admin/template/*", "indices:admin/index_template/*",
       "cluster:admin/component_template/*"),
    _p("manage_ingest_pipelines", "cluster:admin/ingest/pipeline/*"),
    _p("read_pipeline", "cluster:admin/ingest/pipeline/get", "cluster:admin/ingest/pipeline/simulate"),
    _p("transport_client", "cluster:monitor/nodes/liveness", CLUSTER_STATE),
    _p("manage_security", "cluster:admin/xpack/security/*", "cluster:admin/xpack/security/delegate_pki"),
    _p("read_security", "cluster:admin/xpack/security/api_key/get", "cluster:admin/xpack/security/api_key/query",
       "cluster:admin/xpack/security/privilege/builtin/get", "cluster:admin/xpack/security/privilege/get",
       "cluster:admin/xpack/security/profile/get", "cluster:admin/xpack/security/profile/has_privileges",
       "cluster:admin/xpack/security/profile/suggest", "cluster:admin/xpack/security/role/get",
       "cluster:admin/xpack/security/role_mapping/get", "cluster:admin/xpack/security/service_account/get",
       "cluster:admin/xpack/security/service_account/credential/get*", "cluster:admin/xpack/security/user/get",
       "cluster:admin/xpack/security/user/query", "cluster:admin/xpack/security/user/list_privileges",
       HAS_PRIVILEGES, "cluster:admin/xpack/security/settings/get"),
    _p("manage_saml", "cluster:admin/xpack/security/saml/*", "cluster:admin/xpack/security/token/invalidate",
       "cluster:admin/xpack/security/token/refresh", "cluster:monitor/xpack/security/saml/metadata"),
    _p("manage_oidc", "cluster:admin/xpack/security/oidc/*"),
    _p("manage_api_key", "cluster:admin/xpack/security/api_key/*"),
    _p("grant_api_key", "cluster:admin/xpack/security/api_key/grant*"),
    _p("manage_service_account", "cluster:admin/xpack/security/service_account/*"),
    _p("manage_user_profile", "cluster:admin/xpack/security/profile/*"),
    _p("manage_pipeline", "cluster:admin/ingest/pipeline/*"),
    _p("manage_rollup", "cluster:admin/xpack/rollup/*", "cluster:monitor/xpack/rollup/*"),
    _p("manage_autoscaling", "cluster:admin/autoscaling/*"),
    _p("manage_ccr", "cluster:admin/xpack/ccr/*", CLUSTER_STATE, HAS_PRIVILEGES),
    _p("read_ccr", CLUSTER_STATE, HAS_PRIVILEGES),
    _p("create_snapshot", "cluster:admin/snapshot/create", "cluster:admin/snapshot/status*",
       "cluster:admin/snapshot/get", "cluster:admin/repository/get"),
    _p("monitor_snapshot", "cluster:admin/snapshot/status*", "cluster:admin/snapshot/get",
       "cluster:admin/repository/get"),
    _p("manage_ilm", "cluster:admin/ilm/*"),
    _p("read_ilm", "cluster:admin/ilm/get", "cluster:admin/ilm/operation_mode/get"),
    _p("manage_slm", "cluster:admin/slm/*", "cluster:admin/ilm/start", "cluster:admin/ilm/stop",
       "cluster:admin/ilm/operation_mode/get"),
    _p("read_slm", "cluster:admin/slm/status", "cluster:admin/slm/get", "cluster:admin/ilm/operation_mode/get"),
    _p("delegate_pki", "cluster:admin/xpack/security/delegate_pki", "cluster:admin/xpack/security/token/invalidate"),
    _p("manage_own_api_key", "cluster:admin/xpack/security/api_key/*"),
    _p("manage_enrich", "cluster:admin/xpack/enrich/*", "cluster:monitor/xpack/enrich/*"),
    _p("manage_logstash_pipelines", "cluster:admin/logstash/pipeline/*"),
    _p("read_fleet_secrets", "cluster:admin/fleet/secrets/get"),
    _p("write_fleet_secrets", "cluster:admin/fleet/secrets/post", "cluster:admin/fleet/secrets/delete"),
    _p("cancel_task", "cluster:admin/tasks/cancel*"),
    _p("manage_search_application", "cluster:admin/xpack/application/search_application/*"),
    _p("manage_search_synonyms", "cluster:admin/synonyms/*", "cluster:admin/synonyms_sets/*",
       "cluster:admin/synonym_rules/*"),
    _p("manage_behavioral_analytics", "cluster:admin/xpack/application/analytics/*"),
    _p("post_behavioral_analytics_event", "cluster:admin/xpack/application/analytics/post_event"),
    _p("manage_search_query_rules", "cluster:admin/xpack/query_rules/*"),
    _p("monitor_data_stream_global_retention", "cluster:monitor/data_stream/global_retention/*"),
    _p("manage_data_stream_global_retention", "cluster:admin/data_stream/global_retention/*",
       "cluster:monitor/data_stream/global_retention/*"),
]}

# IndexPrivilege (9.x; data-selector privileges only: the failure-store ones, read_failure_store and
# manage_failure_store, never appear in a data-access denial, AuthorizationDenialMessages filters them out).
INDEX: dict[str, Privilege] = {p.name: p for p in [
    _p("none"),
    _p("all", "indices:*", "internal:transport/proxy/indices:*"),
    _p("read", "indices:data/read/*", "indices:admin/resolve/index", "indices:admin/resolve/cluster"),
    _p("read_cross_cluster", "internal:transport/proxy/indices:data/read/*", "indices:admin/shards/search_shards",
       "indices:admin/search/search_shards", "indices:admin/resolve/cluster", "indices:data/read/esql",
       "indices:data/read/esql/compute"),
    _p("create", "indices:data/write/index*", "indices:data/write/bulk*", "indices:data/write/simulate/bulk*"),
    _p("create_doc", "indices:data/write/index", "indices:data/write/index[*",
       "indices:data/write/index:op_type/create", "indices:data/write/bulk*", "indices:data/write/simulate/bulk*"),
    _p("index", "indices:data/write/index*", "indices:data/write/bulk*", "indices:data/write/update*",
       "indices:data/write/simulate/bulk*"),
    _p("delete", "indices:data/write/delete*", "indices:data/write/bulk*"),
    _p("write", "indices:data/write/*", "indices:admin/mapping/auto_put"),
    _p("monitor", "indices:monitor/*"),
    _p("manage", "indices:monitor/*", "indices:admin/*", "indices:data/read/field_caps*",
       "indices:data/read/xpack/rollup/get/index/caps*"),
    _p("create_index", "indices:admin/create", "indices:admin/auto_create", "indices:admin/data_stream/create"),
    _p("delete_index", "indices:admin/delete", "indices:admin/data_stream/delete"),
    _p("view_index_metadata", "indices:admin/aliases/get", "indices:admin/get", "indices:admin/mappings/fields/get*",
       "indices:admin/mappings/get", "indices:admin/shards/search_shards", "indices:admin/search/search_shards",
       "indices:admin/validate/query*", "indices:monitor/settings/get", "indices:admin/ilm/explain",
       "indices:admin/data_stream/lifecycle/get", "indices:admin/data_stream/lifecycle/explain",
       "indices:admin/data_stream/get", "indices:admin/resolve/index", "indices:admin/resolve/cluster",
       "indices:data/read/field_caps*", "indices:data/read/xpack/rollup/get/index/caps*",
       "indices:monitor/transform/checkpoint*", "indices:monitor/get/metering/stats",
       "indices:admin/get/metering/stats"),
    _p("manage_follow_index", "indices:admin/xpack/ccr/put_follow", "indices:admin/xpack/ccr/unfollow",
       "indices:admin/close*", "indices:admin/data_stream/promote", "indices:admin/rollover"),
    _p("manage_leader_index", "indices:admin/xpack/ccr/forget_follower*"),
    _p("manage_ilm", "indices:admin/ilm/*"),
    _p("manage_data_stream_lifecycle", "indices:admin/data_stream/lifecycle/*"),
    _p("maintenance", "indices:admin/refresh*", "indices:admin/flush*", "indices:admin/synced_flush",
       "indices:admin/forcemerge*"),
    _p("auto_configure", "indices:admin/mapping/auto_put", "indices:admin/auto_create"),
    _p("cross_cluster_replication", "indices:data/read/xpack/ccr/shard_changes*", "indices:monitor/stats*",
       "indices:admin/seq_no/add_retention_lease*", "indices:admin/seq_no/remove_retention_lease*",
       "indices:admin/seq_no/renew_retention_lease*"),
    _p("cross_cluster_replication_internal", "indices:internal/admin/ccr/restore/session/clear*",
       "indices:internal/admin/ccr/restore/file_chunk/get*", "indices:internal/admin/ccr/restore/session/put*",
       "internal:transport/proxy/indices:internal/admin/ccr/restore/session/clear*",
       "internal:transport/proxy/indices:internal/admin/ccr/restore/file_chunk/get*"),
]}


def is_cluster_action(action: str) -> bool:
    """ClusterPrivilegeResolver.isClusterAction: an action the `all` cluster privilege covers."""
    return CLUSTER["all"].grants(action)


def is_index_action(action: str) -> bool:
    """AuthorizationService.isIndexAction: IndexPrivilege.ACTION_MATCHER (the `all` index privilege)."""
    return INDEX["all"].grants(action)


@functools.cache
def order(kind: str) -> tuple[str, ...]:
    """Privilege names sorted as ES's sortByAccessLevel: by how many other privileges each implies, then name."""
    table = CLUSTER if kind == "cluster" else INDEX
    count = {n: sum(1 for m, q in table.items() if m != n and p.implies(q)) for n, p in table.items()}
    return tuple(sorted(table, key=lambda n: (count[n], n)))


def granting(kind: str, action: str) -> list[str]:
    """findPrivilegesThatGrant: the named privileges that grant `action`, least privileged first."""
    table = CLUSTER if kind == "cluster" else INDEX
    return [name for name in order(kind) if table[name].grants(action)]


def resolve(kind: str, name: str) -> Privilege:
    """A privilege by name, or a raw action pattern (ES accepts an action name as a privilege: `name*`)."""
    table = CLUSTER if kind == "cluster" else INDEX
    lowered = name.lower()
    if lowered in table:
        return table[lowered]
    if (is_cluster_action if kind == "cluster" else is_index_action)(lowered):
        return Privilege(lowered, (lowered + "*",))
    # ClusterPrivilegeResolver.resolve / IndexPrivilege.resolve messages
    if kind == "cluster":
        raise ValueError(f"unknown cluster privilege [{lowered}]. a privilege must be either one of the predefined "
                         f"cluster privilege names [{','.join(order('cluster'))}] or a pattern over one of the "
                         f"available cluster actions")
    raise ValueError(f"unknown index privilege [{lowered}]. a privilege must be either one of the predefined fixed "
                     f"indices privileges [{','.join(order('index'))}] or a pattern over one of the available index "
                     f"actions")
