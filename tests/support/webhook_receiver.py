"""A real HTTP receiver on loopback for the alerts' webhooks: it records every request (path, headers, body) and
answers each as the test scripted it: a status code, or "hang" (it keeps the connection open and never answers,
so the sender times out)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HANG = "hang"


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes


class WebhookReceiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self._script: list[int | str] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    receiver.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    answer = receiver._script.pop(0) if receiver._script else 200
                if answer == HANG:
                    receiver._stopped.wait()
                    return
                self.send_response(int(answer))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def answer(self, *answers: int | str) -> None:
        """Answer the next requests so, in order (200 after them)."""
        with self._lock:
            self._script.extend(answers)

    def keys(self) -> list[str]:
        """The Idempotency-Key of each request received, in order."""
        return [request.headers["idempotency-key"] for request in self.received]

    def stop(self) -> None:
        self._stopped.set()
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    try:
        yield receiver
    finally:
        receiver.stop()
