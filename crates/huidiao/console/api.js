// The console's only way to the server: the public HTTP API (the /v1/api_apps endpoints cozepy
// uses, and the delivery log), with the personal access token the user signed in with.

import { t } from './i18n.js';

const TOKEN_KEY = 'huidiao.console.token';

/** The token lives in this tab's sessionStorage only: gone when the tab closes, never in a URL. */
export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  signIn(token) {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

/** An answer whose code is not 0, or no answer at all: msg and logid are shown to the user. */
export class ApiError extends Error {
  constructor({ code, msg, logid, status }) {
    super(msg);
    this.code = code;
    this.logid = logid;
    this.status = status;
  }
}

let onUnauthenticated = () => {};

/** Called when the server refuses the signed-in token (code 4100), e.g. after it was revoked. */
export function whenUnauthenticated(handler) {
  onUnauthenticated = handler;
}

async function call(method, path, { query, body, token = session.token } = {}) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== '') params.set(name, String(value));
  }
  const url = params.toString() ? `${path}?${params}` : path;
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch {
    throw new ApiError({ code: -1, msg: t('error.network'), logid: '', status: 0 });
  }
  let envelope = null;
  try {
    envelope = await response.json();
  } catch {
    // Not JSON: reported below with the HTTP status.
  }
  const logid = envelope?.detail?.logid ?? response.headers.get('x-tt-logid') ?? '';
  if (typeof envelope?.code !== 'number') {
    throw new ApiError({ code: -1, msg: t('error.notEnvelope', { status: response.status }), logid, status: response.status });
  }
  if (envelope.code !== 0) {
    const error = new ApiError({ code: envelope.code, msg: envelope.msg, logid, status: response.status });
    if (envelope.code === 4100 && token === session.token) onUnauthenticated(error);
    throw error;
  }
  return envelope.data;
}

const app = (id) => `/v1/api_apps/${encodeURIComponent(id)}`;

export const api = {
  /** Checks a token before keeping it: listing one app needs only listApiApp. */
  checkToken: (token) => call('GET', '/v1/api_apps', { query: { page_size: 1 }, token }),
  listApps: (query) => call('GET', '/v1/api_apps', { query }),
  createApp: (body) => call('POST', '/v1/api_apps', { body }),
  updateApp: (id, body) => call('PUT', app(id), { body }),
  deleteApp: (id) => call('DELETE', app(id)),
  listEvents: (id, query) => call('GET', `${app(id)}/events`, { query }),
  subscribe: (id, eventTypes) => call('POST', `${app(id)}/events`, { body: { event_types: eventTypes } }),
  // cozepy sends the event types as a JSON body on DELETE, and so does the console.
  unsubscribe: (id, eventTypes) => call('DELETE', `${app(id)}/events`, { body: { event_types: eventTypes } }),
  listDeliveries: (id, query) => call('GET', `${app(id)}/deliveries`, { query }),
  getDelivery: (id, deliveryId) => call('GET', `${app(id)}/deliveries/${encodeURIComponent(deliveryId)}`),
  resend: (id, deliveryId) => call('POST', `${app(id)}/deliveries/${encodeURIComponent(deliveryId)}/resend`),
  pause: (id, reason) => call('POST', `${app(id)}/pause`, { body: reason ? { reason } : {} }),
  resume: (id) => call('POST', `${app(id)}/resume`),
  replay: (id, filter) => call('POST', `${app(id)}/deliveries/replay`, { body: filter }),
  testEvent: (id, eventType) => call('POST', `${app(id)}/test_event`, { body: { event_type: eventType } }),
  stats: (id, query) => call('GET', `${app(id)}/stats`, { query }),
};

/**
 * Follows next_page_token from the first page. Stops after maxPages, or as soon as `enough`
 * says the items so far suffice; `complete` tells whether the list was read to its end.
 */
export async function readPages(fetchPage, { maxPages = 20, enough = () => false } = {}) {
  const items = [];
  let pageToken = '';
  for (let page = 0; page < maxPages; page++) {
    const data = await fetchPage({ page_size: 50, page_token: pageToken });
    items.push(...data.items);
    pageToken = data.has_more ? data.next_page_token : '';
    if (!pageToken) return { items, complete: true };
    if (enough(items)) return { items, complete: false };
  }
  return { items, complete: false };
}

/** An app by id. There is no GET for one app in the Coze API, so it is found in the list. */
export async function findApp(id) {
  let pageToken = '';
  do {
    const data = await api.listApps({ page_size: 50, page_token: pageToken });
    const found = data.items.find((item) => item.id === id);
    if (found) return found;
    pageToken = data.has_more ? data.next_page_token : '';
  } while (pageToken);
  return null;
}

/** Runs `work` over items with at most `limit` requests in flight, so big lists stay polite. */
export async function eachLimited(items, limit, work) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++];
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
