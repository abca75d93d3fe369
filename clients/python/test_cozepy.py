"""huidiao driven by the official Coze SDK (cozepy 0.20.0), sync and async."""

import asyncio
import hashlib
import re

import httpx
import pytest
from cozepy import APIApp, AppType, AsyncCoze, AsyncTokenAuth, Coze, CozeAPIError, TokenAuth

ID = re.compile(r"\d{19}")
VERIFY_TOKEN = re.compile(r"[A-Za-z0-9]{64}")
LOGID = re.compile(r"\d{14}[0-9A-F]+")
EVENT_TYPES = ["bot.published", "bot.deleted", "benefit.usage"]


def assert_logid(model):
    """The X-Tt-Logid header (what cozepy exposes) equals the body's detail.logid."""
    raw = model.response._raw_response
    assert model.response.logid == raw.json()["detail"]["logid"]
    assert LOGID.fullmatch(model.response.logid)


def expect_error(code: int, call, **kwargs) -> CozeAPIError:
    with pytest.raises(CozeAPIError) as caught:
        call(**kwargs)
    error = caught.value
    assert error.code == code, error
    assert error.msg and LOGID.fullmatch(error.logid or ""), error
    return error


def create_app(coze: Coze, name: str = "my app") -> APIApp:
    return coze.api_apps.create(app_type=AppType.NORMAL, name=name)


def find_app(coze: Coze, app_id: str) -> APIApp:
    (app,) = [app for app in coze.api_apps.list() if app.id == app_id]
    return app


def subscribed(coze: Coze, app_id: str) -> set:
    return {event.event_type for event in coze.api_apps.events.list(api_app_id=app_id)}


def assert_signed_verification(received, verify_token: str):
    headers = received.headers
    assert headers["content-type"].startswith("application/json")
    expected = hashlib.sha1(
        headers["x-coze-timestamp"].encode() + headers["x-coze-nonce"].encode() + verify_token.encode() + received.body
    ).hexdigest()
    assert headers["x-coze-signature"] == expected
    event = received.event
    assert event["header"]["event_type"] == "url_verification"
    assert event["header"]["event_id"] and isinstance(event["header"]["created_at"], int)
    assert event["event"]["challenge"]


def test_create_normal_app(server, tenant):
    app = create_app(tenant.coze, "订单回调")
    assert ID.fullmatch(app.id)
    assert app.app_type == AppType.NORMAL
    assert VERIFY_TOKEN.fullmatch(app.verify_token)
    assert app.name == "订单回调"
    assert app.callback_url is None and app.connector_id is None
    assert_logid(app)
    assert f"logid={app.response.logid}" in server.log.read_text()
    assert int(create_app(tenant.coze).id) > int(app.id)


def test_create_connector_app(admin, tenant):
    connector = admin.connector(tenant.user["id"], "my channel")
    app = tenant.coze.api_apps.create(app_type=AppType.CONNECTOR, connector_id=str(connector["id"]))
    assert ID.fullmatch(app.id)
    assert app.app_type == AppType.CONNECTOR
    assert app.connector_id == str(connector["id"])
    assert app.name == "my channel"
    assert VERIFY_TOKEN.fullmatch(app.verify_token)


def test_update_name(tenant):
    app = create_app(tenant.coze, "before")
    assert_logid(tenant.coze.api_apps.update(app_id=app.id, name="after"))
    updated = find_app(tenant.coze, app.id)
    assert updated.name == "after"
    assert updated.verify_token == app.verify_token


def test_update_callback_url_is_verified(tenant, receiver):
    app = create_app(tenant.coze)
    url = receiver.url("/hooks/ok")
    tenant.coze.api_apps.update(app_id=app.id, callback_url=url)
    assert find_app(tenant.coze, app.id).callback_url == url
    (verification,) = receiver.received
    assert verification.path == "/hooks/ok"
    assert_signed_verification(verification, app.verify_token)


@pytest.mark.parametrize("path, says", [("/wrong-challenge", "challenge"), ("/status-500", "500")])
def test_update_callback_url_failing_verification(tenant, receiver, path, says):
    app = create_app(tenant.coze)
    good = receiver.url("/good")
    tenant.coze.api_apps.update(app_id=app.id, callback_url=good)
    error = expect_error(4000, tenant.coze.api_apps.update, app_id=app.id, name="renamed", callback_url=receiver.url(path))
    assert says in error.msg.lower()
    unchanged = find_app(tenant.coze, app.id)
    assert (unchanged.callback_url, unchanged.name) == (good, app.name)
    assert [r.path for r in receiver.received] == ["/good", path]
    assert_signed_verification(receiver.received[1], app.verify_token)


def test_list_pages_newest_first(tenant):
    created = [create_app(tenant.coze, f"app {i}").id for i in range(7)]
    pager = tenant.coze.api_apps.list(page_size=3)
    assert_logid(pager)
    assert len(pager.items) == 3 and pager.has_more
    pages = list(pager.iter_pages())
    assert [len(page.items) for page in pages] == [3, 3, 1]
    assert not pages[-1].has_more
    assert [app.id for app in pager] == created[::-1]


