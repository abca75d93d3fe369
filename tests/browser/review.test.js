// The channel review in the console (coze-callbacks.md §6): a connector app's delivery of
// bot.published shows the review its answer gave and every later update, in both languages.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eventually, IN_REVIEW, launchBrowser, makeTenant, openContext, startReceiver, startServer } from './harness.js';

const BOT = '7512045450401153075';

describe('channel reviews in the console', { timeout: 120_000 }, () => {
  let server;
  let receiver;
  let browser;
  let tenant;
  let connectorId;
  let appId;
  let deliveryId;

  const v1 = (method, pathAndQuery, body) => server.ok(method, pathAndQuery, { token: tenant.token, body });

  before(async () => {
    server = await startServer();
    receiver = await startReceiver();
    tenant = await makeTenant(server, 'Channel');
    ({ id: connectorId } = await server.ok('POST', `/admin/v1/users/${tenant.userId}/connectors`, { body: { name: '审核渠道' } }));
    ({ id: appId } = await v1('POST', '/v1/api_apps', { app_type: 'connector', connector_id: connectorId }));
    await v1('PUT', `/v1/api_apps/${appId}`, { callback_url: `${receiver.url}/in-review` });
    await v1('POST', `/v1/api_apps/${appId}/events`, { event_types: ['bot.published'] });
    const publisher = await makeTenant(server, 'Publisher');
    const event = { user_id: 7400000000000000001, bot_id: BOT, bot_name: '客服助手', description: '回答订单问题' };
    await server.ok('POST', '/admin/v1/events', {
      body: { event_type: 'bot.published', coze_account_id: publisher.accountId, connector_ids: [connectorId], event },
    });
    deliveryId = await eventually(async () => {
      const { items } = await v1('GET', `/v1/api_apps/${appId}/deliveries`);
      assert.equal(items[0]?.status, 'succeeded');
      return items[0].id;
    });
    // The channel decides later, as Coze's docs tell it to: rejected, with a reason.
    await v1('PUT', `/v1/connectors/${connectorId}/bots/${BOT}`, { audit_status: 3, reason: '含违规内容' });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await receiver?.close();
    await server?.stop();
  });

  async function openDelivery(locale) {
    const { context, problems } = await openContext(browser, { locale });
    const page = await context.newPage();
    await page.addInitScript((token) => sessionStorage.setItem('huidiao.console.token', token), tenant.token);
    await page.goto(`${server.base}/console#/apps/${appId}/deliveries/${deliveryId}`);
    const review = page.locator('section.review');
    await review.waitFor();
    return { context, problems, review };
  }

  it("shows the channel's answer, its update and the history", async () => {
    const { context, problems, review } = await openDelivery('en-US');
    await review.getByRole('heading', { name: 'Channel review' }).waitFor();
    const facts = await review.locator('dl.facts').textContent();
    assert.match(facts, /rejected/);
    assert.match(facts, /含违规内容/);
    assert.match(facts, /a later update/);
    assert.ok(facts.includes(IN_REVIEW.share_link), facts);
    await review.getByText('2 changes').waitFor();
    const history = await review.locator('ol.review-history li').allTextContents();
    assert.equal(history.length, 2);
    assert.match(history[0], /in review.*the answer to the push.*人工审核中/);
    assert.match(history[1], /rejected.*a later update.*含违规内容/);
    // The delivery's own answer stays what the channel first said.
    const detail = await context.pages()[0].locator('section.detail dl.facts').first().textContent();
    assert.match(detail, /Channel review\s*in review — 人工审核中/);
    assert.deepEqual(problems, []);
    await context.close();
  });

  it('speaks Chinese to Chinese browsers', async () => {
    const { context, problems, review } = await openDelivery('zh-CN');
    await review.getByRole('heading', { name: '渠道审核' }).waitFor();
    assert.match(await review.textContent(), /审核不通过.*之后的更新审核结果/s);
    await review.getByText('2 次变更').waitFor();
    assert.deepEqual(problems, []);
    await context.close();
  });
});
