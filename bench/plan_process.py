"""`invoke plan` as users run it, a whole process, on a no-op stack of N resources of mixed kinds (issue 14).

    .venv/bin/python bench/plan_process.py [--sizes 1,10,100,200] [--latencies 0,20] [--repeat 5]

The stack has realistic names (`acme-<team>-<purpose>-products-<n>`): one trained model (the tiny cross-encoder)
and its rerank endpoint from N >= 10, one documents resource per 10 indices (3 documents each), indices for the
rest. It is applied once by `invoke apply`; then `invoke plan --detailed-exitcode` runs `--repeat` times per latency
(the sandbox, in its own process, sleeps that long per request: PUT /_sandbox/faults {"latency_ms": ...}).
Per case one line: requests made, wall time, time to first request (sandbox log time minus process start), and the
same for `python -c pass` (the interpreter's own start) measured alongside; medians of the runs. Final line: the
ratio of requests at the largest N vs N=10 (the first N with every kind: reads must not grow with N).
Child processes may write bytecode (as an installed tool does) even when PYTHONDONTWRITEBYTECODE is set here;
`--no-bytecode` keeps it, so that every run compiles the project's modules.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _harness import ROOT, cli_env, last_seq, median, requests_since, runs, set_latency, start_sandbox

TEAMS = ("search", "catalog", "support", "marketing", "risk")


def write_stack(n: int, folder: Path, model_dir: Path) -> None:
    docs: list[str] = []
    with_model = n >= 10
    left = n - (2 if with_model else 0)
    n_docs = left // 10
    n_index = max(1, left - n_docs) if n > 1 else 1
    n_docs = min(n_docs, n_index)
    for i in range(n_index):
        name = f"acme-{TEAMS[i % len(TEAMS)]}-semantic-products-{i:04d}"
        docs.append(f"kind: index\nname: {name}\nspec:\n  settings: {{number_of_shards: 1, number_of_replicas: 0}}\n"
                    f"  mappings:\n    properties:\n      title: {{type: text}}\n      sku: {{type: keyword}}\n")
        if i < n_docs:
            data = folder / "data" / f"{name}.ndjson"
            data.parent.mkdir(exist_ok=True)
            data.write_text("".join(f'{{"sku": "{name}-{j}", "title": "product {j}"}}\n' for j in range(3)))
            docs.append(f"kind: documents\nname: {name}-seed\nspec:\n  index: {name}\n  source: data/{data.name}\n"
                        f"  id_field: sku\n")
    if with_model:
        docs.append(f"kind: trained_model\nname: acme-rerank-minilm\nspec:\n  task_type: text_similarity\n"
                    f"  source: {{path: {model_dir}}}\n")
        docs.append("kind: inference_endpoint\nname: acme-rerank\nspec:\n  task_type: rerank\n"
                    "  service: elasticsearch\n  service_settings: {model_id: acme-rerank-minilm, "
                    "num_allocations: 1, num_threads: 1}\n")
    (folder / "stack.yaml").write_text("---\n".join(docs))


def invoke(args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    started = time.time()
    process = subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=600)
    return process, started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,100,200")
    parser.add_argument("--latencies", default="0,20")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--show-paths", action="store_true", help="print the requests of the last run per case")
    parser.add_argument("--no-bytecode", action="store_true",
                        help="keep PYTHONDONTWRITEBYTECODE if set (every run compiles the project's modules)")
    args = parser.parse_args()

    from elasticsearch import Elasticsearch

    from testbed.tiny_model import build_tiny_cross_encoder

    root = Path(tempfile.mkdtemp(prefix="plan-bench-"))
    model_dir = build_tiny_cross_encoder(root / "model")
    stop, url = start_sandbox()
    es = Elasticsearch(url, request_timeout=120)
    env = cli_env(url)
    if not args.no_bytecode:  # as an installed tool runs: compiled modules cached (the apply below writes them)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    sizes = [int(s) for s in args.sizes.split(",")]
    baseline_n = 10 if 10 in sizes else sizes[0]  # N=10 is the first with every kind (model, endpoint)
    first_counts: dict[float, float] = {}
    last_counts: dict[float, float] = {}
    print(f"{'N':>4} {'latency':>7} {'requests':>8} {'wall s':>7} {'1st req s':>9} {'python -c pass s':>16}  "
          f"(median of {args.repeat}; wall of each run)")
    try:
        for n in sizes:
            es.perform_request("POST", "/_sandbox/reset")
            folder = root / f"stack-{n}"
            folder.mkdir()
            write_stack(n, folder, model_dir)
            common = ["--manifests", str(folder)]
            process, _ = invoke(["apply", "--yes", "--wait-for", "started", *common], env)
            if process.returncode != 0:
                print(process.stdout[-3000:], process.stderr[-3000:])
                return 1
            for latency in (float(x) for x in args.latencies.split(",")):
                set_latency(es, latency)
                walls, firsts, counts, bare = [], [], [], []
                for _ in range(args.repeat):
                    since = last_seq(es)
                    process, started = invoke(["plan", "--detailed-exitcode", *common], env)
                    ended = time.time()
                    log = requests_since(es, since)
                    if process.returncode != 0:
                        print(f"plan exited {process.returncode} (not a no-op?):", process.stdout[-2000:],
                              process.stderr[-2000:])
                        return 1
                    walls.append(ended - started)
                    firsts.append(log[0]["time"] - started)
                    counts.append(len(log))
                    t = time.perf_counter()
                    subprocess.run([sys.executable, "-c", "pass"], check=True)
                    bare.append(time.perf_counter() - t)
                set_latency(es, 0)
                if args.show_paths:
                    print("      ", [f"{e['method']} {e['path'][:50]}" for e in log])
                if n == baseline_n:
                    first_counts[latency] = median(counts)
                elif n == sizes[-1]:
                    last_counts[latency] = median(counts)
                print(f"{n:>4} {latency:>5.0f}ms {median(counts):>8.0f} {median(walls):>7.2f} {median(firsts):>9.3f} "
                      f"{median(bare):>16.3f}  ({runs(walls)})", flush=True)
    finally:
        es.close()
        stop()
    for latency, count in last_counts.items():
        base = first_counts.get(latency)
        if base:
            print(f"ratio requests at N={sizes[-1]} vs N={baseline_n} ({latency:.0f} ms): {count / base:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
