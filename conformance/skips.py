"""The repository's one list of deliberately skipped conformance tests: conformance/skips.yaml."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

SKIPS_FILE = Path(__file__).with_name("skips.yaml")


@dataclass(frozen=True)
class Skip:
    file: str  # a path suffix, with "/" separators
    tests: tuple[str, ...]  # empty: the whole file
    reason: str


@dataclass(frozen=True)
class SkipList:
    skips: tuple[Skip, ...]
    included_alt_versions: tuple[str, ...]  # path suffixes under _alt-versions/ that the default run includes
    included_next: tuple[str, ...] = ()  # folders of es-yaml-tests-next/ that the default run also runs

    def reason(self, relpath: str, test: str | None = None) -> str | None:
        """The reason `test` of the file (or the whole file, test=None) is skipped, if it is."""
        for skip in self.skips:
            if _suffix_match(relpath, skip.file) and (not skip.tests or (test is not None and test in skip.tests)):
                return skip.reason
        return None

    def includes_alt(self, relpath: str) -> bool:
        return any(_suffix_match(relpath, suffix) for suffix in self.included_alt_versions)


def _suffix_match(relpath: str, suffix: str) -> bool:
    # An _alt-versions/ copy shares its path suffix with the primary file: it matches only entries naming it.
    if "/_alt-versions/" in "/" + relpath and "_alt-versions/" not in suffix:
        return False
    return relpath == suffix or relpath.endswith("/" + suffix.lstrip("/"))


def load(path: Path = SKIPS_FILE) -> SkipList:
    data = yaml.safe_load(path.read_text()) or {}
    skips = []
    for entry in data.get("skips") or []:
        if not entry.get("reason"):
            raise ValueError(f"{path}: every skip needs a reason: {entry}")
        tests = entry.get("tests") or ([entry["test"]] if entry.get("test") else [])
        skips.append(Skip(entry["file"], tuple(tests), " ".join(str(entry["reason"]).split())))
    alt = tuple(e["file"] for e in data.get("included_alt_versions") or [])
    nxt = tuple(e["file"] for e in data.get("included_next") or [])
    return SkipList(tuple(skips), alt, nxt)
