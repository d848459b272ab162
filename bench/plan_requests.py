"""Requests made and wall time of a no-op plan with 1, 10, 100 and 200 managed resources.

Runs an in-process sandbox, applies N resources (half indices, half documents resources loading 3 documents each
into those indices), then injects 20 ms of latency per request (PUT /_sandbox/faults {"latency_ms": 20}) and times
a plan that finds nothing to change. Requests are counted from the sandbox's request log (GET /_sandbox/requests).
The request count must stay flat as N grows: one ledger read plus a fixed number of batched reads per kind.

    .venv/bin/python bench/plan_requests.py [--sizes 1,10,100,200] [--latency-ms 20]

Prints numbers; it passes or fails nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from elasticsearch import Elasticsearch  # noqa: E402

from provisioning import Options, Reporter, converge, make_context, make_plan  # noqa: E402
from provisioning.model import Resource, SourceLocation  # noqa: E402
from sandbox.server import Sandbox  # noqa: E402


def resources(n: int, folder: Path) -> list[Resource]:
    manifest = folder / "bench.yaml"
    out = []
    for i in range(n):
        name = f"bench-{i // 2:03d}"
        if i % 2 == 0:
            out.append(Resource("index", name, {"settings": {"number_of_shards": 1, "number_of_replicas": 0},
                                                "mappings": {"properties": {"title": {"type": "text"}}}},
                                SourceLocation(str(manifest), i + 1)))
        else:
            data = folder / f"{name}.json"
            data.write_text(json.dumps([{"id": f"{name}-{j}", "title": f"doc {j}"} for j in range(3)]))
            out.append(Resource("documents", f"{name}-seed", {"index": name, "source": data.name, "id_field": "id"},
                                SourceLocation(str(manifest), i + 1)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,100,200")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    sandbox = Sandbox().start()
    es = Elasticsearch(sandbox.url, request_timeout=120)
    print(f"{'resources':>9}  {'requests':>8}  {'wall ms':>8}  requests by path")
    try:
        for n in (int(s) for s in args.sizes.split(",")):
            es.perform_request("POST", "/_sandbox/reset")
            with tempfile.TemporaryDirectory() as tmp:
                declared = resources(n, Path(tmp))
                ctx = make_context(es, stack="bench", options=Options(parallelism=8), reporter=Reporter(quiet=True))
                converge(declared, ctx, command="bench")
                es.perform_request("PUT", "/_sandbox/faults", body={"latency_ms": args.latency_ms},
                                   headers={"content-type": "application/json"})
                since = es.perform_request("GET", "/_sandbox/requests")["last_seq"]
                started = time.perf_counter()
                plan = make_plan(declared, make_context(es, stack="bench", reporter=Reporter(quiet=True)))
                wall = (time.perf_counter() - started) * 1000
                log = es.perform_request("GET", "/_sandbox/requests", params={"since": since})["requests"]
                es.perform_request("DELETE", "/_sandbox/faults")
            assert not plan.has_changes, "the bench expects a no-op plan"
            paths: dict[str, int] = {}
            for entry in log:
                key = f"{entry['method']} {entry['path'] if len(entry['path']) < 40 else entry['path'][:37] + '...'}"
                paths[key] = paths.get(key, 0) + 1
            print(f"{n:>9}  {len(log):>8}  {wall:>8.0f}  {paths}")
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
