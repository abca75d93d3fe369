"""Operator notifications (operator-api.md, "Operator notifications") checked the way an operator's
webhook would: with the official `standardwebhooks` package and the `whsec_` secret the server was
given, the body `{"type", "at", "data"}` of an app the operator pauses and resumes."""

import base64
import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cozepy import AppType, Coze, TokenAuth
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from conftest import Admin, running_server, wait_for


def start_webhook(received: list) -> ThreadingHTTPServer:
    """The operator's webhook on 127.0.0.1: records every request, answers 204."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def test_pause_and_resume_notifications_verify_with_standardwebhooks(tmp_path):
    received = []
    webhook = start_webhook(received)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    url = f"http://127.0.0.1:{webhook.server_address[1]}/ops"
    env = {"HUIDIAO_OPERATOR_WEBHOOK_SECRET": secret}
    try:
        data_dir = tmp_path / "notifying"
        data_dir.mkdir()
        with running_server(data_dir, ("--operator-webhook-url", url), env) as server:
            admin = Admin(server)
            account = admin.account("ops", "team")
            user = admin.user(account["id"], "owner", "admin")
            coze = Coze(auth=TokenAuth(admin.token(user["id"])), base_url=server.base_url)
            app = coze.api_apps.create(app_type=AppType.NORMAL, name="watched")
            admin.post(f"/admin/v1/api_apps/{app.id}/pause", {"reason": "maintenance"})
            admin.post(f"/admin/v1/api_apps/{app.id}/resume", {})
            wait_for(lambda: len(received) >= 2, 15, "two notifications")
            admin.http.close()
            log = server.log.read_text(errors="replace")
            assert secret not in log and secret[6:] not in log, "the secret is never logged"
    finally:
        webhook.shutdown()
        webhook.server_close()

    verifier = Webhook(secret)
    bodies = []
    for headers, body in sorted(received, key=lambda r: int(r[0]["webhook-id"])):
        assert headers["content-type"] == "application/json"
        bodies.append(verifier.verify(body, headers))
        tampered = body.replace(b"maintenance", b"sabotage") if b"maintenance" in body else body + b" "
        try:
            verifier.verify(tampered, headers)
        except WebhookVerificationError:
            pass
        else:
            raise AssertionError("a changed body must not verify")
        assert json.loads(body) == bodies[-1]
    assert [n["type"] for n in bodies] == ["app.paused", "app.resumed"]
    paused, resumed = bodies
    assert paused["data"] == {"app_id": app.id, "reason": "maintenance", "paused_at": paused["at"], "how": "operator"}
    assert resumed["data"] == {"app_id": app.id, "resumed_at": resumed["at"], "how": "operator"}
    assert len({headers["webhook-id"] for headers, _ in received}) == 2
