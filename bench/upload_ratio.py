"""Benchmark (issue 4): upload the same traced model through our concurrent uploader and through eland's
sequential `PyTorchModel.put_model`, against an in-process sandbox with injected latency per request.

    .venv/bin/python bench/upload_ratio.py [--workers 8] [--latency-ms 20] [--cache-dir .cache/es-stack]

The model is a random-weight BERT cross-encoder with the dimensions of cross-encoder/ms-marco-MiniLM-L-6-v2
(hidden 384, 6 layers, 12 heads, intermediate 1536, vocab 30522): about 90 MB traced, so about 90 parts of 1 MiB.
It is built and traced once, then reused from the cache directory. Both runs send the config first (untimed) and
time the definition parts only: what put_model does. Target: ratio >= 4 with 8 workers.

The sandbox runs in its own process by default, as Elasticsearch would: served from this process it would share
the GIL with the uploader's threads, and its per-part CPU (JSON parsing and base64 decoding of 1 MiB, about
6 ms) would bound the concurrent upload instead of the network latency (`--in-process` shows that case).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


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


def start_sandbox(*, in_process: bool):
    """(stop, url) of a sandbox: a thread of this process, or `python -m sandbox` in its own process."""
    if in_process:
        from sandbox.server import Sandbox

        sandbox = Sandbox().start()
        return sandbox.stop, sandbox.url
    import socket
    import subprocess
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "sandbox", "--port", str(port)], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("the sandbox process did not start") from None
            time.sleep(0.1)

    def stop() -> None:
        process.terminate()
        process.wait(timeout=10)

    return stop, url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each upload; medians are compared")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".cache" / "es-stack")
    parser.add_argument("--in-process", action="store_true",
                        help="serve the sandbox from this process (shares the GIL with the uploader's threads) "
                             "instead of its own process, as a real cluster would be")
    args = parser.parse_args(argv)

    import logging

    from eland.ml.pytorch import PyTorchModel
    from elasticsearch import Elasticsearch

    from provisioning.model_import.upload import definition_status, total_parts, upload_parts

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access-log line per request (as tasks.py does)
    artifact = traced_model(args.cache_dir)
    parts = total_parts(artifact.size)
    print(f"traced model: {artifact.size / 1e6:.1f} MB, {parts} parts of 1 MiB, sha256 {artifact.sha256[:12]}")

    stop, url = start_sandbox(in_process=args.in_process)
    try:
        client = Elasticsearch(url, request_timeout=120, connections_per_node=max(10, args.workers))
        client.perform_request("PUT", "/_sandbox/faults", body={"latency_ms": args.latency_ms},
                               headers={"content-type": "application/json"})

        ours_runs, eland_runs = [], []
        for run in range(args.repeat):  # alternate, so a burst of load on the machine hits both alike
            model_id = f"bench-ours-{run}"
            client.ml.put_trained_model(model_id=model_id, body=artifact.config)
            started = time.perf_counter()
            upload_parts(client, model_id, artifact, workers=args.workers)
            ours_runs.append(time.perf_counter() - started)
            assert definition_status(client, model_id)["fully_defined"], "our upload is incomplete"
            client.ml.delete_trained_model(model_id=model_id, force=True)  # keep the sandbox's memory small

            model_id = f"bench-eland-{run}"
            client.ml.put_trained_model(model_id=model_id, body=artifact.config)
            started = time.perf_counter()
            PyTorchModel(client, model_id).put_model(str(artifact.model_file))
            eland_runs.append(time.perf_counter() - started)
            assert definition_status(client, model_id)["fully_defined"], "eland's upload is incomplete"
            client.ml.delete_trained_model(model_id=model_id, force=True)
        client.close()
    finally:
        stop()

    ours, sequential = statistics.median(ours_runs), statistics.median(eland_runs)
    ratio = sequential / ours
    where = "in this process" if args.in_process else "in its own process"
    print(f"sandbox {where}, latency {args.latency_ms:.0f} ms per request, {parts} definition parts")
    runs = lambda values: ", ".join(f"{v:.2f}" for v in values)  # noqa: E731
    print(f"ours ({args.workers} workers):                     {ours:7.2f} s  (median of {runs(ours_runs)})")
    print(f"eland PyTorchModel.put_model (sequential): {sequential:7.2f} s  (median of {runs(eland_runs)})")
    print(f"ratio: {ratio:.1f}x (target >= 4x) {'OK' if ratio >= 4 else 'BELOW TARGET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
