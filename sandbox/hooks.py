"""Test hooks under the reserved /_sandbox/ prefix: request log, fault injection, reset.

GET    /_sandbox/requests?since=N   the request log (entries after sequence number N)
DELETE /_sandbox/requests           clear the log
GET    /_sandbox/faults             current faults
PUT    /_sandbox/faults             {"latency_ms": 20, "seed": 1, "rules": [{"path": "regex", "method": "PUT",
                                     "status": 429 | "drop": true, "fraction": 0.1 | "nth": 3, "times": 1}]}
DELETE /_sandbox/faults             no faults
GET    /_sandbox/pace               current pace knobs
PUT    /_sandbox/pace               {"reindex_docs_per_second": 5, "max_allocations": 1, "allocation_seconds": 2}
DELETE /_sandbox/pace               full speed again (sandbox/pace.py)
POST   /_sandbox/reset              wipe all state, the log, the faults and the pace knobs
"""

from __future__ import annotations

from typing import Any

from sandbox.errors import IllegalArgument
from sandbox.faults import Faults
from sandbox.http import EsRequest, Route
from sandbox.pace import Pace


def get_requests(sb: Any, req: EsRequest) -> dict:
    since = req.int_arg("since", 0) or 0
    return {"last_seq": sb.log.last_seq, "requests": sb.log.entries(since)}


def clear_requests(sb: Any, req: EsRequest) -> dict:
    sb.log.clear()
    return {"acknowledged": True}


def get_faults(sb: Any, req: EsRequest) -> dict:
    return sb.faults.to_dict()


def put_faults(sb: Any, req: EsRequest) -> dict:
    try:
        sb.faults = Faults.from_dict(req.json({}))
    except (TypeError, ValueError) as exc:
        raise IllegalArgument(f"bad fault specification: {exc}") from exc
    return {"acknowledged": True, **sb.faults.to_dict()}


def clear_faults(sb: Any, req: EsRequest) -> dict:
    sb.faults = Faults()
    return {"acknowledged": True}


def get_pace(sb: Any, req: EsRequest) -> dict:
    return sb.cluster.pace.to_dict()


def put_pace(sb: Any, req: EsRequest) -> dict:
    try:
        sb.cluster.pace = Pace.from_dict(req.json({}))
    except (TypeError, ValueError) as exc:
        raise IllegalArgument(f"bad pace specification: {exc}") from exc
    return {"acknowledged": True, **sb.cluster.pace.to_dict()}


def clear_pace(sb: Any, req: EsRequest) -> dict:
    sb.cluster.pace = Pace()
    return {"acknowledged": True}


def reset(sb: Any, req: EsRequest) -> dict:
    sb.reset()
    return {"acknowledged": True}


ROUTES = [
    Route(("GET",), "/_sandbox/requests", get_requests),
    Route(("DELETE",), "/_sandbox/requests", clear_requests),
    Route(("GET",), "/_sandbox/faults", get_faults),
    Route(("PUT", "POST"), "/_sandbox/faults", put_faults),
    Route(("DELETE",), "/_sandbox/faults", clear_faults),
    Route(("GET",), "/_sandbox/pace", get_pace),
    Route(("PUT", "POST"), "/_sandbox/pace", put_pace),
    Route(("DELETE",), "/_sandbox/pace", clear_pace),
    Route(("POST",), "/_sandbox/reset", reset),
]
