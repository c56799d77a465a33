"""A real webhook receiver on loopback for the streaming tests: a threaded http.server that
checks signatures with the `standardwebhooks` library (not our code) and can be taken
down, made slow, or made to answer 500."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """Records every request it answers 2xx to (webhook-id, seq, raw body and headers)."""

    def __init__(self, *, tls: tuple[str, str] | None = None):
        self.port = free_port()
        self.tls = tls  # (certificate file, key file): serve https
        self.mode = "ok"  # ok | fail500 | slow | redirect
        self.slow_seconds = 0.0
        self.accepted: list[dict] = []  # 2xx answers, in the order they were answered
        self.requests = 0
        self.arrivals: list[int] = []  # the seq of every request, as it arrives (any answer)
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.requests += 1
                    receiver.arrivals.append(json.loads(body)["data"]["seq"])
                    mode = receiver.mode
                if mode == "redirect":
                    self.send_response(307)
                    self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
                    self.end_headers()
                    return
                if mode == "fail500":
                    self.send_response(500)
                    self.end_headers()
                    self.wfile.write(b"receiver broken")
                    return
                if mode == "slow":
                    time.sleep(receiver.slow_seconds)
                data = json.loads(body)
                with receiver.lock:
                    receiver.accepted.append(
                        {
                            "webhook_id": self.headers["webhook-id"],
                            "id": data["data"]["id"],
                            "seq": data["data"]["seq"],
                            "type": data["type"],
                            "body": body,
                            "headers": dict(self.headers.items()),
                        }
                    )
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        if self.tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Down: nothing listens on the port any more (connections are refused)."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def bad_signatures(self, secret: str) -> int:
        """Requests answered 2xx whose signature `standardwebhooks` does not accept."""
        bad = 0
        for r in self.accepted:
            try:
                Webhook(secret).verify(r["body"], r["headers"])
            except Exception:
                bad += 1
        return bad

    def unique_ids(self) -> list[str]:
        """Event ids in the order they first arrived (a receiver deduplicates on webhook-id)."""
        seen, out = set(), []
        for r in self.accepted:
            if r["webhook_id"] not in seen:
                seen.add(r["webhook_id"])
                out.append(r["webhook_id"])
        return out
