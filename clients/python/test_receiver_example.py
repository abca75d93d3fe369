"""receiver_example.py (the snippet in docs/receiving.md) against the real server: it answers the
challenge, accepts genuine pushes once, and refuses tampered, forged, stale and unsigned ones."""

import base64
import hashlib
import hmac
import json
import os
import queue
import re
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from cozepy import AppType

from conftest import wait_for
from receiver_example import CallbackServer, coze_signature

EXAMPLE = Path(__file__).with_name("receiver_example.py")


@pytest.fixture
def example_app(tenant):
    """A normal app whose verify_token the example receiver is started with."""
    return tenant.coze.api_apps.create(app_type=AppType.NORMAL, name="example receiver app")


@pytest.fixture
def example(example_app):
    httpd = CallbackServer(("127.0.0.1", 0), example_app.verify_token)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/coze/callback"
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def signed_headers(verify_token: str, body: bytes, event_id: str, now_ms: int = None, nonce: str = None) -> dict:
    """Headers exactly as the server signs a push (both schemes)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    nonce = nonce or secrets.token_urlsafe(12)
    timestamp = str(now_ms)
    webhook_timestamp = str(now_ms // 1000)
    mac = hmac.new(verify_token.encode(), f"{event_id}.{webhook_timestamp}.".encode() + body, hashlib.sha256)
    return {
        "Content-Type": "application/json",
        "X-Coze-Timestamp": timestamp,
        "X-Coze-Nonce": nonce,
        "X-Coze-Signature": coze_signature(timestamp, nonce, verify_token, body),
        "webhook-id": event_id,
        "webhook-timestamp": webhook_timestamp,
        "webhook-signature": "v1," + base64.b64encode(mac.digest()).decode(),
    }


def assert_empty(inbox: queue.Queue):
    with pytest.raises(queue.Empty):
        item = inbox.get(timeout=0.3)
        pytest.fail(f"unexpected event accepted: {item}")


def test_example_receives_from_server(admin, tenant, delivery_log, example_app, example):
    coze = tenant.coze
    # Setting the callback URL makes the server send url_verification; the example must answer it.
    coze.api_apps.update(app_id=example_app.id, callback_url=example.url)
    coze.api_apps.events.create(api_app_id=example_app.id, event_types=["bot.deleted", "benefit.usage"])

    event = {"bot_id": "7500000000000000009", "bot_name": "示例", "user_id": "7400000000000000009"}
    assert admin.publish("bot.deleted", tenant.account["id"], event)["deliveries"] == 1
    accepted = example.inbox.get(timeout=10)
    assert accepted["header"]["event_type"] == "bot.deleted"
    assert accepted["header"]["api_app_id"] == example_app.id
    assert accepted["event"] == event

    (delivery,) = delivery_log.wait_settled(example_app.id, 1)
    assert delivery["status"] == "succeeded", delivery
    assert delivery["event_id"] == accepted["header"]["event_id"]
    body = delivery_log.get(example_app.id, delivery["id"])["body"].encode()

    # A resend carries the same event_id: the example answers 2xx but does not process it again.
    delivery_log.resend(example_app.id, delivery["id"])

    def resent():
        detail = delivery_log.get(example_app.id, delivery["id"])
        return detail if detail["status"] == "succeeded" and detail["attempts"] == 2 else None

    detail = wait_for(resent, 10, "the resend to succeed")
    assert [a.get("status_code") for a in detail["attempt_log"]] == [200, 200], detail
    assert_empty(example.inbox)

    # Direct POSTs: the genuine body, re-signed now, is a replay (2xx, deduplicated) ...
    event_id = accepted["header"]["event_id"]
    token = example_app.verify_token
    good = signed_headers(token, body, event_id)
    replay = httpx.post(example.url, content=body, headers=good)
    assert replay.status_code == 200, replay.text
    assert_empty(example.inbox)

    # ... while a tampered body with those same headers is refused.
    tampered = body.replace(b'"bot_id":"7500000000000000009"', b'"bot_id":"7500000000000000666"')
    assert tampered != body
    refused = httpx.post(example.url, content=tampered, headers=good)
    assert refused.status_code == 401, refused.text
    assert "signature" in refused.json()["error"].lower()
    assert_empty(example.inbox)

    # The benefit.usage subscription still works after all that.
    usage = {"id": "7600000000000000009", "change_balance": "-1.5"}
    admin.publish("benefit.usage", tenant.account["id"], usage)
    assert example.inbox.get(timeout=10)["event"] == usage


def test_example_refuses_bad_pushes(example_app, example):
    token = example_app.verify_token
    event_id = f"{secrets.token_hex(8)}-{example_app.id}"
    document = {
        "header": {"event_type": "bot.deleted", "event_id": event_id, "created_at": int(time.time() * 1000)},
        "event": {"bot_id": "1"},
    }
    body = json.dumps(document, separators=(",", ":")).encode()
    now_ms = int(time.time() * 1000)

    def post(content: bytes, headers: dict) -> httpx.Response:
        return httpx.post(example.url, content=content, headers=headers)

    refusals = {
        "wrong token": signed_headers(token[::-1], body, event_id),
        "stale timestamp": signed_headers(token, body, event_id, now_ms=now_ms - 6 * 60 * 1000),
        "future timestamp": signed_headers(token, body, event_id, now_ms=now_ms + 6 * 60 * 1000),
        "no signature": {k: v for k, v in signed_headers(token, body, event_id).items() if k != "X-Coze-Signature"},
        "bad standard webhooks signature": {
            **signed_headers(token, body, event_id),
            "webhook-signature": "v1," + base64.b64encode(b"\0" * 32).decode(),
        },
        "standard webhooks id changed": {**signed_headers(token, body, event_id), "webhook-id": "other-id"},
        "non-ascii signature": {**signed_headers(token, body, event_id), "X-Coze-Signature": ("\u00e9" * 40).encode()},
    }
    for what, headers in refusals.items():
        answer = post(body, headers)
        assert answer.status_code == 401, (what, answer.status_code, answer.text)
    assert_empty(example.inbox)

    # Coze itself sends no webhook-* headers: the Coze signature alone is enough.
    def coze_only(event_id: str, now_ms: int = None) -> dict:
        headers = signed_headers(token, body_of(event_id), event_id, now_ms=now_ms)
        return {k: v for k, v in headers.items() if not k.startswith("webhook-")}

    def body_of(event_id: str) -> bytes:
        return json.dumps({**document, "header": {**document["header"], "event_id": event_id}}, separators=(",", ":")).encode()

    assert post(body, coze_only(event_id)).status_code == 200
    assert example.inbox.get(timeout=1) == document
    assert post(body, signed_headers(token, body, event_id)).status_code == 200  # same event_id again
    assert_empty(example.inbox)

    # Coze's X-Coze-Timestamp is when the event was triggered, the same on every retry: a genuine
    # retry a day later passes; one older than the retry horizon, or from the future, does not.
    day_old = f"{secrets.token_hex(8)}-{example_app.id}"
    assert post(body_of(day_old), coze_only(day_old, now_ms - 24 * 3600 * 1000)).status_code == 200
    assert example.inbox.get(timeout=1)["header"]["event_id"] == day_old
    for skew in [-73 * 3600 * 1000, 6 * 60 * 1000]:
        late = f"{secrets.token_hex(8)}-{example_app.id}"
        assert post(body_of(late), coze_only(late, now_ms + skew)).status_code == 401, skew
    assert_empty(example.inbox)

    # A signed challenge is answered; a signed body that is not a push is 400.
    challenge = json.dumps(
        {"header": {"event_type": "url_verification", "event_id": "c-1", "created_at": now_ms}, "event": {"challenge": "xyz"}}
    ).encode()
    answer = post(challenge, signed_headers(token, challenge, "c-1"))
    assert (answer.status_code, answer.json()) == (200, {"challenge": "xyz"})
    junk = b"[1, 2, 3]"
    assert post(junk, signed_headers(token, junk, "j-1")).status_code == 400


def test_example_runs_as_a_script(admin, tenant, delivery_log, example_app):
    """`python receiver_example.py` as documented: COZE_VERIFY_TOKEN in the environment."""
    env = {**os.environ, "COZE_VERIFY_TOKEN": example_app.verify_token, "PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8"}
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--host", "127.0.0.1", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        encoding="utf-8",
    )
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        first = lines.get(timeout=10)
        url = re.fullmatch(r"listening on (http://127\.0\.0\.1:\d+/)\n", first)
        assert url, first
        tenant.coze.api_apps.update(app_id=example_app.id, callback_url=url.group(1))
        tenant.coze.api_apps.events.create(api_app_id=example_app.id, event_types=["bot.unpublished"])
        admin.publish("bot.unpublished", tenant.account["id"], {"bot_id": "42", "unpublish_reason": "下架"})
        line = lines.get(timeout=10)
        event_type, event_id, event = line.split(" ", 2)
        assert event_type == "bot.unpublished", line
        assert json.loads(event) == {"bot_id": "42", "unpublish_reason": "下架"}
        (delivery,) = delivery_log.wait_settled(example_app.id, 1)
        assert (delivery["status"], delivery["event_id"]) == ("succeeded", event_id)
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    without_token = {k: v for k, v in os.environ.items() if k != "COZE_VERIFY_TOKEN"}
    refused = subprocess.run([sys.executable, str(EXAMPLE)], env=without_token, capture_output=True, text=True, timeout=30)
    assert refused.returncode != 0 and "COZE_VERIFY_TOKEN" in refused.stderr


def test_doc_shows_this_example():
    """docs/receiving.md embeds receiver_example.py verbatim, so the tested code is the documented code."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "receiving.md").read_text(encoding="utf-8")
    assert "```python\n" + EXAMPLE.read_text(encoding="utf-8") + "```\n" in doc
