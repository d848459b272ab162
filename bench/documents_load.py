"""Documents at scale (issue 14): `invoke apply` loading N documents vs the client's `helpers.parallel_bulk` on the
same data, a no-op plan of that stack, and an index replacement vs a bare `_reindex`.

    .venv/bin/python bench/documents_load.py [--sizes 10000,100000,200000] [--latencies 0,20] [--repeat 3]
                                             [--replacement 100000]

Per N and latency, each side loads the same file `--repeat` times, the sides alternating which goes first, each
load a process of its own against a fresh sandbox (its own process too); medians are compared:
- ours: `invoke apply --yes` of one index and one `documents` resource reading an NDJSON file (about 250 bytes per
  document); the whole command's wall time, its bulk phase (first bulk request sent to last answered, from the
  sandbox's request log) and the process's peak memory (getrusage of the child);
- baseline: a script streaming the same file line by line into `helpers.parallel_bulk` (thread_count 4,
  chunk_size 500: the helper's defaults) into an index of its own;
after ours' first load, `invoke plan` of the loaded stack through a byte-counting proxy: requests and bytes both ways.
Ratios: bulk-phase throughput ours / parallel_bulk, and the same for the whole command (ours: validation of the
data file before any write, plan, load, refresh, verification; the script: imports, load, refresh).
`--replacement N`: with N documents loaded, a change of `number_of_shards` (a replacement: new index, writes
blocked, `_reindex` as a task, counts, alias swap) timed as an `invoke apply` process vs one bare
`POST _reindex?wait_for_completion=true` of the same documents.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from _harness import (
    CountingProxy,
    cli_env,
    last_seq,
    median,
    requests_since,
    run_measured,
    runs,
    set_latency,
    start_sandbox,
)

GENRES = ("crime", "drama", "comedy", "thriller", "documentary", "animation", "horror", "romance")
WORDS = ("detective", "city", "night", "family", "secret", "journey", "war", "love", "island", "storm", "letter",
         "train", "river", "winter", "game", "killer", "doctor", "village", "summer", "ghost")

BASELINE = """
import json, sys, time
from elasticsearch import Elasticsearch, helpers
url, index, path = sys.argv[1:4]
es = Elasticsearch(url, request_timeout=120)
def actions():
    with open(path, encoding="utf-8") as f:
        for line in f:
            doc = json.loads(line)
            yield {"_op_type": "index", "_index": index, "_id": doc["id"], "_source": doc}
failed = sum(not ok for ok, _ in helpers.parallel_bulk(es, actions(), thread_count=4, chunk_size=500,
                                                          raise_on_error=False))
