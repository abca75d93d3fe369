"""Fixtures: the real huidiao server, its operator API, and a callback receiver."""

import json
import os
import re
import secrets
import signal
import subprocess
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from cozepy import Coze, TokenAuth

REPO = Path(__file__).resolve().parents[2]
BINARY = os.environ.get("HUIDIAO_BIN", str(REPO / "target" / "debug" / "huidiao"))


@dataclass
class Server:
    base_url: str
    admin_token: str
    log: Path


@contextmanager
def running_server(data_dir: Path, args: tuple = (), env: dict = None):
    """Runs `huidiao serve` on data_dir with extra args and environment until the block ends,
    then stops it with SIGTERM and checks that it exited cleanly."""
    log = data_dir.parent / f"{data_dir.name}.log"
    admin_token = secrets.token_urlsafe(24)
    env = {**os.environ, **(env or {}), "HUIDIAO_ADMIN_TOKEN": admin_token, "HUIDIAO_LOG": "info"}
    command = [BINARY, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir), "--allow-private-callback-urls"]
    with open(log, "wb") as stderr:
        proc = subprocess.Popen([*command, *args], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
    port = None
    deadline = time.monotonic() + 30
    while port is None:
        text = re.sub(r"\x1b\[[0-9;]*m", "", log.read_text(errors="replace"))
        ready = re.search(r"huidiao ready.*\blisten=127\.0\.0\.1:(\d+)", text)
        if ready:
            port = int(ready.group(1))
        elif proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"huidiao did not become ready (exit {proc.poll()}):\n{text}")
        else:
            time.sleep(0.05)
    yield Server(f"http://127.0.0.1:{port}", admin_token, log)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0, log.read_text(errors="replace")


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("huidiao-data")) as running:
        yield running


class Admin:
    """The operator API over plain HTTP."""

    def __init__(self, server: Server):
        self.http = httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {server.admin_token}"})

    def post(self, path: str, body: dict) -> dict:
        return self.call("POST", path, json=body)

    def get(self, path: str) -> dict:
        return self.call("GET", path)

    def call(self, method: str, path: str, **kwargs) -> dict:
        answer = self.http.request(method, path, **kwargs)
        body = kwargs.get("json")
        envelope = answer.json()
        assert envelope["code"] == 0, (path, body, answer.status_code, envelope)
        assert envelope["detail"]["logid"] == answer.headers["X-Tt-Logid"]
        return envelope["data"]

    def account(self, name: str, edition: str = "personal") -> dict:
        return self.post("/admin/v1/accounts", {"name": name, "edition": edition})

    def user(self, account_id: str, name: str, role: str = "member", plugin_developer: bool = False) -> dict:
        body = {"name": name, "role": role, "plugin_developer": plugin_developer}
        return self.post(f"/admin/v1/accounts/{account_id}/users", body)

    def token(self, user_id: str, permissions: list = None) -> str:
        body = {} if permissions is None else {"permissions": permissions}
        return self.post(f"/admin/v1/users/{user_id}/tokens", body)["token"]

    def connector(self, user_id: str, name: str) -> dict:
        return self.post(f"/admin/v1/users/{user_id}/connectors", {"name": name})

    def publish(self, event_type: str, account_id: str, event: dict, connector_ids: list = None, created_at: int = None) -> dict:
        """POST /admin/v1/events; returns data {"id", "deliveries"}."""
        body = {"event_type": event_type, "coze_account_id": account_id, "event": event}
        if connector_ids is not None:
            body["connector_ids"] = connector_ids
        if created_at is not None:
            body["created_at"] = created_at
        return self.post("/admin/v1/events", body)


@pytest.fixture(scope="session")
def admin(server):
    operator = Admin(server)
    yield operator
    operator.http.close()


@dataclass
class Tenant:
    """An account with one user and a token carrying all six permissions."""

    account: dict
    user: dict
    token: str
    coze: Coze


@pytest.fixture
def new_tenant(server, admin):
    def make(edition: str = "personal", role: str = "member", plugin_developer: bool = False) -> Tenant:
        account = admin.account(f"acct-{secrets.token_hex(4)}", edition)
        user = admin.user(account["id"], f"user-{secrets.token_hex(4)}", role, plugin_developer)
        token = admin.token(user["id"])
        return Tenant(account, user, token, Coze(auth=TokenAuth(token), base_url=server.base_url))

    return make


