// Test support: the real huidiao binary on a free port, the operator API, a callback receiver
// and headless Chromium. Everything listens on and talks to 127.0.0.1 only.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Where the test run leaves its screenshots (docs/console.md shows them). */
export const SCREENSHOTS = process.env.HUIDIAO_SCREENSHOTS ?? path.join(REPO, 'docs', 'screenshots');

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Starts `huidiao serve` on 127.0.0.1:0 and waits for its "huidiao ready" line, which names the
 * port. `extraArgs` are more flags.
 */
export async function startServer(extraArgs = []) {
  const bin = process.env.HUIDIAO_BIN ?? path.join(REPO, 'target', 'debug', 'huidiao');
  const dataDir = await mkdtemp(path.join(tmpdir(), 'huidiao-console-'));
  const adminToken = randomBytes(24).toString('hex');
  const child = spawn(
    bin,
    ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--allow-private-callback-urls', ...extraArgs],
    {
      env: { ...process.env, HUIDIAO_ADMIN_TOKEN: adminToken, HUIDIAO_LOG: 'info' },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  const log = [];
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`huidiao did not get ready in 30 s:\n${log.join('\n')}`)), 30_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`could not start ${bin} (set HUIDIAO_BIN): ${error.message}`));
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`huidiao exited with ${code} before it was ready:\n${log.join('\n')}`));
    });
    createInterface({ input: child.stderr }).on('line', (raw) => {
      const line = raw.replace(/\x1b\[[0-9;]*m/g, '');
      log.push(line);
      const match = line.includes('huidiao ready') && line.match(/listen=(127\.0\.0\.1:\d+)/);
      if (match) {
        clearTimeout(timer);
        resolve(`http://${match[1]}`);
      }
    });
  });
  const base = await ready;
  const server = {
    base,
    adminToken,
    log,
    /** One request with a bearer token; answers the HTTP status and the parsed envelope. */
    async call(method, pathAndQuery, { token = adminToken, body } = {}) {
      const response = await fetch(base + pathAndQuery, {
        method,
        headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      return { status: response.status, headers: response.headers, envelope: await response.json() };
    },
    /** Like call, but fails unless code is 0; answers data. */
    async ok(method, pathAndQuery, options) {
      const { envelope } = await this.call(method, pathAndQuery, options);
      if (envelope.code !== 0) throw new Error(`${method} ${pathAndQuery}: ${JSON.stringify(envelope)}`);
      return envelope.data;
    },
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  return server;
}

/**
 * A team account with one admin, marked plugin developer so that every event type may be
 * subscribed (benefit.usage needs a paid edition), and a PAT carrying all six permissions.
 */
export async function makeTenant(server, name) {
  const account = await server.ok('POST', '/admin/v1/accounts', { body: { name, edition: 'team' } });
  const body = { name: `${name} dev`, role: 'admin', plugin_developer: true };
  const user = await server.ok('POST', `/admin/v1/accounts/${account.id}/users`, { body });
  const { token } = await server.ok('POST', `/admin/v1/users/${user.id}/tokens`, { body: {} });
  return { accountId: account.id, userId: user.id, token };
}

/** A channel's answer to bot.published that it cannot decide yet (coze-callbacks.md §6). */
export const IN_REVIEW = { audit: { audit_status: 1, reason: '人工审核中' }, share_link: 'https://example.com/share/bot' };

/**
 * A callback receiver: echoes url_verification challenges (except on /wrong-challenge, which
 * answers a wrong one) and answers 200 {} to events (IN_REVIEW on /in-review), or 500 to events
 * whose `event.fail` is true. Every request is recorded with its raw body and headers.
 */
export async function startReceiver() {
  const requests = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let parsed = null;
      try {
        parsed = JSON.parse(body);
      } catch {
        // Recorded as is; answered 400 below.
      }
      requests.push({ path: req.url, headers: req.headers, body, json: parsed });
      const reply = (status, value) => {
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(value));
      };
      if (!parsed) return reply(400, { error: 'not json' });
      if (parsed.header?.event_type === 'url_verification') {
        const challenge = req.url === '/wrong-challenge' ? 'not-the-challenge' : parsed.event.challenge;
        return reply(200, { challenge });
      }
      if (parsed.event?.fail) return reply(500, { error: 'receiver refused this event on purpose' });
      if (req.url === '/in-review') return reply(200, IN_REVIEW);
      return reply(200, {});
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    /** Pushed events (not verification challenges). */
    events: () => requests.filter((r) => r.json?.header?.event_type !== 'url_verification'),
    /** Stops at once: idle keep-alive connections are closed rather than waited out. */
    close: () =>
      new Promise((resolve) => {
        server.close(resolve);
        server.closeAllConnections();
      }),
  };
}

/** Debian's Chromium, headless, with nothing that phones home. */
export function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/**
 * A browser context that may reach 127.0.0.1 only: any other request is aborted and recorded,
 * as is every console error or warning and uncaught page error (a CSP violation is one).
 */
export async function openContext(browser, options = {}) {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 800 },
    locale: 'en-US',
    reducedMotion: 'reduce',
    ...options,
  });
  const problems = [];
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === '127.0.0.1') return route.continue();
    problems.push(`request to a host other than 127.0.0.1: ${url.href}`);
    return route.abort();
  });
  context.on('page', (page) => watchPage(page, problems));
  return { context, problems };
}

function watchPage(page, problems) {
  page.on('console', (message) => {
    // API errors the tests provoke (a refused token, a failed verification) are answered 4xx,
    // which Chromium logs as failed resources; any other failed resource is a problem.
    const expected = /status of 4\d\d/.test(message.text()) && message.location()?.url?.includes('/v1/');
    if (['error', 'warning'].includes(message.type()) && !expected) {
      problems.push(`console ${message.type()}: ${message.text()}`);
    }
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
}

/** Retries `check` (which throws while its condition does not hold) until it passes. */
export async function eventually(check, { timeout = 15_000, interval = 100 } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, interval));
    }
  }
}

/** Every form control on the page has an accessible name, and every button says what it does. */
export async function unlabelledControls(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('input, select, textarea, button')]
      .filter((el) => el.type !== 'hidden' && !el.closest('[hidden]') && !el.classList.contains('visually-hidden'))
      .filter((el) => {
        const labelled = el.labels?.length > 0 || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
        return !(labelled || (el.tagName === 'BUTTON' && el.textContent.trim()));
      })
      .map((el) => el.outerHTML.slice(0, 120)),
  );
}
