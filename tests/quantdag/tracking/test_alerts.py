from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from quantdag.tracking import send_alert
from quantdag.exchange import Credentials


def test_send_alert_posts_scrubbed_json_to_webhook_and_logs(caplog):
    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.handle_request, daemon=True).start()
    Credentials(api_key="canary-alert-key-123456", secret="canary-alert-secret-654321")
    text = send_alert("kill switch: key canary-alert-key-123456", context={"run_id": "r1"},
                      webhook_url=f"http://127.0.0.1:{server.server_port}/hook")
    server.server_close()
    assert received == [{"text": "ALERT kill switch: key ***", "event": "other", "silent": False, "run_id": "r1"}]
    assert text == "ALERT kill switch: key ***"
    assert "canary-alert-key" not in caplog.text and "ALERT kill switch" in caplog.text


def test_send_alert_with_dead_webhook_logs_and_does_not_raise(caplog):
    text = send_alert("drawdown", webhook_url="http://127.0.0.1:9/nothing-listens-here")
    assert text == "ALERT drawdown"
    assert "alert webhook" in caplog.text