@pytest.fixture
def tenant(new_tenant) -> Tenant:
    """A team admin marked plugin developer: eligible for every event type (spec §6)."""
    return new_tenant("team", "admin", plugin_developer=True)


def wait_for(condition, timeout: float = 10.0, what: str = "condition", interval: float = 0.05):
    """Polls condition() until it returns something truthy, for at most timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class DeliveryLog:
    """An app owner's view of the delivery log (operator-api.md), over plain HTTP with a PAT."""

    def __init__(self, server: Server, token: str):
        self.http = httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"})

    def call(self, method: str, path: str, **kwargs):
        answer = self.http.request(method, path, **kwargs)
        envelope = answer.json()
        assert envelope["code"] == 0, (method, path, answer.status_code, envelope)
        assert envelope["detail"]["logid"] == answer.headers["X-Tt-Logid"]
        return envelope.get("data")

    def list(self, app_id: str, **query) -> list:
        """Every delivery of the app (all pages), newest first."""
        items, token = [], ""
        while True:
            data = self.call("GET", f"/v1/api_apps/{app_id}/deliveries", params={**query, "page_token": token})
            items += data["items"]
            token = data.get("next_page_token") or ""
            if not data["has_more"]:
                return items

    def get(self, app_id: str, delivery_id: str) -> dict:
        return self.call("GET", f"/v1/api_apps/{app_id}/deliveries/{delivery_id}")

    def resend(self, app_id: str, delivery_id: str):
        return self.call("POST", f"/v1/api_apps/{app_id}/deliveries/{delivery_id}/resend")

    def wait_settled(self, app_id: str, count: int, timeout: float = 10.0) -> list:
        """Waits until the app has count deliveries and none is pending; returns them."""

        def settled():
            items = self.list(app_id)
            return items if len(items) == count and all(d["status"] != "pending" for d in items) else None

        return wait_for(settled, timeout, f"{count} settled deliveries of app {app_id}")


@pytest.fixture
def delivery_log(server, tenant):
    """The delivery log as seen by the `tenant` fixture's user."""
    log = DeliveryLog(server, tenant.token)
    yield log
    log.http.close()


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes

    @property
    def event(self) -> dict:
        return json.loads(self.body)


AUDIT_ANSWER = {"audit": {"audit_status": 2, "reason": "approved by the test receiver"}, "share_link": "https://example.com/share/test"}
IN_REVIEW_ANSWER = {"audit": {"audit_status": 1, "reason": "人工审核中"}, "share_link": "https://example.com/share/pending"}


@dataclass
class Receiver:
    """A callback URL on 127.0.0.1. Paths starting with /wrong-challenge answer a wrong
    challenge, /status-500 answers HTTP 500, /audit answers events (not challenges) with
    AUDIT_ANSWER and /in-review with IN_REVIEW_ANSWER, any other path answers correctly."""

    base_url: str
    received: list

    def url(self, path: str) -> str:
        return self.base_url + path

    def events(self, event_type: str = None) -> list:
        """What was received other than url_verification challenges (optionally of one type)."""
        pushes = [r for r in list(self.received) if r.event["header"]["event_type"] != "url_verification"]
        return [r for r in pushes if event_type is None or r.event["header"]["event_type"] == event_type]

    def wait_events(self, count: int, timeout: float = 10.0) -> list:
        """Waits until at least count events (not challenges) have arrived; returns them all."""
        return wait_for(lambda: len(self.events()) >= count and self.events(), timeout, f"{count} pushes")


@pytest.fixture
def receiver():
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            if self.path.startswith("/status-500"):
                return self.answer(500, {"error": "boom"})
            event = json.loads(body)
            answer = {}
            if event["header"]["event_type"] == "url_verification":
                answer["challenge"] = event["event"]["challenge"]
                if self.path.startswith("/wrong-challenge"):
                    answer["challenge"] += "-wrong"
            elif self.path.startswith("/audit"):
                answer = AUDIT_ANSWER
            elif self.path.startswith("/in-review"):
                answer = IN_REVIEW_ANSWER
            self.answer(200, answer)

        def answer(self, status: int, body: dict):
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield Receiver(f"http://127.0.0.1:{httpd.server_address[1]}", received)
    httpd.shutdown()
    httpd.server_close()
    thread.join()
