"""The channel review round trip (coze-callbacks.md §6) with the official SDK: a connector app
answers bot.published "in review", then finishes with cozepy 0.20.0
`coze.connectors.bots.update(...)` (更新审核结果), sync and async; the operator reads the review."""

import asyncio

import pytest
from cozepy import AppType, AsyncCoze, AsyncTokenAuth, CozeAPIError
from cozepy.connectors.bots import AuditStatus

from conftest import IN_REVIEW_ANSWER
from test_cozepy import expect_error

BOT_ID = "7500000000000000009"


def in_review_channel(admin, tenant, receiver, delivery_log):
    """A connector app answering "in review", and one bot.published delivered to it; returns
    (connector_id, app_id, delivery)."""
    coze = tenant.coze
    connector_id = str(admin.connector(tenant.user["id"], "审核渠道")["id"])
    app = coze.api_apps.create(app_type=AppType.CONNECTOR, connector_id=connector_id)
    coze.api_apps.update(app_id=app.id, callback_url=receiver.url("/in-review"))
    coze.api_apps.events.create(api_app_id=app.id, event_types=["bot.published"])
    event = {"user_id": 7400000000000000001, "bot_id": int(BOT_ID), "bot_name": "客服助手", "description": "回答订单问题"}
    admin.publish("bot.published", tenant.account["id"], event, [connector_id])
    (delivery,) = delivery_log.wait_settled(app.id, 1)
    assert delivery["status"] == "succeeded", delivery
    return connector_id, app.id, delivery


def review(admin, connector_id: str) -> dict:
    return admin.get(f"/admin/v1/connectors/{connector_id}/bots/{BOT_ID}/review")


def history(data: dict) -> list:
    return [(e["audit_status"], e["reason"], e["source"]) for e in data["history"]]


def test_review_round_trip_sync(admin, tenant, new_tenant, receiver, delivery_log):
    connector_id, app_id, delivery = in_review_channel(admin, tenant, receiver, delivery_log)
    answered = review(admin, connector_id)
    assert answered["audit_status"] == 1 and answered["source"] == "answer", answered
    assert answered["reason"] == IN_REVIEW_ANSWER["audit"]["reason"]
    assert answered["share_link"] == IN_REVIEW_ANSWER["share_link"]
    assert answered["event_id"] == delivery["event_id"]

    bots = tenant.coze.connectors.bots
    expect_error(4000, bots.update, bot_id=BOT_ID, connector_id=connector_id)  # audit_status null
    expect_error(4000, bots.update, bot_id=BOT_ID, connector_id=connector_id, audit_status=AuditStatus.REJECTED)
    bots.update(bot_id=BOT_ID, connector_id=connector_id, audit_status=AuditStatus.REJECTED, reason="含违规内容")
    bots.update(bot_id=BOT_ID, connector_id=connector_id, audit_status=AuditStatus.APPROVED)
    expect_error(4200, bots.update, bot_id="42", connector_id=connector_id, audit_status=AuditStatus.APPROVED)
    stranger = new_tenant().coze.connectors.bots
    expect_error(4200, stranger.update, bot_id=BOT_ID, connector_id=connector_id, audit_status=AuditStatus.APPROVED)

    final = review(admin, connector_id)
    assert (final["audit_status"], final["source"]) == (2, "update"), final
    assert history(final) == [(1, "人工审核中", "answer"), (3, "含违规内容", "update"), (2, "", "update")]
    shown = delivery_log.get(app_id, delivery["id"])
    assert shown["review"]["audit_status"] == 2 and len(shown["review"]["history"]) == 3


def test_review_round_trip_async(server, admin, tenant, new_tenant, receiver, delivery_log):
    connector_id, _, _ = in_review_channel(admin, tenant, receiver, delivery_log)
    stranger = new_tenant()

    async def flow():
        bots = AsyncCoze(auth=AsyncTokenAuth(tenant.token), base_url=server.base_url).connectors.bots
        with pytest.raises(CozeAPIError) as caught:
            await bots.update(bot_id=BOT_ID, connector_id=connector_id, audit_status=None, reason="null status")
        assert caught.value.code == 4000, caught.value
        await bots.update(bot_id=BOT_ID, connector_id=connector_id, audit_status=AuditStatus.APPROVED, reason=None)
        others = AsyncCoze(auth=AsyncTokenAuth(stranger.token), base_url=server.base_url).connectors.bots
        with pytest.raises(CozeAPIError) as caught:
            await others.update(bot_id=BOT_ID, connector_id=connector_id, audit_status=AuditStatus.REJECTED, reason="x")
        assert caught.value.code == 4200, caught.value

    asyncio.run(flow())
    assert history(review(admin, connector_id)) == [(1, "人工审核中", "answer"), (2, "", "update")]