@pytest.mark.parametrize("kwargs", [{"page_token": "forged"}, {"page_size": 0}, {"page_size": 51}])
def test_list_bad_paging(tenant, kwargs):
    expect_error(4000, tenant.coze.api_apps.list, **kwargs)


def test_list_app_type_filter(admin, tenant):
    normal = create_app(tenant.coze)
    connector = admin.connector(tenant.user["id"], "filtered channel")
    channel_app = tenant.coze.api_apps.create(app_type=AppType.CONNECTOR, connector_id=connector["id"])
    assert [app.id for app in tenant.coze.api_apps.list(app_type=AppType.CONNECTOR)] == [channel_app.id]
    assert [app.id for app in tenant.coze.api_apps.list(app_type=AppType.NORMAL)] == [normal.id]
    assert [app.id for app in tenant.coze.api_apps.list()] == [channel_app.id, normal.id]


def test_events_subscribe_list_unsubscribe(tenant):
    app = create_app(tenant.coze, "events app")
    events = tenant.coze.api_apps.events
    assert_logid(events.create(api_app_id=app.id, event_types=EVENT_TYPES))
    events.create(api_app_id=app.id, event_types=["bot.published"])  # idempotent
    items = list(events.list(api_app_id=app.id))
    assert sorted(item.event_type for item in items) == sorted(EVENT_TYPES)
    for item in items:
        assert (item.api_app_id, item.name) == (app.id, "events app")
        assert item.description
    assert {item.event_type: item.description for item in items}["bot.deleted"] == "智能体已被所有者删除"
    assert len(list(events.list(api_app_id=app.id, page_size=1).iter_pages())) == 3

    assert_logid(events.delete(api_app_id=app.id, event_types=["bot.deleted", "bot.unpublished"]))
    assert subscribed(tenant.coze, app.id) == {"bot.published", "benefit.usage"}


def test_events_unknown_type_changes_nothing(tenant):
    app = create_app(tenant.coze)
    events = tenant.coze.api_apps.events
    expect_error(4000, events.create, api_app_id=app.id, event_types=["bot.published", "bot.no_such_type"])
    expect_error(4000, events.create, api_app_id=app.id, event_types=[])
    assert subscribed(tenant.coze, app.id) == set()
    events.create(api_app_id=app.id, event_types=["bot.published"])
    expect_error(4000, events.delete, api_app_id=app.id, event_types=["bot.published", "bot.no_such_type"])
    assert subscribed(tenant.coze, app.id) == {"bot.published"}


def test_eligibility_refusals_are_4101_and_change_nothing(new_tenant):
    for edition, role in [("personal", "member"), ("enterprise", "admin")]:
        t = new_tenant(edition, role)
        app = create_app(t.coze)
        for event_type in ["benefit.plugin.scale.requested", "benefit.plugin.scale.expired"]:
            expect_error(4101, t.coze.api_apps.events.create, api_app_id=app.id, event_types=["bot.published", event_type])
        if edition == "personal":
            expect_error(4101, t.coze.api_apps.events.create, api_app_id=app.id, event_types=["benefit.usage"])
        else:
            t.coze.api_apps.events.create(api_app_id=app.id, event_types=["benefit.usage"])
        assert subscribed(t.coze, app.id) == (set() if edition == "personal" else {"benefit.usage"})


def test_plugin_scale_events_are_for_normal_apps_only(admin, tenant):
    connector = admin.connector(tenant.user["id"], "scale channel")
    app = tenant.coze.api_apps.create(app_type=AppType.CONNECTOR, connector_id=connector["id"])
    expect_error(4000, tenant.coze.api_apps.events.create, api_app_id=app.id, event_types=["benefit.plugin.scale.requested"])
    tenant.coze.api_apps.events.create(api_app_id=app.id, event_types=["bot.published"])


def test_delete_app(tenant):
    app = create_app(tenant.coze)
    assert_logid(tenant.coze.api_apps.delete(app_id=app.id))
    assert app.id not in [a.id for a in tenant.coze.api_apps.list()]
    expect_error(4200, tenant.coze.api_apps.update, app_id=app.id, name="ghost")
    expect_error(4200, tenant.coze.api_apps.delete, app_id=app.id)
    expect_error(4200, tenant.coze.api_apps.events.list, api_app_id=app.id)


def test_token_without_permission(server, admin, tenant):
    app = create_app(tenant.coze)
    token = admin.token(tenant.user["id"], ["listApiApp"])
    coze = Coze(auth=TokenAuth(token), base_url=server.base_url)
    assert [a.id for a in coze.api_apps.list()] == [app.id]
    expect_error(4101, coze.api_apps.create, app_type=AppType.NORMAL, name="x")
    expect_error(4101, coze.api_apps.update, app_id=app.id, name="x")
    expect_error(4101, coze.api_apps.delete, app_id=app.id)
    expect_error(4101, coze.api_apps.events.create, api_app_id=app.id, event_types=["bot.published"])
    expect_error(4101, coze.api_apps.events.delete, api_app_id=app.id, event_types=["bot.published"])
    assert find_app(tenant.coze, app.id).name == app.name


