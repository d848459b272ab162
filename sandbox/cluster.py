"""The sandbox's whole state: one object per API area, each with reset/dump/load, behind one lock."""

from __future__ import annotations

import threading
from typing import Any

from sandbox import versions
from sandbox.ids import new_uuid
from sandbox.indices.store import IndexStore
from sandbox.inference.store import InferenceStore
from sandbox.ml.store import MlStore
from sandbox.pace import Pace
from sandbox.security.store import SecurityStore
from sandbox.tasks import TaskManager

DEFAULT_VERSION = "9.1.0"


class Cluster:
    """State of the stand-in cluster. Stores are created lazily so each area lives in its own package."""

    def __init__(self, version: str = DEFAULT_VERSION, cluster_name: str = "sandbox"):
        self.lock = threading.RLock()
        self.version = version
        self.cluster_name = cluster_name
        self.cluster_uuid = new_uuid()
        self.node_id = new_uuid()
        self.indices = IndexStore(self)
        self.ml = MlStore(self)
        self.inference = InferenceStore(self)
        self.security = SecurityStore(self)
        self.tasks = TaskManager(self)
        self.pace = Pace()  # test knobs (PUT /_sandbox/pace)
        self.license_type = "trial"  # GET _license: every feature on, like a cluster after start_trial

    def stores(self) -> dict[str, Any]:
        return {"indices": self.indices, "ml": self.ml, "inference": self.inference, "security": self.security,
                "tasks": self.tasks}

    def reset(self) -> None:
        with self.lock:
            self.pace = Pace()
            self.license_type = "trial"
            for store in self.stores().values():
                store.reset()

    def dump(self) -> dict[str, Any]:
        with self.lock:
            return {name: store.dump() for name, store in self.stores().items()}

    def load(self, data: dict[str, Any]) -> None:
        with self.lock:
            for name, store in self.stores().items():
                if name in data:
                    store.load(data[name])

    def info(self) -> dict[str, Any]:
        return {
            "name": "sandbox-node-1",
            "cluster_name": self.cluster_name,
            "cluster_uuid": self.cluster_uuid,
            "version": {
                "number": self.version,
                "build_flavor": "default",
                "build_type": "sandbox",
                "build_hash": "0" * 40,
                "build_date": "2025-07-01T00:00:00.000Z",
                "build_snapshot": False,
                **versions.info_fields(self.version),  # by major: sandbox/versions.py
            },
            "tagline": "You Know, for Search",
        }