es.indices.refresh(index=index)
print("failed", failed)
"""


def write_data(path: Path, n: int) -> None:
    rng = random.Random(n)
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            plot = " ".join(rng.choice(WORDS) for _ in range(rng.randint(12, 24)))
            f.write(json.dumps({"id": f"movie-{i:07d}", "title": f"{rng.choice(WORDS).title()} {i}", "plot": plot,
                                "genre": rng.choice(GENRES), "year": rng.randint(1930, 2025),
                                "rating": round(rng.uniform(1, 10), 1)}) + "\n")


def write_stack(folder: Path, data: Path, shards: int = 1) -> None:
    (folder / "stack.yaml").write_text(
        f"kind: index\nname: movies\nspec:\n  settings: {{number_of_shards: {shards}, number_of_replicas: 0}}\n"
        "  mappings:\n    properties:\n      id: {type: keyword}\n      title: {type: text}\n"
        "      plot: {type: text}\n      genre: {type: keyword}\n      year: {type: integer}\n"
        "      rating: {type: float}\n"
        "---\n"
        f"kind: documents\nname: movies-seed\nspec:\n  index: movies\n  source: {data}\n  id_field: id\n")


def bulk_window(log: list[dict]) -> float:
    bulks = [e for e in log if e["path"].endswith("/_bulk")]
    if not bulks:
        return float("nan")
    return max(e["time"] for e in bulks) - min(e["time"] - e["duration_ms"] / 1000 for e in bulks)


def measure(side: str, n: int, latency: float, data: Path, folder: Path, *,
            with_plan: bool) -> tuple[float, float] | None:
    """One side's load of `data` on a fresh sandbox in its own process: prints its line, returns the bulk seconds
    and the whole command's (None when the command failed). `with_plan`: then a no-op `invoke plan` of the loaded
    stack through a proxy."""
    from elasticsearch import Elasticsearch

    python = sys.executable
    stop, url = start_sandbox()
    es = Elasticsearch(url, request_timeout=300)
    try:
        set_latency(es, latency)
        folder.mkdir(parents=True)
        write_stack(folder, data)
        env = cli_env(url)
        since = last_seq(es)
        if side == "ours":
            code, wall, peak, out = run_measured([python, "-m", "invoke", "apply", "--yes", "--manifests",
                                                  str(folder)], env)
            index, label = "movies", "ours (apply)"
        else:
            es.indices.create(index="baseline", mappings={"properties": {"id": {"type": "keyword"}}})
            code, wall, peak, out = run_measured([python, "-c", BASELINE, url, "baseline", str(data)], env)
            index, label = "baseline", "parallel_bulk"
        if code != 0:
            print(out)
            return None
        seconds = bulk_window(requests_since(es, since))
        count = es.count(index=index)["count"]
        print(f"{n:>7} {latency:>4.0f} {label:<15} {wall:>7.2f} {seconds:>7.2f} {n / seconds:>8.0f} {peak:>8.0f}  "
              f"{count} documents", flush=True)
        if with_plan:
            proxy = CountingProxy(url)
            since = last_seq(es)
            code, plan_wall, plan_peak, out = run_measured([python, "-m", "invoke", "plan", "--detailed-exitcode",
                                                            "--manifests", str(folder)],
                                                           {**env, "ELASTICSEARCH_URL": proxy.url})
            print(f"{n:>7} {latency:>4.0f} {'no-op plan':<15} {plan_wall:>7.2f} {'':>7} {'':>8} {plan_peak:>8.0f}  "
                  f"{len(requests_since(es, since))} requests, {proxy.sent / 1e3:.1f} kB sent, "
                  f"{proxy.received / 1e3:.1f} kB received, exit {code} (0: no changes)", flush=True)
            proxy.close()
        return seconds, wall
    finally:
        es.close()
        stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,200000")
    parser.add_argument("--latencies", default="0,20")
    parser.add_argument("--repeat", type=int, default=3, help="loads of each side, alternating; medians compared")
    parser.add_argument("--replacement", type=int, default=100_000, help="documents for the replacement case (0: "
                                                                          "skip it)")
    args = parser.parse_args()

    from elasticsearch import Elasticsearch

    root = Path(tempfile.mkdtemp(prefix="documents-bench-"))
    python = sys.executable
    ratios = []
    print(f"{'N':>7} {'lat':>4} {'case':<15} {'wall s':>7} {'bulk s':>7} {'docs/s':>8} {'peak MB':>8}  notes",
          flush=True)
    for n in (int(s) for s in args.sizes.split(",")):
        data = root / f"movies-{n}.ndjson"
        write_data(data, n)
        for latency in (float(x) for x in args.latencies.split(",")):
            bulk_seconds: dict[str, list[float]] = {"ours": [], "parallel_bulk": []}
            command_seconds: dict[str, list[float]] = {"ours": [], "parallel_bulk": []}
            for run in range(args.repeat):
                # alternate which side goes first, each on a fresh sandbox: neither loads into a fuller cluster
                for side in (("ours", "parallel_bulk") if run % 2 == 0 else ("parallel_bulk", "ours")):
                    measured = measure(side, n, latency, data, root / f"{side}-{n}-{latency:.0f}-{run}",
                                   with_plan=side == "ours" and run == 0)
                    if measured is None:
                        return 1
                    bulk_seconds[side].append(measured[0])
                    command_seconds[side].append(measured[1])
            ratios.append((n, latency, bulk_seconds, command_seconds))
    for n, latency, bulk, command in ratios:
        for what, seconds in (("bulk throughput", bulk), ("whole command", command)):
            ratio = median(seconds["parallel_bulk"]) / median(seconds["ours"])
            print(f"ratio N={n} at {latency:.0f} ms: {what} ours / parallel_bulk = {ratio:.2f} (median of "
                  f"{args.repeat}; seconds ours {runs(seconds['ours'])}, parallel_bulk "
                  f"{runs(seconds['parallel_bulk'])})")

    if args.replacement:
        n = args.replacement
        data = root / f"movies-{n}.ndjson"
        if not data.exists():
            write_data(data, n)
        stop, url = start_sandbox()
        es = Elasticsearch(url, request_timeout=600)
        try:
            folder = root / f"replace-{n}"
            folder.mkdir()
            write_stack(folder, data)
            env = cli_env(url)
            code, _, _, out = run_measured([python, "-m", "invoke", "apply", "--yes", "--manifests", str(folder)],
                                           env)
            assert code == 0, out
            started = time.perf_counter()
            es.reindex(source={"index": "movies"}, dest={"index": "bare-copy"}, wait_for_completion=True,
                       refresh=True)
            bare = time.perf_counter() - started
            write_stack(folder, data, shards=2)
            code, wall, peak, out = run_measured([python, "-m", "invoke", "apply", "--yes", "--allow-data-loss",
                                                  "--manifests", str(folder)], env)
            assert code == 0, out
            print(f"replacement of an index with {n} documents: invoke apply {wall:.2f} s (peak {peak:.0f} MB), "
                  f"bare _reindex {bare:.2f} s; ratio {wall / bare:.2f} (count {es.count(index='movies')['count']})")
        finally:
            es.close()
            stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
