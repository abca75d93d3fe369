"""Pushes from huidiao, checked the way a receiver would: the Coze SHA-1 signature with hashlib, the
Standard Webhooks signature with the official `standardwebhooks` package, the header fields, and
the delivery log (status and the exact body sent)."""

import base64
import hashlib
import time

import pytest
from cozepy import AppType
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from conftest import AUDIT_ANSWER

# One documented example event per type (coze-callbacks.md §4).
EVENTS = {
    "bot.published": {
        "user_id": "7400000000000000001",
        "bot_id": "7500000000000000001",
        "bot_name": "客服助手",
        "description": "回答订单问题",
    },
    "bot.deleted": {"bot_id": "7500000000000000002", "bot_name": "旧助手", "user_id": "7400000000000000001"},
    "bot.unpublished": {
        "bot_id": "7500000000000000003",
        "bot_name": "下线助手",
        "user_id": "7400000000000000001",
        "connector_id": "1024",
        "unpublish_reason": "owner request",
    },
    "benefit.usage": {
        "id": "7600000000000000001",
        "consume_time": 1757412006,
        "record_root_id": "7600000000000000000",
        "connector_id": "1024",
        "connector_uid": "u-1",
        "device_id": "d-1",
        "custom_consumer": "",
        "space_id": "7300000000000000001",
        "root_entity_type": "bot",
        "root_entity_id": "7500000000000000001",
        "change_balance": "-0.0123",
        "balance_type": "token",
        "resource_type": "model",
        "resource_id": "r-1",
        "model_id": "m-1",
        "model_input_token": 120,
        "model_output_token": 345,
        "tts_char_num": 0,
        "tts_count": 0,
        "asr_audio_length": 0,
        "rtc_duration": 0,
        "rtc_begin_time": 0,
        "rtc_end_time": 0,
    },
    "benefit.plugin.scale.requested": {
        "apply_id": "7547640143629300",
        "begin_at": 1757412006,
        "end_at": 1757498406,
        "resource_id": "7546067923538800",
        "usage_in_30d": 1234,
        "applicant_info": {"user_id": 2102717852, "user_name": "张三"},
        "extension_type": "QPS",
        "origin_capacity": 16,
        "target_capacity": 21,
    },
    "benefit.plugin.scale.expired": {
        "applicant_info": {"user_id": 2102717852, "user_name": ""},
        "apply_id": "7547640143629300",
        "resource_id": "7546067923538800",
        "extension_type": "QPS",
        "expired_capacity": 5,
        "current_capacity": 21,
    },
}
EVENT_TYPES = list(EVENTS)


def coze_signature(headers: dict, verify_token: str, body: bytes) -> str:
    """coze-callbacks.md §5: hex SHA-1(timestamp ‖ nonce ‖ verify_token ‖ raw body), no separators."""
    return hashlib.sha1(
        headers["x-coze-timestamp"].encode() + headers["x-coze-nonce"].encode() + verify_token.encode() + body
    ).hexdigest()


def standard_webhooks_secret(verify_token: str) -> str:
    return "whsec_" + base64.b64encode(verify_token.encode()).decode()


def test_coze_signature_spec_vectors():
    """Our hashlib check reproduces the spec's test vectors, so a mismatch below is the server's."""
    vectors = [
        ("1700000000000", "n1", "tok", '{"a":"中文"}', "74696b8f5d73016b148622d5dba73820596389c4"),
        (
            "1749116452112",
            "b7c5a3f0e1d2",
            "3JZ9JrHhXMihsrFuCLqbPaxfqnN2JUVCIjpuarFsNxsI2aK1k9uVq6vYi4uBwKp6",
            '{"header":{"event_type":"url_verification","event_id":"bee31258-469c-48a6-ae48-648161d89c79",'
            '"created_at":1749116452112},"event":{"challenge":"988df7dc-2179-4dba-95a6-af9f40b91486"}}',
            "b249e6b0f50ab59504d43a6a1a4f73ca10eebd74",
        ),
    ]
    for timestamp, nonce, token, body, expected in vectors:
        headers = {"x-coze-timestamp": timestamp, "x-coze-nonce": nonce}
        assert coze_signature(headers, token, body.encode()) == expected


def assert_push(push, app, event_type: str, account_id: str, created_at: int, connector_id: str = None):
    """Everything a receiver checks on one push."""
    headers, body = push.headers, push.body
    now_ms = time.time() * 1000

    # (a) Coze SHA-1 signature over the raw bytes, fresh timestamp.
    assert headers["content-type"].startswith("application/json")
    assert headers["x-coze-nonce"]
    assert headers["x-coze-signature"] == coze_signature(headers, app.verify_token, body), event_type
    assert abs(now_ms - int(headers["x-coze-timestamp"])) < 60_000, headers["x-coze-timestamp"]

    # (b) Standard Webhooks, with the official library and the derived secret.
    verified = Webhook(standard_webhooks_secret(app.verify_token)).verify(body, headers)
    assert verified == push.event
    assert abs(int(headers["webhook-timestamp"]) * 1000 - int(headers["x-coze-timestamp"])) <= 1000
    with pytest.raises(WebhookVerificationError):  # the library really checks: a changed body fails
        Webhook(standard_webhooks_secret(app.verify_token)).verify(body.replace(b"}", b" }", 1), headers)
    with pytest.raises(WebhookVerificationError):  # and so does another app's secret
        Webhook(standard_webhooks_secret(app.verify_token[::-1])).verify(body, headers)

    # (c) The body: header fields and the event passed through unchanged.
    document = push.event
    assert set(document) == {"header", "event"}
    header = document["header"]
    expected = {
        "event_type": event_type,
        "event_id": headers["webhook-id"],
        "created_at": created_at,
        "coze_account_id": account_id,
        "api_app_id": app.id,
    }
    if connector_id is not None:
        expected["connector_id"] = connector_id
    assert header == expected
    assert isinstance(header["event_id"], str) and header["event_id"]
    assert document["event"] == EVENTS[event_type]


