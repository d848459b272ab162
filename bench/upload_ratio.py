"""Benchmark (issues 4, 14): the WHOLE upload of a traced model (config, definition parts, vocabulary) by the tool at
its defaults vs eland's `PyTorchModel.import_model` (what `eland_import_hub_model` runs), against a sandbox in its own
process with 0 and 20 ms of latency per request.

    .venv/bin/python bench/upload_ratio.py [--latencies 0,20] [--repeat 3] [--workers default,4,16]

The model is a random-weight BERT cross-encoder with the dimensions of cross-encoder/ms-marco-MiniLM-L-6-v2
(hidden 384, 6 layers, 12 heads, intermediate 1536, vocab 30522): about 90 MB traced, 87 parts of 1 MiB. It is built
and traced once, then reused from the cache directory. Our side is `upload()` as apply runs it: config, parts at the
default number of workers (or each of --workers), the definition_status check, vocabulary. Runs alternate (ours,
eland, ours, ...) so a burst of load on the machine hits both alike; medians are compared. One line per case, then
the ratio eland / ours per latency.

The sandbox runs in its own process, as Elasticsearch would: served from this process it would share the GIL with
the uploader's threads (`--in-process` shows that case).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

from _harness import ROOT, median, runs, set_latency, start_delaying_proxy, start_sandbox


def traced_model(cache_dir: Path):
    from provisioning.model_import import tracing
    from provisioning.model_import.cache import ArtifactCache, ModelSource
    from testbed.tiny_model import MINILM_SIZE, build_tiny_cross_encoder

    model_dir = cache_dir / "bench" / "minilm-size-random"
    if not (model_dir / "config.json").is_file():
        print(f"building a random-weight BERT cross-encoder of MiniLM-L-6 size in {model_dir}", flush=True)
        build_tiny_cross_encoder(model_dir, **MINILM_SIZE)
    source = ModelSource.from_spec({"task_type": "text_similarity", "source": {"path": str(model_dir)}})
    identity = source.identity()
    cache = ArtifactCache(cache_dir)
    key = source.cache_key(identity)
    if cache.load(key) is None:
        print("tracing it with eland (once; reused from the cache afterwards)", flush=True)
    return tracing.trace(source, cache=cache, key=key, identity=identity, version=(9, 1, 0), label="bench")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latencies", default="0,20", help="ms per request, comma-separated")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each upload; medians are compared")
    parser.add_argument("--workers", default="default",
                        help="ours with these worker counts ('default': what apply uses), comma-separated")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".cache" / "es-stack")
    parser.add_argument("--via", choices=("hook", "proxy"), default="hook",
                        help="latency from the sandbox's hook (default) or from a delaying TCP proxy in front of it, "
                             "in its own process")
    parser.add_argument("--in-process", action="store_true",
                        help="serve the sandbox from this process (shares the GIL with the uploader's threads)")
    args = parser.parse_args(argv)

    from eland.ml.pytorch import PyTorchModel
    from elasticsearch import Elasticsearch

    from provisioning.connection import connect
    from provisioning.model_import.upload import definition_status, total_parts, upload, upload_workers

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("eland").setLevel(logging.WARNING)
    artifact = traced_model(args.cache_dir)
    parts = total_parts(artifact.size)
    print(f"traced model: {artifact.size / 1e6:.1f} MB, {parts} parts of 1 MiB, sha256 {artifact.sha256[:12]}")
    files = Path(tempfile.mkdtemp(prefix="upload-bench-"))
    (files / "config.json").write_text(json.dumps(artifact.config))
    (files / "vocabulary.json").write_text(json.dumps(artifact.vocabulary))
    worker_counts = [upload_workers() if w == "default" else int(w) for w in args.workers.split(",")]

    stop, url = start_sandbox(in_process=args.in_process)
    results: dict[tuple[float, str], list[float]] = {}
    try:
        admin = Elasticsearch(url, request_timeout=120)
        for latency in (float(x) for x in args.latencies.split(",")):
            stop_proxy, target = None, url
            if args.via == "proxy":
                stop_proxy, target = start_delaying_proxy(url, latency)
            else:
                set_latency(admin, latency)
            client = connect(url=target)  # the tool's own client, as apply builds it
            # eland's as eland_import_hub_model builds it (eland/cli/eland_import_hub_model.py get_es_client)
            eland_client = Elasticsearch(target, request_timeout=300, node_class="requests")
            for run in range(args.repeat):
                for workers in worker_counts:
                    model_id = f"bench-ours-{workers}-{run}"
                    started = time.perf_counter()
                    upload(client, model_id, artifact, artifact.config, workers=workers)
                    results.setdefault((latency, f"ours, {workers} workers"), []).append(
                        time.perf_counter() - started)
                    assert definition_status(admin, model_id)["fully_defined"], "our upload is incomplete"
                    admin.ml.delete_trained_model(model_id=model_id, force=True)  # keep the sandbox's memory small

                model_id = f"bench-eland-{run}"
                started = time.perf_counter()
                PyTorchModel(eland_client, model_id).import_model(model_path=str(artifact.model_file),
                                                                  config_path=str(files / "config.json"),
                                                                  vocab_path=str(files / "vocabulary.json"))
                results.setdefault((latency, "eland import_model"), []).append(time.perf_counter() - started)
                assert definition_status(admin, model_id)["fully_defined"], "eland's upload is incomplete"
                admin.ml.delete_trained_model(model_id=model_id, force=True)
            client.close()
            eland_client.close()
            if stop_proxy:
                stop_proxy()
            else:
                set_latency(admin, 0)
        admin.close()
    finally:
        stop()

    where = "in this process" if args.in_process else "in its own process"
    added = "a delaying proxy in front of it" if args.via == "proxy" else "its latency hook"
    print(f"whole upload (config, {parts} parts, vocabulary); sandbox {where}, latency from {added}; median of "
          f"{args.repeat}")
    for (latency, case), values in results.items():
        print(f"{latency:>4.0f} ms  {case:<24} {median(values):7.2f} s  ({runs(values)})")
    default = f"ours, {upload_workers()} workers"
    for latency in sorted({k[0] for k in results}):
        ours = results.get((latency, default)) or results[(latency, f"ours, {worker_counts[0]} workers")]
        ratio = median(results[(latency, "eland import_model")]) / median(ours)
        print(f"ratio at {latency:.0f} ms: eland import_model / ours at the defaults = {ratio:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
