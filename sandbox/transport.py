"""The HTTP server the sandbox runs on: werkzeug's development server with persistent connections, as
Elasticsearch's HTTP layer keeps them (the body of every request is read whole first: sandbox/http.py read_body)."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server

log = logging.getLogger("sandbox")


class KeepAliveHandler(WSGIRequestHandler):
    """HTTP/1.1 persistent connections, as ES's HTTP layer keeps them (Netty4HttpServerTransport: a connection
    serves request after request until the client closes it). werkzeug's development server closes every connection
    and then drains whatever the client sent next, because it cannot know where an unread body ends. Sandbox.wsgi
    always reads the whole body first, so here the connection stays open for the next request. Without this every
    request paid a new TCP connection and a new server thread, which no client of a real cluster pays.

    Only what the sandbox's answers need: werkzeug Responses always carry Content-Length."""

    disable_nagle_algorithm = True  # TCP_NODELAY, ES's default (http.tcp.no_delay: true)

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.open_connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.open_connections.discard(self.connection)
        super().finish()

    def run_wsgi(self) -> None:
        if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.environ = environ = self.make_environ()
        answer: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answer[:] = [status, headers]
            return None

        try:
            body = b"".join(self.server.app(environ, start_response))
        except Exception:  # Sandbox.wsgi answers its handlers' failures itself; this is a bug of the server's own
            log.exception("sandbox server failed on %s %s", self.command, self.path)
            answer, body = ["500 INTERNAL SERVER ERROR", [("Content-Length", "0")]], b""
            self.close_connection = True
        if not answer or self.server.closing:  # the application dropped the connection (fault hooks), or stopping
            self.close_connection = True
            if not answer:
                return
        code, _, reason = answer[0].partition(" ")
        self.send_response(int(code), reason)
        for key, value in answer[1]:
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        if body and self.command != "HEAD":
            # status line, headers and body in one write (http.server keeps the headers in _headers_buffer)
            self._headers_buffer.extend((b"\r\n", body))
            self.flush_headers()
        else:
            self.end_headers()
        self.wfile.flush()


def serve(host: str, port: int, app: Any):
    server = make_server(host, port, app, threaded=True, request_handler=KeepAliveHandler)
    server.open_connections, server.connections_lock, server.closing = set(), threading.Lock(), False
    return server


def close_connections(server: Any) -> None:
    """Stopping closes the idle persistent connections too: their threads would otherwise serve a stopped
    sandbox's next request, and a client must see the node go away."""
    server.closing = True
    with server.connections_lock:
        connections = list(server.open_connections)
    for connection in connections:
        with contextlib.suppress(OSError):
            connection.shutdown(socket.SHUT_RDWR)
