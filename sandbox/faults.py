"""Fault injection and the request log: the test hooks behind /_sandbox/."""

from __future__ import annotations

import random
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class FaultRule:
    """Answer `status` (or drop the connection) for requests matching `path` (a regex) and `method`.

    `nth` fires on the Nth matching request (1-based) only; `fraction` fires at random (seeded);
    `times` caps how often the rule fires in all. `echo_settings` makes the status answer's reason echo the
    request's service_settings with their values, as ES does for a setting a service does not know
    ("Configuration contains settings [{k=v}] unknown to the [service] service"): tests of redaction.
    """

    path: str = ".*"
    method: str | None = None
    status: int | None = None
    drop: bool = False
    fraction: float | None = None
    nth: int | None = None
    times: int | None = None
    echo_settings: bool = False
    seen: int = 0
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method:
            return False
        return re.search(self.path, path) is not None

    def should_fire(self, rng: random.Random) -> bool:
        self.seen += 1
        if self.times is not None and self.fired >= self.times:
            return False
        if self.nth is not None:
            fire = self.seen == self.nth
        elif self.fraction is not None:
            fire = rng.random() < self.fraction
        else:
            fire = True
        if fire:
            self.fired += 1
        return fire


@dataclass
class Faults:
    latency_ms: float = 0.0
    rules: list[FaultRule] = field(default_factory=list)
    seed: int = 0
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> Faults:
        known = {f for f in FaultRule.__dataclass_fields__ if f not in ("seen", "fired")}
        rules = []
        for rule in spec.get("rules", []):
            unknown = set(rule) - known
            if unknown:
                raise ValueError(f"unknown fault rule keys {sorted(unknown)}; known: {sorted(known)}")
            rules.append(FaultRule(**rule))
        faults = cls(latency_ms=float(spec.get("latency_ms", 0)), rules=rules, seed=int(spec.get("seed", 0)))
        faults._rng.seed(faults.seed)
        return faults

    def to_dict(self) -> dict[str, Any]:
        return {"latency_ms": self.latency_ms, "seed": self.seed, "rules": [asdict(r) for r in self.rules]}

    def pick(self, method: str, path: str) -> FaultRule | None:
        """The first rule that fires for this request, if any."""
        for rule in self.rules:
            if rule.matches(method, path) and rule.should_fire(self._rng):
                return rule
        return None


class RequestLog:
    """Every request but the /_sandbox/ hooks: method, path, query, status, timing, whether it writes."""

    def __init__(self) -> None:
        self._entries: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._seq = 0

    def add(self, **entry: Any) -> None:
        with self._lock:
            self._seq += 1
            self._entries.append({"seq": self._seq, "time": time.time(), **entry})

    def entries(self, since: int = 0) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self._entries if e["seq"] > since]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    @property
    def last_seq(self) -> int:
        with self._lock:
            return self._seq
