"""Shared by the benchmarks: a sandbox in its own process (as Elasticsearch would be: serving it from the measuring
process would share the GIL with the code measured), its latency hook and request log, medians."""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def start_sandbox(*, in_process: bool = False):
    """(stop, url) of a sandbox: `python -m sandbox` in its own process, or a thread of this one."""
    if in_process:
        from sandbox.server import Sandbox

        sandbox = Sandbox().start()
        return sandbox.stop, sandbox.url
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


def set_latency(client, latency_ms: float) -> None:
    if latency_ms:
        client.perform_request("PUT", "/_sandbox/faults", body={"latency_ms": latency_ms},
                               headers={"content-type": "application/json"})
    else:
        client.perform_request("DELETE", "/_sandbox/faults")


def last_seq(client) -> int:
    return client.perform_request("GET", "/_sandbox/requests")["last_seq"]


def requests_since(client, since: int) -> list[dict]:
    return client.perform_request("GET", "/_sandbox/requests", params={"since": since})["requests"]


def median(values: list[float]) -> float:
    return statistics.median(values)


def runs(values: list[float], fmt: str = "{:.2f}") -> str:
    return ", ".join(fmt.format(v) for v in values)