def test_other_account_sees_nothing(new_tenant):
    owner, stranger = new_tenant(), new_tenant()
    app = create_app(owner.coze)
    assert list(stranger.coze.api_apps.list()) == []
    expect_error(4200, stranger.coze.api_apps.update, app_id=app.id, name="hijacked")
    expect_error(4200, stranger.coze.api_apps.delete, app_id=app.id)
    expect_error(4200, stranger.coze.api_apps.events.create, api_app_id=app.id, event_types=["bot.published"])
    expect_error(4200, stranger.coze.api_apps.events.list, api_app_id=app.id)
    assert find_app(owner.coze, app.id).name == app.name


def test_enterprise_roles(server, admin, new_tenant):
    boss = new_tenant("enterprise", "super_admin")
    colleague = admin.user(boss.account["id"], "colleague", "admin")
    member = admin.user(boss.account["id"], "member", "member")
    colleague_coze = Coze(auth=TokenAuth(admin.token(colleague["id"])), base_url=server.base_url)
    member_coze = Coze(auth=TokenAuth(admin.token(member["id"])), base_url=server.base_url)
    app = create_app(boss.coze)
    expect_error(4101, member_coze.api_apps.create, app_type=AppType.NORMAL, name="x")
    colleague_coze.api_apps.update(app_id=app.id, name="renamed by colleague")
    assert find_app(boss.coze, app.id).name == "renamed by colleague"


def test_bad_tokens(server):
    for token in ["pat_" + "x" * 64, server.admin_token]:
        coze = Coze(auth=TokenAuth(token), base_url=server.base_url)
        expect_error(4100, coze.api_apps.list)


def test_async_client(server, tenant, receiver):
    async def flow():
        coze = AsyncCoze(auth=AsyncTokenAuth(tenant.token), base_url=server.base_url)
        apps = [await coze.api_apps.create(app_type=AppType.NORMAL, name=f"async {i}") for i in range(3)]
        app = apps[0]
        assert ID.fullmatch(app.id) and VERIFY_TOKEN.fullmatch(app.verify_token)
        assert_logid(app)

        pager = await coze.api_apps.list(page_size=2)
        assert [len(page.items) async for page in pager.iter_pages()] == [2, 1]
        assert [a.id async for a in pager] == [a.id for a in apps[::-1]]

        await coze.api_apps.update(app_id=app.id, name="async renamed", callback_url=receiver.url("/async"))
        (listed,) = [a async for a in await coze.api_apps.list() if a.id == app.id]
        assert (listed.name, listed.callback_url) == ("async renamed", receiver.url("/async"))
        assert_signed_verification(receiver.received[0], app.verify_token)
        with pytest.raises(CozeAPIError) as caught:
            await coze.api_apps.update(app_id=app.id, callback_url=receiver.url("/wrong-challenge"))
        assert caught.value.code == 4000

        events = coze.api_apps.events
        await events.create(api_app_id=app.id, event_types=EVENT_TYPES)
        items = [e async for e in await events.list(api_app_id=app.id)]
        assert {(e.api_app_id, e.name, e.event_type) for e in items} == {(app.id, "async renamed", t) for t in EVENT_TYPES}
        await events.delete(api_app_id=app.id, event_types=["benefit.usage"])
        assert {e.event_type async for e in await events.list(api_app_id=app.id)} == {"bot.published", "bot.deleted"}

        await coze.api_apps.delete(app_id=app.id)
        with pytest.raises(CozeAPIError) as caught:
            await coze.api_apps.update(app_id=app.id, name="gone")
        assert caught.value.code == 4200
        assert [a.id async for a in await coze.api_apps.list()] == [a.id for a in apps[:0:-1]]

    asyncio.run(flow())


def test_a_paused_app_still_parses(server, admin, tenant):
    """`paused` / `paused_reason` are huidiao extensions of ApiApp: cozepy ignores them."""
    app = create_app(tenant.coze, "paused")
    admin.post(f"/admin/v1/api_apps/{app.id}/pause", {"reason": "the receiver moved"})
    listed = find_app(tenant.coze, app.id)
    assert (listed.id, listed.name, listed.verify_token) == (app.id, "paused", app.verify_token)
    items = httpx.get(f"{server.base_url}/v1/api_apps", headers={"Authorization": f"Bearer {tenant.token}"}).json()
    raw = [a for a in items["data"]["items"] if a["id"] == app.id][0]
    assert (raw["paused"], raw["paused_reason"]) == (True, "the receiver moved")
    assert_logid(tenant.coze.api_apps.update(app_id=app.id, name="still paused"))
    assert find_app(tenant.coze, app.id).name == "still paused"
    admin.post(f"/admin/v1/api_apps/{app.id}/resume", {})
    assert find_app(tenant.coze, app.id).id == app.id
