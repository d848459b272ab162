"""Version gates: behaviour that depends on the Elasticsearch version the sandbox reports."""

from __future__ import annotations


def version_at_least(version: str, minimum: tuple[int, int]) -> bool:
    try:
        major, minor = (int(x) for x in version.split(".")[:2])
    except ValueError:
        return True
    return (major, minor) >= minimum