def test_every_event_type_is_pushed_signed(server, admin, tenant, receiver, delivery_log):
    coze = tenant.coze
    app = coze.api_apps.create(app_type=AppType.NORMAL, name="delivery app")
    coze.api_apps.update(app_id=app.id, callback_url=receiver.url("/hooks/all"))
    coze.api_apps.events.create(api_app_id=app.id, event_types=EVENT_TYPES)

    created_at = {}
    for offset, event_type in enumerate(EVENT_TYPES):
        created_at[event_type] = int(time.time() * 1000) - 60_000 + offset
        published = admin.publish(event_type, tenant.account["id"], EVENTS[event_type], created_at=created_at[event_type])
        assert published["deliveries"] == 1, (event_type, published)
        assert published["id"]

    pushes = receiver.wait_events(len(EVENT_TYPES))
    time.sleep(0.3)  # nothing beyond the six may follow (no duplicates of a succeeded delivery)
    pushes = receiver.events()
    assert sorted(p.event["header"]["event_type"] for p in pushes) == sorted(EVENT_TYPES)
    for push in pushes:
        assert push.path == "/hooks/all"
        event_type = push.event["header"]["event_type"]
        assert_push(push, app, event_type, tenant.account["id"], created_at[event_type])
    event_ids = [p.event["header"]["event_id"] for p in pushes]
    assert len(set(event_ids)) == len(event_ids), event_ids
    nonces = [p.headers["x-coze-nonce"] for p in pushes]
    assert len(set(nonces)) == len(nonces), nonces

    # The delivery log: all six succeeded on the first attempt, with the exact bytes received.
    by_event_id = {p.event["header"]["event_id"]: p for p in pushes}
    deliveries = delivery_log.wait_settled(app.id, len(EVENT_TYPES))
    assert {d["status"] for d in deliveries} == {"succeeded"}, deliveries
    assert {d["event_id"] for d in deliveries} == set(by_event_id)
    assert [d["id"] for d in deliveries] == sorted((d["id"] for d in deliveries), key=int, reverse=True)  # newest first
    for delivery in deliveries:
        push = by_event_id[delivery["event_id"]]
        assert delivery["event_type"] == push.event["header"]["event_type"]
        assert delivery["attempts"] == 1
        assert delivery["last_status_code"] == 200
        assert "next_attempt_at" not in delivery and "audit" not in delivery
        detail = delivery_log.get(app.id, delivery["id"])
        assert {k: detail[k] for k in delivery} == delivery
        assert isinstance(detail["body"], str)
        assert detail["body"].encode() == push.body
        (attempt,) = detail["attempt_log"]
        assert attempt["status_code"] == 200 and "error" not in attempt
        assert attempt["latency_ms"] >= 0 and attempt["at"] >= created_at[delivery["event_type"]]


def test_connector_app_push_and_audit(server, admin, tenant, receiver, delivery_log):
    """bot.published to a connector app: connector_id in the header, and the receiver's review
    answer is stored with the delivery."""
    coze = tenant.coze
    connector = admin.connector(tenant.user["id"], "review channel")
    connector_id = str(connector["id"])
    app = coze.api_apps.create(app_type=AppType.CONNECTOR, connector_id=connector_id)
    coze.api_apps.update(app_id=app.id, callback_url=receiver.url("/audit"))
    coze.api_apps.events.create(api_app_id=app.id, event_types=["bot.published", "bot.unpublished"])

    created = int(time.time() * 1000)
    published = admin.publish("bot.published", tenant.account["id"], EVENTS["bot.published"], [connector_id], created)
    assert published["deliveries"] == 1
    (push,) = receiver.wait_events(1)
    assert_push(push, app, "bot.published", tenant.account["id"], created, connector_id=connector_id)

    (delivery,) = delivery_log.wait_settled(app.id, 1)
    assert delivery["status"] == "succeeded", delivery
    assert delivery["event_id"] == push.event["header"]["event_id"]
    assert delivery["audit"]["audit_status"] == AUDIT_ANSWER["audit"]["audit_status"]
    assert delivery["audit"]["reason"] == AUDIT_ANSWER["audit"]["reason"]
    assert delivery_log.get(app.id, delivery["id"])["body"].encode() == push.body
