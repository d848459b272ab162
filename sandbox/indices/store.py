"""State of this API area (placeholder until implemented)."""

from __future__ import annotations

from typing import Any


class IndexStore:
    def __init__(self, cluster: Any):
        self.cluster = cluster
        self.reset()

    def reset(self) -> None:
        pass

    def dump(self) -> dict[str, Any]:
        return {}

    def load(self, data: dict[str, Any]) -> None:
        pass
