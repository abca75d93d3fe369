// The web console end to end in headless Chromium against the real server: sign in, create
// apps, verify a callback URL, subscribe, watch deliveries arrive live, read one, resend it,
// delete the app, sign out. Screenshots of the main pages go to docs/screenshots/.

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  eventually,
  launchBrowser,
  makeTenant,
  openContext,
  SCREENSHOTS,
  startReceiver,
  startServer,
  unlabelledControls,
} from './harness.js';

const LOGID = /^\d{14}[0-9A-F]{6,}$/;

describe('web console', { timeout: 240_000 }, () => {
  let server;
  let receiver;
  let browser;
  let tenant;
  let connector;
  let context;
  let problems;
  let page;
  let appId;
  let connectorAppId;

  const shot = (name, options = {}) => page.screenshot({ path: path.join(SCREENSHOTS, name), ...options });
  const v1 = (method, pathAndQuery, body) => server.ok(method, pathAndQuery, { token: tenant.token, body });
  const publish = (eventType, event) =>
    server.ok('POST', '/admin/v1/events', { body: { event_type: eventType, coze_account_id: tenant.accountId, event } });

  before(async () => {
    await mkdir(SCREENSHOTS, { recursive: true });
    // A short retry schedule so that a delivery the receiver refuses is `failed` within a second.
    server = await startServer(['--retry-schedule', '200ms,200ms']);
    receiver = await startReceiver();
    tenant = await makeTenant(server, 'Acme');
    connector = await server.ok('POST', `/admin/v1/users/${tenant.userId}/connectors`, { body: { name: '微信客服渠道' } });
    browser = await launchBrowser();
    ({ context, problems } = await openContext(browser));
    page = await context.newPage();
  });

  after(async () => {
    await browser?.close();
    await receiver?.close();
    await server?.stop();
  });

  it('serves the console with a Content-Security-Policy and refuses a wrong token', async () => {
    const response = await page.goto(`${server.base}/console`);
    assert.equal(response.status(), 200);
    assert.match(response.headers()['content-security-policy'], /default-src 'self'/);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    assert.deepEqual(await unlabelledControls(page), []);
    await shot('signin.png');

    await page.getByLabel('Personal access token').fill('pat_not_a_real_token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    const error = page.locator('.alert-error');
    await error.waitFor();
    assert.match(await error.locator('.alert-msg').textContent(), /token/i);
    assert.match(await error.textContent(), /code 4100/);
    assert.match(await error.locator('code.logid').textContent(), LOGID);
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  });

  it('signs in with the keyboard and keeps the token in sessionStorage only', async () => {
    const input = page.getByLabel('Personal access token');
    await input.fill('');
    await input.focus();
    await page.keyboard.type(tenant.token);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Callback apps', level: 1 }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('huidiao.console.token')), tenant.token);
    assert.equal(await page.evaluate(() => localStorage.length), 0);
    assert.ok(!page.url().includes(tenant.token), 'the token is never in the URL');
    await page.getByText('No apps yet').waitFor();
  });

  it('creates a normal app and a connector app', async () => {
    const toggle = page.getByRole('button', { name: 'New app' });
    await toggle.focus();
    await page.keyboard.press('Enter');
    assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
    await page.getByRole('textbox', { name: 'Name' }).fill('Orders webhook');
    await page.getByRole('button', { name: 'Create app' }).click();
    await page.getByRole('heading', { name: 'Orders webhook', level: 1 }).waitFor();
    await page.getByText('App “Orders webhook” created.').waitFor();
    appId = decodeURIComponent(new URL(page.url()).hash.split('/')[2]);
    assert.match(appId, /^\d{19}$/);

    await page.getByRole('link', { name: 'Apps', exact: true }).first().click();
    await page.getByRole('button', { name: 'New app' }).click();
    await page.locator('#create-app').getByRole('radio', { name: 'Connector' }).check();
    await page.getByLabel('Connector ID').fill(connector.id);
    await page.getByRole('button', { name: 'Create app' }).click();
    await page.getByRole('heading', { name: '微信客服渠道', level: 1 }).waitFor();
    connectorAppId = decodeURIComponent(new URL(page.url()).hash.split('/')[2]);

    // Connector apps cannot take the two benefit.plugin.scale events: their boxes are disabled.
    await page.getByRole('checkbox').first().waitFor();
    for (const type of ['benefit.plugin.scale.requested', 'benefit.plugin.scale.expired']) {
      assert.equal(await page.getByRole('checkbox', { name: new RegExp(type.replaceAll('.', '\\.')) }).isDisabled(), true);
    }
    assert.equal(await page.getByRole('checkbox', { name: /bot\.published/ }).isDisabled(), false);

    const apps = await v1('GET', '/v1/api_apps');
    assert.deepEqual(apps.items.map((a) => a.app_type).sort(), ['connector', 'normal']);
  });

  it('shows what a callback URL did wrong, then verifies and saves a good one', async () => {
    await page.goto(`${server.base}/console#/apps/${appId}`);
    await page.getByRole('heading', { name: 'Orders webhook', level: 1 }).waitFor();
    const url = page.getByRole('textbox', { name: 'Callback URL' });
    const result = page.locator('form:has(#callback-url) .result');

    await url.fill(`${receiver.url}/wrong-challenge`);
    await page.getByRole('button', { name: 'Verify and save' }).click();
    await result.locator('.alert-error').waitFor();
    assert.match(await result.textContent(), /Verification failed/);
    assert.match(await result.locator('.alert-msg').textContent(), /challenge/);
    assert.match(await result.locator('code.logid').textContent(), LOGID);
    let app = (await v1('GET', '/v1/api_apps')).items.find((a) => a.id === appId);
    assert.equal(app.callback_url, undefined, 'a failed verification saves nothing');

    await url.fill(`${receiver.url}/callback`);
    await page.getByRole('button', { name: 'Verify and save' }).click();
    await result.locator('.alert-success').waitFor();
    assert.match(await result.textContent(), /Verified/);
    app = (await v1('GET', '/v1/api_apps')).items.find((a) => a.id === appId);
    assert.equal(app.callback_url, `${receiver.url}/callback`);
  });

  it('reveals and copies the verify token', async () => {
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.base });
    const app = (await v1('GET', '/v1/api_apps')).items.find((a) => a.id === appId);
    const token = page.locator('#verify-token');
    assert.equal(await token.getAttribute('type'), 'password');
    await page.getByRole('button', { name: 'Reveal' }).click();
    assert.equal(await token.getAttribute('type'), 'text');
    assert.equal(await token.inputValue(), app.verify_token);
    await page.getByRole('button', { name: 'Hide' }).waitFor();
    await page.getByRole('button', { name: 'Copy', exact: true }).click();
    await page.getByText('Copied to the clipboard.').waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), app.verify_token);
    await page.getByRole('button', { name: 'Hide' }).click();
  });

  it('renames the app and subscribes and unsubscribes with the checkboxes', async () => {
    await page.getByRole('textbox', { name: 'Name' }).fill('Orders webhook (prod)');
    await page.getByRole('button', { name: 'Rename' }).click();
    await page.getByRole('heading', { name: 'Orders webhook (prod)', level: 1 }).waitFor();

    const save = page.getByRole('button', { name: 'Save subscriptions' });
    for (const type of ['bot.published', 'bot.deleted', 'benefit.usage']) {
      await page.getByRole('checkbox', { name: new RegExp(`^${type.replaceAll('.', '\\.')}`) }).check();
    }
    await save.click();
    await page.getByText('Subscriptions saved (3 added, 0 removed).').waitFor();
    let events = await v1('GET', `/v1/api_apps/${appId}/events`);
    assert.deepEqual(events.items.map((e) => e.event_type).sort(), ['benefit.usage', 'bot.deleted', 'bot.published']);

    await page.getByRole('checkbox', { name: /^benefit\.usage/ }).uncheck();
    await save.click();
    await page.getByText('Subscriptions saved (0 added, 1 removed).').waitFor();
    events = await v1('GET', `/v1/api_apps/${appId}/events`);
    assert.deepEqual(events.items.map((e) => e.event_type).sort(), ['bot.deleted', 'bot.published']);

    assert.deepEqual(await unlabelledControls(page), []);
    await shot('app.png', { fullPage: true });

    // The connector app gets a URL whose events the receiver also accepts.
    await v1('PUT', `/v1/api_apps/${connectorAppId}`, { callback_url: `${receiver.url}/channel` });
    await v1('POST', `/v1/api_apps/${connectorAppId}/events`, { event_types: ['bot.published'] });
  });

  it('shows deliveries as they happen, filters them, and opens one with every attempt', async () => {
    await page.getByRole('link', { name: 'Deliveries' }).click();
    await page.getByRole('heading', { name: 'Deliveries', level: 2 }).waitFor();
    await page.getByText('No deliveries yet.').waitFor();

    // Published while the page is open: the table must pick them up by itself.
    await publish('bot.deleted', { bot_id: '7512045450401153075', fail: true });
    await publish('bot.published', { bot_id: '7512045450401153076', bot_name: '订单助手', user_id: '1' });
    for (let i = 0; i < 4; i++) await publish('bot.deleted', { bot_id: `75120454504011531${i}0` });
    await publish('bot.published', { bot_id: '7512045450401153077', bot_name: 'Weather', user_id: '2' });

    const rows = page.locator('table.deliveries tbody tr[data-id]');
    await eventually(async () => {
      assert.equal(await rows.count(), 7);
      assert.equal(await page.locator('tbody .status-succeeded').count(), 6);
      assert.equal(await page.locator('tbody .status-failed').count(), 1);
    });
    // Latency comes from each delivery's attempt log.
    await eventually(async () => assert.match(await rows.first().locator('td.col-latency').textContent(), /\d+(\.\d+)? m?s$/));

    await page.getByLabel('Status').selectOption('failed');
    await eventually(async () => assert.equal(await rows.count(), 1));
    assert.equal(await rows.first().locator('td.col-attempts').textContent(), '3');
    assert.equal(await rows.first().locator('td.col-lastStatus').textContent(), '500');
    await page.getByLabel('Status').selectOption('');
    await page.getByLabel('Event type').selectOption('bot.published');
    await eventually(async () => assert.equal(await rows.count(), 2));
    await page.getByLabel('Event type').selectOption('');
    await eventually(async () => assert.equal(await rows.count(), 7));

    // The chart counts the last hour per minute by outcome.
    await eventually(async () => {
      assert.ok((await page.locator('svg.chart rect.bar.status-succeeded').count()) >= 1);
      assert.ok((await page.locator('svg.chart rect.bar.status-failed').count()) >= 1);
      assert.match(await page.locator('.chart-summary').textContent(), /6 succeeded · 1 failed/);
      assert.match(await page.locator('.chart-stats').textContent(), /9 attempts, 3 failed; latency p50 \d+ ms, p99 \d+ ms/);
    });

    // The newest delivery: bot.published "Weather".
    const newest = rows.first();
    const deliveryId = await newest.getAttribute('data-id');
    await newest.locator('a').click();
    const detail = page.locator('section.detail');
    await detail.getByRole('heading', { name: `Delivery ${deliveryId}` }).waitFor();
    await detail.getByText('1 attempt', { exact: true }).waitFor();
    const pushed = receiver.events().find((r) => r.json.event.bot_name === 'Weather');
    assert.equal(await detail.locator('pre.body').textContent(), pushed.body, 'the exact body sent');
    const headers = await detail.locator('.attempt pre').first().textContent();
    assert.ok(headers.includes(`X-Coze-Signature: ${pushed.headers['x-coze-signature']}`), headers);
    assert.match(await detail.locator('.attempt-head').textContent(), /HTTP 200/);
    assert.equal(await page.locator('tbody tr.selected').getAttribute('data-id'), deliveryId);
    assert.deepEqual(await unlabelledControls(page), []);
    // Tall enough for the detail (which scrolls by itself beside the table) to show the body.
    await page.setViewportSize({ width: 1280, height: 1500 });
    await shot('deliveries.png');
    await page.setViewportSize({ width: 1280, height: 800 });

    // Resend: a second attempt with the same event_id shows up without a reload.
    await detail.getByRole('button', { name: 'Resend' }).click();
    await detail.getByText(/Queued again/).waitFor();
    await detail.getByText('2 attempts', { exact: true }).waitFor({ timeout: 15_000 });
    const sends = receiver.events().filter((r) => r.json.header.event_id === pushed.json.header.event_id);
    assert.equal(sends.length, 2);

    // Closing the detail gives focus back to the delivery's row.
    await detail.getByRole('link', { name: 'Close' }).click();
    await detail.waitFor({ state: 'hidden' });
    assert.equal(await page.evaluate(() => document.activeElement.closest('tr')?.dataset.id), deliveryId);
  });

  it('lists the apps as cards with URL, events and delivery health, filtered by type', async () => {
    await page.getByRole('link', { name: 'Apps', exact: true }).first().click();
    const card = page.locator(`li.app-card[data-app-id="${appId}"]`);
    await card.waitFor();
    await eventually(async () => {
      const text = await card.textContent();
      assert.ok(text.includes(`${receiver.url}/callback`), text);
      assert.ok(text.includes('bot.published') && text.includes('bot.deleted'), text);
      assert.ok(text.includes('Some failures'), text);
    });
    const channelCard = page.locator(`li.app-card[data-app-id="${connectorAppId}"]`);
    await eventually(async () => assert.match(await channelCard.textContent(), /No deliveries yet/));
    assert.match(await channelCard.textContent(), new RegExp(connector.id));
    await shot('apps.png', { fullPage: true });

    await page.locator('fieldset.segmented').getByText('Connector', { exact: true }).click();
    await eventually(async () => {
      assert.equal(await page.locator('li.app-card').count(), 1);
      assert.equal(await page.locator('li.app-card').getAttribute('data-app-id'), connectorAppId);
    });
    await page.locator('fieldset.segmented').getByText('All', { exact: true }).click();
    await eventually(async () => assert.equal(await page.locator('li.app-card').count(), 2));
  });

  it('is usable on a narrow screen', async () => {
    const narrow = await context.newPage();
    await narrow.setViewportSize({ width: 390, height: 844 });
    // sessionStorage belongs to one tab: the new tab signs in again.
    await narrow.goto(`${server.base}/console#/apps/${appId}/deliveries`);
    await narrow.getByLabel('Personal access token').fill(tenant.token);
    await narrow.getByRole('button', { name: 'Sign in' }).click();
    await narrow.locator('table.deliveries tbody tr[data-id]').first().waitFor();
    const overflow = () => narrow.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.equal(await overflow(), 0, 'no horizontal scrolling on the deliveries page');
    await narrow.screenshot({ path: path.join(SCREENSHOTS, 'narrow-deliveries.png'), fullPage: true });
    await narrow.goto(`${server.base}/console#/apps`);
    await narrow.locator('li.app-card').first().waitFor();
    assert.equal(await overflow(), 0, 'no horizontal scrolling on the apps list');
    await narrow.close();
  });

  it('shows Chinese labels when the browser language is Chinese', async () => {
    const zh = await openContext(browser, { locale: 'zh-CN' });
    const zhPage = await zh.context.newPage();
    await zhPage.goto(`${server.base}/console`);
    await zhPage.getByRole('heading', { name: '登录' }).waitFor();
    assert.equal(await zhPage.getAttribute('html', 'lang'), 'zh-CN');
    await zhPage.getByLabel('个人访问令牌').fill(tenant.token);
    await zhPage.getByRole('button', { name: '登录' }).click();
    await zhPage.getByRole('heading', { name: '回调应用', level: 1 }).waitFor();
    await zhPage.locator('.health').first().waitFor();
    await zhPage.goto(`${server.base}/console#/apps/${appId}`);
    await zhPage.getByRole('heading', { name: '事件订阅' }).waitFor();
    await zhPage.getByText('智能体已被所有者删除').waitFor();
    await zhPage.screenshot({ path: path.join(SCREENSHOTS, 'app-zh.png'), fullPage: true });
    await zh.context.close();
    assert.deepEqual(zh.problems, []);
  });

  it('shows a route that is not valid percent-encoding as not found', async () => {
    // decodeURIComponent throws on it; the console once let that escape as an uncaught URIError.
    await page.goto(`${server.base}/console#/apps/%E0%A4%A/deliveries`);
    await page.getByRole('heading', { name: 'Page not found', level: 1 }).waitFor();
  });

  it('deletes an app only after confirmation', async () => {
    await page.goto(`${server.base}/console#/apps/${connectorAppId}`);
    await page.getByRole('button', { name: 'Delete app…' }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete “微信客服渠道”?' });
    await dialog.waitFor();
    // Cancel has the focus, so Enter right away deletes nothing.
    assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Cancel');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    assert.equal((await v1('GET', '/v1/api_apps')).items.length, 2);

    await page.getByRole('button', { name: 'Delete app…' }).click();
    await dialog.getByRole('button', { name: 'Delete', exact: true }).click();
    await page.getByRole('heading', { name: 'Callback apps', level: 1 }).waitFor();
    await page.getByText('App “微信客服渠道” deleted.').waitFor();
    await eventually(async () => assert.equal(await page.locator('li.app-card').count(), 1));
    const apps = await v1('GET', '/v1/api_apps');
    assert.deepEqual(
      apps.items.map((a) => a.id),
      [appId],
    );
  });

  it('signs out and forgets the token', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.getByText('You have signed out.').waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    await page.reload();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  });

  it('reached nothing but 127.0.0.1 and logged no errors', () => {
    assert.deepEqual(problems, []);
  });
});
