"""Conformance in 8.x mode: the 8.x-era copies of Elasticsearch's YAML REST tests (conformance/es8.yaml lists them,
each with its source commit and why it applies), run against the sandbox running as 8.19 (or --url), with the
skips of es8.yaml (each with its reason) on top of skips.yaml."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import yaml

from conformance import skips as skiplist
from conformance.runner import DEFAULT_SUITE, Summary, is_sandbox, make_client, run_folder

ES8_FILE = Path(__file__).with_name("es8.yaml")


def load(path: Path = ES8_FILE) -> tuple[list[dict[str, Any]], skiplist.SkipList]:
    data = yaml.safe_load(path.read_text()) or {}
    files = data.get("suite") or []
    for entry in files:
        if not entry.get("reason") or not entry.get("source"):
            raise ValueError(f"{path}: every suite file needs a reason and a source: {entry}")
    base = skiplist.load()
    extra = []
    for entry in data.get("skips") or []:
        if not entry.get("reason"):
            raise ValueError(f"{path}: every skip needs a reason: {entry}")
        extra.append(skiplist.Skip(entry["file"], tuple(entry.get("tests") or ()), " ".join(entry["reason"].split())))
    return files, skiplist.SkipList(base.skips + tuple(extra), base.included_alt_versions, ())


def run(es_version: str, url: str | None = None, *, verbose: bool = False, name_filter: str | None = None,
        out: Any = None, suite_root: Path = DEFAULT_SUITE) -> Summary:
    out = out or sys.stdout
    files, skips = load()
    server = None
    if url is None:
        from sandbox.server import Sandbox

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        server = Sandbox(version=es_version).start()
        url = server.url
    client = make_client(url, None)
    summary = Summary()
    try:
        sandbox = is_sandbox(client)
        target = f"a fresh sandbox as {es_version}" if server else url
        print(f"conformance (8.x suite, conformance/es8.yaml) against {target}", file=out)
        for entry in files:
            path = suite_root / entry["file"]
            if not path.is_file():
                print(f"missing: {path} (not obtained)", file=out)
                continue
            result = run_folder(path, client, sandbox=sandbox, verbose=verbose, name_filter=name_filter,
                                include_alt=True, out=out, skips=skips)
            summary.files += result.files
        print(f"total: {summary.line}", file=out)
        return summary
    finally:
        client.close()
        if server is not None:
            server.stop()
