"""Shared by the benchmarks: a sandbox in its own process (as Elasticsearch would be: serving it from the measuring
process would share the GIL with the code measured), its latency hook and request log, medians."""

from __future__ import annotations

import contextlib
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


def cli_env(url: str) -> dict[str, str]:
    """The environment of an `invoke` child process pointed at `url`, as the benchmarks run the tool."""
    import os

    return {**os.environ, "ELASTICSEARCH_URL": url, "ES_STACK_NAME": "bench", "PYTHONPATH": str(ROOT)}


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


class CountingProxy:
    """A TCP proxy in front of the sandbox counting the bytes each way (what a command transfers). With
    `delay_ms`, it also holds each request that starts on a quiet connection that long before passing it on: a
    per-request latency added outside the sandbox, as an independent delaying proxy in front of a cluster would."""

    def __init__(self, target_url: str, delay_ms: float = 0):
        import threading

        host, port = target_url.rsplit("/", 1)[-1].split(":")
        self.target = (host, int(port))
        self.delay = delay_ms / 1000
        self.sent = self.received = 0
        self._lock = threading.Lock()
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> None:
        with self._lock:
            self.sent = self.received = 0

    def _accept(self) -> None:
        import threading

        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for end in (client, upstream):  # no Nagle delay on the proxy's own writes
                end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._pipe, args=(client, upstream, "sent"), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, "received"), daemon=True).start()

    def _pipe(self, source: socket.socket, dest: socket.socket, counter: str) -> None:
        quiet_since = 0.0  # the first request of a connection is delayed too
        try:
            while data := source.recv(65536):
                with self._lock:
                    setattr(self, counter, getattr(self, counter) + len(data))
                # a request starts when the client sends after a pause (its previous answer came back meanwhile)
                if self.delay and counter == "sent" and time.monotonic() - quiet_since > 0.002:
                    time.sleep(self.delay)
                dest.sendall(data)
                quiet_since = time.monotonic()
        except OSError:
            pass
        finally:
            for s in (source, dest):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.server.close()


def start_delaying_proxy(target_url: str, delay_ms: float):
    """(stop, url) of a CountingProxy adding `delay_ms` per request, in a process of its own: in the measuring
    process its threads would share the GIL with the client measured."""
    code = ("import sys, time; sys.path.insert(0, sys.argv[1]); from _harness import CountingProxy; "
            "proxy = CountingProxy(sys.argv[2], float(sys.argv[3])); print(proxy.url, flush=True); "
            "time.sleep(10**9)")
    process = subprocess.Popen([sys.executable, "-c", code, str(Path(__file__).parent), target_url, str(delay_ms)],
                               stdout=subprocess.PIPE, text=True)
    url = process.stdout.readline().strip()

    def stop() -> None:
        process.terminate()
        process.wait(timeout=10)

    return stop, url


def run_measured(command: list[str], env: dict | None = None, cwd: Path = ROOT) -> tuple[int, float, float, str]:
    """(exit code, wall seconds, peak RSS MB of that process, output tail) of one child process (os.wait4)."""
    import os

    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = process.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, time.perf_counter() - started, usage.ru_maxrss / 1024, output[-3000:]
