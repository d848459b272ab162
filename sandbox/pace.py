"""Pace knobs (PUT /_sandbox/pace): make slow things slow, so that tests can watch or interrupt them.

- `reindex_docs_per_second`: a reindex task (`wait_for_completion=false`) copies at most this many documents per
  second, so a test can cancel it or read its progress midway (null: as fast as possible);
- `max_allocations`: the simulated ML nodes hold at most this many allocations across all deployments (null: as
  many as asked), so a deployment stays `started` with allocation_count < target_allocation_count, as ES reports
  a deployment that does not fit;
- `allocation_seconds`: each allocation takes this long to start, so allocation_count grows over time;
- `ml_refresh_seconds`: the periodic refresh of the model-definition index (ES's default refresh_interval is 1):
  a definition part stored after the last part (whose write refreshes the index) becomes visible that long after
  it was stored. Default 1, as ES (0: late parts visible at once).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Pace:
    reindex_docs_per_second: float | None = None
    max_allocations: int | None = None
    allocation_seconds: float = 0.0
    # ES's periodic refresh is every 1s (index.refresh_interval default); 0 makes late parts visible at once
    ml_refresh_seconds: float = 1.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Pace:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown pace settings {sorted(unknown)}")
        pace = cls(**data)
        if pace.reindex_docs_per_second is not None and pace.reindex_docs_per_second <= 0:
            raise ValueError("reindex_docs_per_second must be positive")
        if pace.max_allocations is not None and pace.max_allocations < 0:
            raise ValueError("max_allocations must be >= 0")
        if pace.ml_refresh_seconds < 0:
            raise ValueError("ml_refresh_seconds must be >= 0")
        if pace.allocation_seconds < 0:
            raise ValueError("allocation_seconds must be >= 0")
        return pace

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
