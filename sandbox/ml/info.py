"""`GET /_ml/info`: ML defaults and the limits of the simulated ML node (MlStore.ml_memory_bytes / ml_processors).

ES: TransportMlInfoAction (defaults(), limits(), calculateTotalMlMemory, calculateEffectiveMaxModelMemoryLimit) and
the get-ml-info docs example; field names per elasticsearch-specification ml/info/types.ts (MlInfoLimits).
"""

from __future__ import annotations

from typing import Any

from sandbox.http import EsRequest, Route

_MB = 1 << 20
# ES: max(Job.PROCESS_MEMORY_OVERHEAD 10mb, DataFrameAnalyticsConfig.PROCESS_MEMORY_OVERHEAD) +
# MachineLearning.NATIVE_EXECUTABLE_CODE_OVERHEAD 30mb, taken off the largest ML node's memory
_EFFECTIVE_LIMIT_OVERHEAD = 40 * _MB
_DEFAULT_MODEL_MEMORY_LIMIT = 1024 * _MB  # AnalysisLimits.DEFAULT_MODEL_MEMORY_LIMIT_MB

_STOPWORDS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday",
              "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun",
              "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
              "November", "December", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
              "Dec", "GMT", "UTC"]


def byte_size_rep(size: int) -> str:
    """ES ByteSizeValue.ofMb(n).getStringRep(): "<n>mb", "<n>gb" when whole, and a bare "0" for zero."""
    if size <= 0:
        return str(size)
    for suffix, unit in (("pb", 1 << 50), ("tb", 1 << 40), ("gb", 1 << 30)):
        if size % unit == 0:
            return f"{size // unit}{suffix}"
    return f"{size // _MB}mb"


def ml_info(sb: Any, req: EsRequest) -> dict[str, Any]:
    store = sb.cluster.ml
    memory = (max(0, int(store.ml_memory_bytes)) // _MB) * _MB  # rounded down to whole MB, as ES does
    has_ml_node = memory > 0
    limits: dict[str, Any] = {}
    effective = None
    if has_ml_node:
        # ES omits the processor counts (and the effective limit) when the cluster has no ML node
        limits["max_single_ml_node_processors"] = int(store.ml_processors)
        limits["total_ml_processors"] = int(store.ml_processors)
        effective = max(0, memory - _EFFECTIVE_LIMIT_OVERHEAD) // _MB * _MB
        limits["effective_max_model_memory_limit"] = byte_size_rep(effective)
    limits["total_ml_memory"] = byte_size_rep(memory)
    model_memory_limit = _DEFAULT_MODEL_MEMORY_LIMIT
    if effective is not None and effective < model_memory_limit:
        model_memory_limit = effective  # ES defaultModelMemoryLimit: never above what could run
    return {
        "defaults": {
            "anomaly_detectors": {
                "categorization_analyzer": {
                    "char_filter": ["first_line_with_letters"],
                    "tokenizer": "ml_standard",
                    "filter": [{"type": "stop", "stopwords": list(_STOPWORDS)},
                               {"type": "limit", "max_token_count": "100"}],
                },
                "model_memory_limit": byte_size_rep(model_memory_limit),
                "categorization_examples_limit": 4,
                "model_snapshot_retention_days": 10,
                "daily_model_snapshot_retention_after_days": 1,
            },
            "datafeeds": {"scroll_size": 1000},
        },
        "upgrade_mode": False,
        "native_code": {"version": sb.cluster.version, "build_hash": "0123456789abcd"},
        "limits": limits,
    }


ROUTES = [Route(("GET",), "/_ml/info", ml_info, api="ml.info")]
