// A paused app in the console (operator-api.md, "Operating an app's deliveries"): the apps list
// and the settings page say it is paused and why, Resume lets its waiting events go, "Replay
// failed deliveries" sends the failed ones again with their event_id, "Send test event" pushes a
// sample marked "test": true, and the owner can pause.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eventually, launchBrowser, makeTenant, openContext, startReceiver, startServer, unlabelledControls } from './harness.js';

describe('pausing and replaying in the console', { timeout: 120_000 }, () => {
  let server;
  let receiver;
  let browser;
  let tenant;
  let appId;

  const v1 = (method, pathAndQuery, body) => server.ok(method, pathAndQuery, { token: tenant.token, body });
  const listed = async () => (await v1('GET', '/v1/api_apps')).items.find((app) => app.id === appId);
  const publish = (event) =>
    server.ok('POST', '/admin/v1/events', { body: { event_type: 'bot.deleted', coze_account_id: tenant.accountId, event } });

  before(async () => {
    // No retries: a refused push fails at once.
    server = await startServer(['--retry-schedule', '']);
    receiver = await startReceiver();
    tenant = await makeTenant(server, 'Paused');
    ({ id: appId } = await v1('POST', '/v1/api_apps', { app_type: 'normal', name: '订单回调' }));
    await v1('PUT', `/v1/api_apps/${appId}`, { callback_url: `${receiver.url}/hook` });
    await v1('POST', `/v1/api_apps/${appId}/events`, { event_types: ['bot.deleted'] });
    await publish({ bot_id: '1', fail: true });
    await eventually(async () => {
      const { items } = await v1('GET', `/v1/api_apps/${appId}/deliveries`);
      assert.equal(items[0]?.status, 'failed');
    });
    await server.ok('POST', `/admin/v1/api_apps/${appId}/pause`, { body: { reason: 'the receiver is moving' } });
    await publish({ bot_id: '2' });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await receiver?.close();
    await server?.stop();
  });

  it('shows why an app is paused, resumes it and replays what failed', async () => {
    const { context, problems } = await openContext(browser);
    const page = await context.newPage();
    await page.addInitScript((token) => sessionStorage.setItem('huidiao.console.token', token), tenant.token);

    await page.goto(`${server.base}/console#/apps`);
    const card = page.locator(`li.app-card[data-app-id="${appId}"]`);
    await card.locator('.badge-paused').waitFor();
    assert.equal(await card.locator('.badge-paused').getAttribute('title'), 'the receiver is moving');

    await page.goto(`${server.base}/console#/apps/${appId}`);
    const paused = page.locator('.alert-warn.paused');
    await paused.waitFor();
    assert.equal(await paused.locator('.paused-reason').textContent(), 'the receiver is moving');
    assert.equal(receiver.events().length, 1, 'the event published while paused waits');
    assert.deepEqual(await unlabelledControls(page), []);

    await page.getByRole('button', { name: 'Resume deliveries' }).click();
    await page.getByText('Resumed: the waiting events are being pushed.').waitFor();
    assert.equal(await paused.count(), 0);
    assert.equal((await listed()).paused, false);
    await eventually(() => assert.equal(receiver.events().length, 2));
    assert.equal(receiver.events()[1].json.event.bot_id, '2');

    await page.getByRole('button', { name: 'Replay failed deliveries' }).click();
    await page.getByText('1 failed delivery queued again.').waitFor();
    await eventually(() => assert.equal(receiver.events().length, 3));
    const [failed, , replayed] = receiver.events();
    assert.equal(replayed.json.header.event_id, failed.json.header.event_id, 'the original event_id');
    assert.equal(replayed.body, failed.body, 'the same body');

    await page.getByLabel('Test event type').selectOption('bot.published');
    await page.getByRole('button', { name: 'Send test event' }).click();
    await page.getByText(/^Test event sent: delivery \d+\.$/).waitFor();
    await eventually(() => assert.equal(receiver.events().length, 4));
    const test = receiver.events()[3].json;
    assert.equal(test.header.test, true, 'marked as a test');
    assert.equal(test.header.event_type, 'bot.published', 'of the chosen type, subscribed or not');

    await page.getByLabel('Reason for pausing (optional)').fill('maintenance window');
    await page.getByRole('button', { name: 'Pause deliveries' }).click();
    await page.locator('.alert-warn.paused .paused-reason').getByText('maintenance window').waitFor();
    const now = await listed();
    assert.equal(now.paused, true);
    assert.equal(now.paused_reason, 'maintenance window');
    assert.deepEqual(problems, []);
    await context.close();
  });
});
