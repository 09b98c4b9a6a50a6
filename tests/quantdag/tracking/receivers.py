"""Local HTTP receivers for the alert channels' tests: a catch-all endpoint and a fake Telegram
Bot API (``getUpdates`` serves queued updates, ``sendMessage`` is recorded); 127.0.0.1 only."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """Records every request (method, path, headers, body) and answers 200 with ``{"ok": true}``."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                       "body": body.decode(errors="replace")})  # fmt: skip
                out = json.dumps(outer.answer(self.path, body)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_POST = do_GET = do_PUT = _any  # noqa: N815 - http.server's names

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, path: str, body: bytes) -> dict:
        return {"ok": True}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class FakeBotApi(Receiver):
    """The Bot API subset the bot uses, for one token: ``getUpdates`` hands out the queued updates once."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.updates: list[dict] = []
        self.sent: list[dict] = []
        self._lock = threading.Lock()
        super().__init__()

    def queue(self, user_id: int, text: str, chat_id: int | None = None) -> None:
        with self._lock:
            n = len(self.updates) + len(self.sent) + 1000
            self.updates.append({"update_id": n, "message": {"message_id": n, "from": {"id": user_id, "is_bot": False},
                                                              "chat": {"id": chat_id or user_id, "type": "private"},
                                                              "date": 0, "text": text}})  # fmt: skip

    def answer(self, path: str, body: bytes) -> dict:
        if not path.startswith(f"/bot{self.token}/"):
            return {"ok": False, "error_code": 401, "description": "Unauthorized"}
        method, params = path.rsplit("/", 1)[1], json.loads(body or b"{}")
        if method == "getUpdates":
            with self._lock:
                out, self.updates = [u for u in self.updates if u["update_id"] >= params.get("offset", 0)], []
            return {"ok": True, "result": out}
        if method == "sendMessage":
            self.sent.append(params)
            return {"ok": True, "result": {"message_id": len(self.sent), "chat": {"id": params["chat_id"]}, "text": params["text"]}}
        return {"ok": False, "description": f"unknown method {method}"}


class SmtpReceiver:
    """A local SMTP server (plain, AUTH accepted) keeping every message it is sent: the email channel's receiver."""

    def __init__(self) -> None:
        import socketserver

        self.messages: list[dict] = []
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def _say(self, line: str) -> None:
                self.wfile.write((line + "\r\n").encode())

            def handle(self) -> None:
                self._say("220 quantdag-test ESMTP")
                mail: dict = {"from": None, "to": [], "data": ""}
                while True:
                    raw = self.rfile.readline()
                    if not raw:
                        return
                    cmd = raw.decode(errors="replace").strip()
                    verb = cmd.split(" ", 1)[0].upper()
                    if verb in ("EHLO", "HELO"):
                        self.wfile.write(b"250-quantdag-test\r\n250-AUTH PLAIN LOGIN\r\n250 OK\r\n")
                    elif verb == "AUTH":
                        parts = cmd.split()
                        if parts[1].upper() == "LOGIN":
                            for prompt in ("334 VXNlcm5hbWU6", "334 UGFzc3dvcmQ6"):
                                self._say(prompt)
                                self.rfile.readline()
                        elif len(parts) == 2:  # PLAIN without the initial response
                            self._say("334 ")
                            self.rfile.readline()
                        self._say("235 2.7.0 Authentication successful")
                    elif verb == "MAIL":
                        mail["from"] = cmd.split(":", 1)[1].strip()
                        self._say("250 OK")
                    elif verb == "RCPT":
                        mail["to"].append(cmd.split(":", 1)[1].strip())
                        self._say("250 OK")
                    elif verb == "DATA":
                        self._say("354 End data with <CR><LF>.<CR><LF>")
                        lines = []
                        while (line := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
                            lines.append(line.decode(errors="replace"))
                        mail["data"] = "".join(lines)
                        outer.messages.append(dict(mail))
                        self._say("250 OK queued")
                    elif verb == "QUIT":
                        self._say("221 Bye")
                        return
                    else:  # RSET, NOOP, ...
                        self._say("250 OK")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
