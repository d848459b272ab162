"""Index-scoped settings the sandbox knows: which are dynamic, static or final, and their defaults.

Sources:
- Names: ES server/src/main/java/org/elasticsearch/common/settings/IndexScopedSettings.java (BUILT_IN_INDEX_SETTINGS).
- Dynamic vs static: the `Property.Dynamic` / `Property.Final` flags of those settings (IndexMetadata, IndexSettings,
  MergePolicyConfig, SearchSlowLog, ...); cross-checked with the dynamic list of the Elastic Terraform provider
  (internal/elasticsearch/index/settings_keys.go, DynamicSettingsKeys) and the ES docs page
  "Index modules" (static vs dynamic index settings).
- Defaults: the default values of those Setting objects as GET /{index}/_settings?include_defaults=true shows them.
Values are strings because that is how ES stores and returns every setting.
"""

from __future__ import annotations

# Updatable on an open index (Property.Dynamic).
DYNAMIC: dict[str, str | None] = {
    "index.number_of_replicas": "1",
    "index.auto_expand_replicas": "false",
    "index.refresh_interval": "1s",
    "index.max_result_window": "10000",
    "index.max_inner_result_window": "100",
    "index.max_rescore_window": "10000",
    "index.max_docvalue_fields_search": "100",
    "index.max_script_fields": "32",
    "index.max_ngram_diff": "1",
    "index.max_shingle_diff": "3",
    "index.max_refresh_listeners": "1000",
    "index.max_slices_per_scroll": "1024",
    "index.max_regex_length": "1000",
    "index.max_terms_count": "65536",
    "index.max_adjacency_matrix_filters": "100",
    "index.analyze.max_token_count": "10000",
    "index.highlight.max_analyzed_offset": "1000000",
    "index.highlight.weight_matches_mode.enabled": "true",
    "index.blocks.read_only": "false",
    "index.blocks.read_only_allow_delete": "false",
    "index.blocks.read": "false",
    "index.blocks.write": "false",
    "index.blocks.metadata": "false",
    "index.priority": "1",
    "index.hidden": "false",
    "index.default_pipeline": "_none",
    "index.final_pipeline": "_none",
    "index.query.default_field": "*",
    "index.search.idle.after": "30s",
    "index.translog.durability": "REQUEST",
    "index.translog.sync_interval": "5s",
    "index.translog.flush_threshold_size": "10gb",
    "index.translog.generation_threshold_size": "64mb",
    "index.translog.flush_threshold_age": "1m",
    "index.translog.retention.age": "-1",
    "index.translog.retention.size": "-1",
    "index.flush_after_merge": "512mb",
    "index.gc_deletes": "60s",
    "index.soft_deletes.retention.operations": "0",
    "index.soft_deletes.retention_lease.period": "12h",
    "index.unassigned.node_left.delayed_timeout": "1m",
    "index.routing.allocation.enable": "all",
    "index.routing.rebalance.enable": "all",
    "index.routing.allocation.total_shards_per_node": "-1",
    "index.routing.allocation.include._tier_preference": "",
    "index.allocation.max_retries": "5",
    "index.requests.cache.enable": "true",
    "index.write.wait_for_active_shards": "1",
    "index.warmer.enabled": "true",
    "index.mapping.total_fields.limit": "1000",
    "index.mapping.total_fields.ignore_dynamic_beyond_limit": "false",
    "index.mapping.depth.limit": "20",
    "index.mapping.nested_fields.limit": "50",
    "index.mapping.nested_objects.limit": "10000",
    "index.mapping.field_name_length.limit": "9223372036854775807",
    "index.mapping.dimension_fields.limit": "32768",
    "index.merge.scheduler.max_thread_count": None,
    "index.merge.scheduler.max_merge_count": None,
    "index.merge.scheduler.auto_throttle": "true",
    "index.merge.policy.type": "UNSET",
    "index.merge.policy.floor_segment": "2mb",
    "index.merge.policy.max_merge_at_once": "10",
    "index.merge.policy.max_merged_segment": "5gb",
    "index.merge.policy.segments_per_tier": "10.0",
    "index.merge.policy.deletes_pct_allowed": "20.0",
    "index.merge.policy.expunge_deletes_allowed": "10.0",
    "index.compound_format": "1gb",
    "index.search.slowlog.include.user": "false",
    "index.indexing.slowlog.include.user": "false",
    "index.indexing.slowlog.reformat": "true",
    "index.indexing.slowlog.source": "1000",
    "index.lifecycle.name": "",
    "index.lifecycle.rollover_alias": "",
    "index.lifecycle.indexing_complete": "false",
    "index.lifecycle.origination_date": "-1",
    "index.lifecycle.parse_origination_date": "false",
    "index.lifecycle.prefer_ilm": "true",
    "index.lifecycle.skip": "false",
    "index.fast_refresh": "false",
}

# Prefix groups that are dynamic (each key below the prefix is a dynamic setting).
DYNAMIC_PREFIXES = (
    "index.routing.allocation.include.",
    "index.routing.allocation.exclude.",
    "index.routing.allocation.require.",
    "index.search.slowlog.threshold.",
    "index.indexing.slowlog.threshold.",
)

# Settable only at creation or on a closed index (no Property.Dynamic).
STATIC: dict[str, str | None] = {
    "index.codec": "default",
    "index.shard.check_on_startup": "false",
    "index.load_fixed_bitset_filters_eagerly": "true",
    "index.store.type": "",
    "index.store.preload": "[]",
    "index.query_string.lenient": "false",
    "index.queries.cache.enabled": "true",
    "index.mapping.coerce": "false",
    "index.mapping.ignore_malformed": "false",
    "index.mapping.ignore_above": None,
    "index.mapping.source.mode": None,
    "index.mapping.synthetic_source_keep": "none",
    "index.recovery.type": "",
    "index.max_analyzed_offset": None,
    "index.data_path": "",
    "index.format": "0",
    "index.blocks.verified_read_only": "false",
}
STATIC_PREFIXES = ("index.analysis.", "index.similarity.")

# Fixed at creation (Property.Final): ES answers "final index setting [...], not updateable".
FINAL: dict[str, str | None] = {
    "index.number_of_shards": "1",
    "index.number_of_routing_shards": None,
    "index.routing_partition_size": "1",
    "index.soft_deletes.enabled": "true",
    "index.mode": "standard",
    "index.routing_path": "[]",
    "index.sort.field": "[]",
    "index.sort.order": "[]",
    "index.sort.mode": "[]",
    "index.sort.missing": "[]",
    "index.time_series.start_time": None,
    "index.time_series.end_time": None,
}

# Written by ES itself; a user cannot set them (private or internal index settings).
GENERATED = ("index.uuid", "index.creation_date", "index.provided_name", "index.version.created",
             "index.routing.allocation.include._tier_preference", "index.verified_before_close")
PRIVATE = ("index.uuid", "index.version.created", "index.version.compatibility")

# Typed validation for the common settings (ES: Setting.intSetting / boolSetting / Setting.timeSetting).
INT_MIN = {"index.number_of_shards": 1, "index.number_of_replicas": 0, "index.max_result_window": 1,
           "index.routing_partition_size": 1, "index.priority": 0, "index.mapping.total_fields.limit": 0,
           "index.max_inner_result_window": 1, "index.max_rescore_window": 1}
BOOLEANS = {"index.hidden", "index.blocks.read_only", "index.blocks.read_only_allow_delete", "index.blocks.read",
            "index.blocks.write", "index.blocks.metadata", "index.soft_deletes.enabled", "index.query_string.lenient",
            "index.mapping.coerce", "index.mapping.ignore_malformed", "index.requests.cache.enable"}
CHOICES = {
    "index.translog.durability": ("request", "async"),
    "index.mode": ("standard", "time_series", "logsdb", "lookup"),
    "index.codec": ("default", "best_compression", "legacy_default", "legacy_best_compression", "lucene_default"),
}
MAX_SHARDS = 1024

# Shown under `defaults` by include_defaults=true (a useful subset of ES's full default list).
DEFAULTS: dict[str, str] = {k: v for table in (DYNAMIC, STATIC, FINAL) for k, v in table.items()
                            if v is not None and k not in GENERATED}


def kind_of(key: str) -> str | None:
    """'dynamic', 'static', 'final', 'generated' or None (unknown setting)."""
    if key in GENERATED:
        return "generated"
    if key in DYNAMIC or key.startswith(DYNAMIC_PREFIXES):
        return "dynamic"
    if key in FINAL or key.startswith("index.sort."):
        return "final"
    if key in STATIC or key.startswith(STATIC_PREFIXES):
        return "static"
    return None


def is_dynamic(key: str) -> bool:
    return kind_of(key) == "dynamic"
