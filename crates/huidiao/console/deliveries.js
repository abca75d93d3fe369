// An app's delivery log: a chart of the last hour, a live table (polled every 2 s) with filters,
// and one delivery's detail with every attempt, the exact body and headers sent, and resend.

import { api, eachLimited, readPages } from './api.js';
import { chartSvg, outcomeLabel, OUTCOMES, perMinute, totals } from './chart.js';
import { copyText, formatDateTime, formatLatency, formatTime, h, replaceKeepingFocus } from './dom.js';
import { EVENT_TYPES, statusLabel, t } from './i18n.js';
import { auditLabel, reviewSection } from './review.js';
import { appFrame, errorBox, statusBadge, successBox } from './views.js';

const POLL_MS = 2000;
const HOUR = 3_600_000;
/** The chart reads at most this many pages (50 each) of the newest deliveries. */
const CHART_MAX_PAGES = 10;
const STATUSES = ['pending', 'succeeded', 'failed', 'cancelled', 'skipped'];

export function deliveriesView({ main, route }) {
  const appId = route.appId;
  const frame = appFrame(main, appId, 'deliveries');
  const view = {
    alive: true,
    paused: false,
    status: '',
    eventType: '',
    pages: 1,
    deliveryId: route.deliveryId,
    items: [],
    hasMore: false,
  };
  /** Latency of the latest attempt, by "delivery id:attempt count", read from the detail. */
  const latencies = new Map();
  const latencyWanted = new Set();
  let timer = null;
  let inFlight = false;
  let again = false;
  let drawn = { table: '', chart: '', detail: '' };

  // ---- the page -------------------------------------------------------------------------------
  const chartHost = h('div', { class: 'chart-host' });
  const chartSummary = h('p', { class: 'chart-summary', id: 'chart-summary' });
  const chartStats = h('p', { class: 'chart-stats' });
  const chartCard = h(
    'section',
    { class: 'card chart-card', 'aria-labelledby': 'chart-title' },
    h('h2', { id: 'chart-title' }, t('chart.title')),
    chartHost,
    h(
      'ul',
      { class: 'legend' },
      OUTCOMES.map((o) => h('li', {}, h('span', { class: `swatch status-${o}`, 'aria-hidden': 'true' }), outcomeLabel(o))),
    ),
    chartSummary,
    chartStats,
  );

  const option = (value, label) => h('option', { value }, label);
  const statusSelect = h(
    'select',
    { id: 'filter-status', onchange: () => setFilter({ status: statusSelect.value }) },
    option('', t('deliveries.allStatuses')),
    STATUSES.map((status) => option(status, statusLabel(status))),
  );
  const typeSelect = h(
    'select',
    { id: 'filter-type', onchange: () => setFilter({ eventType: typeSelect.value }) },
    option('', t('deliveries.allTypes')),
    EVENT_TYPES.map((type) => option(type, type)),
  );
  const updated = h('span', { class: 'updated' });
  const pause = h('button', { type: 'button', onclick: togglePause }, t('deliveries.pause'));
  const filters = h(
    'form',
    { class: 'filters', onsubmit: (event) => event.preventDefault(), 'aria-label': t('deliveries.filters') },
    h('div', { class: 'field' }, h('label', { for: 'filter-status' }, t('deliveries.status')), statusSelect),
    h('div', { class: 'field' }, h('label', { for: 'filter-type' }, t('deliveries.eventType')), typeSelect),
    h('div', { class: 'live' }, h('span', { class: 'live-dot', 'aria-hidden': 'true' }), updated, pause),
  );

  const errors = h('div', { role: 'alert' });
  const tbody = h('tbody');
  const columns = ['time', 'eventType', 'status', 'attempts', 'lastStatus', 'latency'];
  const table = h(
    'table',
    { class: 'deliveries' },
    h('caption', { class: 'visually-hidden' }, t('deliveries.caption')),
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: `col-${c}` }, t(`deliveries.col.${c}`))))),
    tbody,
  );
  const more = h('button', { type: 'button', hidden: true, onclick: loadOlder }, t('deliveries.older'));

  const detailTitle = h('h2', { id: 'detail-title', tabindex: -1 });
  const detailActions = h('div', { class: 'actions' });
  const resendResult = h('div', { class: 'result', 'aria-live': 'polite' });
  const detailContent = h('div', { class: 'detail-content' });
  const detail = h(
    'section',
    { class: 'card detail', 'aria-labelledby': 'detail-title', hidden: true },
    h('div', { class: 'detail-head' }, detailTitle, detailActions),
    resendResult,
    detailContent,
  );

  frame.load().then((app) => {
    if (!view.alive || !app) return;
    frame.body.replaceChildren(
      chartCard,
      h(
        'div',
        { class: 'deliveries-layout' },
        h(
          'section',
          { class: 'card list-card', 'aria-labelledby': 'list-title' },
          h('h2', { id: 'list-title' }, t('deliveries.title')),
          filters,
          errors,
          h('div', { class: 'table-wrap' }, table),
          more,
        ),
        detail,
      ),
    );
    openDetail(view.deliveryId, false);
    tick();
  });

  // ---- polling --------------------------------------------------------------------------------

  /** One round of reads; never two at once (a change during a round asks for another). */
  async function tick({ force = false } = {}) {
    clearTimeout(timer);
    if (inFlight) {
      again = true;
      return;
    }
    inFlight = true;
    try {
      if (force || (!view.paused && !document.hidden)) {
        await Promise.all([refreshList(), refreshChart(), refreshDetail()]);
        errors.replaceChildren();
        updated.textContent = t('deliveries.updated', { time: formatTime(Date.now()) });
      }
    } catch (error) {
      errors.replaceChildren(errorBox(error));
    } finally {
      inFlight = false;
    }
    if (!view.alive) return;
    if (again) {
      again = false;
      tick({ force: true });
    } else if (!view.paused) {
      timer = setTimeout(tick, POLL_MS);
    }
  }

  const listKey = () => `${view.status}|${view.eventType}|${view.pages}`;

  async function refreshList() {
    const key = listKey();
    const { items, complete } = await readPages(
      (page) => api.listDeliveries(appId, { ...page, status: view.status, event_type: view.eventType }),
      { maxPages: view.pages },
    );
    if (key !== listKey() || !view.alive) return;
    view.items = items;
    view.hasMore = !complete;
    more.hidden = !view.hasMore;
    drawTable();
    fetchLatencies(items);
  }

  /** Latency is only in the attempt log, so each delivery's detail is read once per attempt. */
  function fetchLatencies(items) {
    const missing = items.filter((d) => {
      const key = `${d.id}:${d.attempts}`;
      return d.attempts > 0 && !latencies.has(key) && !latencyWanted.has(key);
    });
    if (missing.length === 0) return;
    missing.forEach((d) => latencyWanted.add(`${d.id}:${d.attempts}`));
    eachLimited(missing, 3, async (d) => {
      if (!view.alive) return;
      try {
        const full = await api.getDelivery(appId, d.id);
        const last = full.attempt_log.at(-1);
        if (last) latencies.set(`${d.id}:${full.attempts}`, last.latency_ms);
      } catch {
        // The table shows "—"; the next attempt count tries again.
      }
    }).then(() => view.alive && drawTable());
  }

  async function refreshChart() {
    const now = Date.now();
    const since = now - HOUR;
    // The attempts and latencies of the same hour come from the stats endpoint, counted whole.
    const [{ items, complete }, stats] = await Promise.all([
      readPages((page) => api.listDeliveries(appId, page), {
        maxPages: CHART_MAX_PAGES,
        enough: (read) => read.at(-1).created_at < since,
      }),
      api.stats(appId, { since, until: now + 1 }),
    ]);
    if (!view.alive) return;
    const { attempts, latency_ms: latency } = stats;
    chartStats.textContent = t('chart.stats', { ...attempts, ...latency });
    const buckets = perMinute(items, now);
    const sum = totals(buckets);
    const truncated = !complete && items.at(-1).created_at >= since;
    const width = chartHost.clientWidth || 640;
    const signature = JSON.stringify([buckets, truncated, width]);
    if (signature === drawn.chart) return;
    drawn.chart = signature;
    const parts = OUTCOMES.map((o) => `${sum[o]} ${outcomeLabel(o)}`).join(' · ');
    const summary = t('chart.summary', { parts }) + (truncated ? ` ${t('chart.truncated', { n: items.length })}` : '');
    chartHost.replaceChildren(chartSvg(buckets, summary, width));
    chartSummary.textContent = summary;
  }

  function drawTable() {
    const rows = view.items.map((d) => ({
      d,
      latency: latencies.get(`${d.id}:${d.attempts}`),
    }));
    const signature = JSON.stringify([rows, view.deliveryId]);
    if (signature === drawn.table) return;
    drawn.table = signature;
    if (rows.length === 0) {
      const filtered = view.status || view.eventType;
      replaceKeepingFocus(
        tbody,
        h('tr', { class: 'empty' }, h('td', { colspan: columns.length }, filtered ? t('deliveries.noneMatch') : t('deliveries.none'))),
      );
      return;
    }
    replaceKeepingFocus(tbody, ...rows.map(({ d, latency }) => row(d, latency)));
  }

  function row(d, latency) {
    const selected = d.id === view.deliveryId;
    const cell = (column, ...content) =>
      h('td', { class: `col-${column}`, 'data-label': t(`deliveries.col.${column}`) }, ...content);
    return h(
      'tr',
      { 'data-id': d.id, class: selected ? 'selected' : null },
      cell(
        'time',
        h(
          'a',
          {
            href: `#/apps/${appId}/deliveries/${d.id}`,
            'data-key': `row-${d.id}`,
            'aria-current': selected ? 'true' : null,
            // The visible text is only the time; the name says which delivery it opens.
            'aria-label': t('deliveries.open', {
              time: formatDateTime(d.created_at),
              type: d.event_type,
              status: statusLabel(d.status),
            }),
          },
          formatTime(d.created_at),
        ),
      ),
      cell('eventType', h('code', {}, d.event_type)),
      cell('status', statusBadge(d.status)),
      cell('attempts', d.attempts),
      cell('lastStatus', d.last_status_code ?? (d.last_error ? h('span', { class: 'error-text', title: d.last_error }, t('deliveries.error')) : '—')),
      cell('latency', latency === undefined ? '—' : formatLatency(latency)),
    );
  }

  // ---- one delivery ---------------------------------------------------------------------------

  function openDetail(deliveryId, focus) {
    view.deliveryId = deliveryId;
    drawn.detail = '';
    resendResult.replaceChildren();
    if (!deliveryId) {
      detail.hidden = true;
      return;
    }
    detail.hidden = false;
    detailTitle.replaceChildren(t('detail.title'), ' ', h('code', {}, deliveryId));
    detailContent.replaceChildren(h('p', { class: 'muted' }, t('common.loading')));
    detailActions.replaceChildren(
      h('button', { type: 'button', class: 'primary', 'data-key': 'resend', onclick: resend }, t('detail.resend')),
      h('a', { class: 'button', href: `#/apps/${appId}/deliveries`, 'data-key': 'close' }, t('detail.close')),
    );
    if (focus) {
      detailTitle.focus();
      detail.scrollIntoView({ block: 'nearest' });
    }
  }

  async function refreshDetail() {
    const id = view.deliveryId;
    if (!id) return;
    let delivery;
    try {
      delivery = await api.getDelivery(appId, id);
    } catch (error) {
      if (id === view.deliveryId) detailContent.replaceChildren(errorBox(error));
      drawn.detail = '';
      return;
    }
    if (id !== view.deliveryId || !view.alive) return;
    const last = delivery.attempt_log.at(-1);
    if (last) latencies.set(`${delivery.id}:${delivery.attempts}`, last.latency_ms);
    const signature = JSON.stringify(delivery);
    if (signature === drawn.detail) return;
    drawn.detail = signature;
    replaceKeepingFocus(detailContent, ...detailBody(delivery));
  }

  async function resend(event) {
    const button = event.currentTarget;
    const id = view.deliveryId;
    button.disabled = true;
    resendResult.replaceChildren();
    try {
      await api.resend(appId, id);
      resendResult.replaceChildren(successBox(t('detail.resent')));
      tick({ force: true });
    } catch (error) {
      resendResult.replaceChildren(errorBox(error));
    } finally {
      button.disabled = false;
    }
  }

  function loadOlder() {
    view.pages += 1;
    tick({ force: true });
  }

  function setFilter(change) {
    Object.assign(view, change, { pages: 1 });
    drawn.table = '';
    tick({ force: true });
  }

  function togglePause() {
    view.paused = !view.paused;
    pause.textContent = view.paused ? t('deliveries.resume') : t('deliveries.pause');
    if (view.paused) {
      clearTimeout(timer);
      updated.textContent = t('deliveries.paused');
    } else {
      tick();
    }
  }

  return {
    /** Opening or closing a delivery keeps the page (filters, scroll, timers); only the detail changes. */
    update(next) {
      if (next.appId !== appId) return false;
      const closing = !next.deliveryId && view.deliveryId;
      const previous = view.deliveryId;
      openDetail(next.deliveryId, Boolean(next.deliveryId));
      drawTable();
      if (closing) tbody.querySelector(`[data-key="row-${CSS.escape(previous)}"]`)?.focus();
      tick({ force: true });
      return true;
    },
    cleanup() {
      view.alive = false;
      clearTimeout(timer);
    },
  };
}

function detailBody(d) {
  const fact = (label, ...value) => [h('dt', {}, label), h('dd', {}, ...value)];
  const copied = h('span', { class: 'copied', 'aria-live': 'polite' });
  return [
    h(
      'dl',
      { class: 'facts' },
      fact(t('deliveries.status'), statusBadge(d.status)),
      fact(t('deliveries.eventType'), h('code', {}, d.event_type)),
      fact(t('detail.eventId'), h('code', { class: 'wrap' }, d.event_id)),
      fact(t('deliveries.col.attempts'), d.attempts),
      fact(t('detail.created'), formatDateTime(d.created_at)),
      fact(t('detail.updated'), formatDateTime(d.updated_at)),
      d.next_attempt_at !== undefined && fact(t('detail.nextAttempt'), formatDateTime(d.next_attempt_at)),
      d.last_status_code !== undefined && fact(t('deliveries.col.lastStatus'), d.last_status_code),
      d.last_error !== undefined && fact(t('detail.lastError'), h('span', { class: 'error-text' }, d.last_error)),
      d.audit && fact(t('detail.audit'), auditLabel(d.audit.audit_status), d.audit.reason ? ` — ${d.audit.reason}` : ''),
    ),
    reviewSection(d.review),
    h('h3', {}, t('detail.attempts', { n: d.attempt_log.length })),
    d.attempt_log.length === 0
      ? h('p', { class: 'muted' }, d.status === 'skipped' ? t('detail.skipped') : t('detail.noAttempts'))
      : h('ol', { class: 'attempts' }, d.attempt_log.map(attemptItem)),
    h(
      'div',
      { class: 'body-head' },
      h('h3', {}, t('detail.body')),
      copied,
      h(
        'button',
        {
          type: 'button',
          'data-key': 'copy-body',
          onclick: async () => {
            copied.textContent = (await copyText(d.body)) ? t('common.copied') : t('common.copyFailed');
          },
        },
        t('detail.copyBody'),
      ),
    ),
    h('pre', { class: 'code body', tabindex: 0, 'aria-label': t('detail.body') }, d.body),
  ];
}

function attemptItem(a, i) {
  const ok = a.status_code >= 200 && a.status_code < 300;
  const headers = [['Content-Type', 'application/json'], ...Object.entries(a.request_headers ?? {})]
    .map(([name, value]) => `${name}: ${value}`)
    .join('\n');
  return h(
    'li',
    { class: `attempt ${ok ? 'ok' : 'bad'}` },
    h(
      'p',
      { class: 'attempt-head' },
      h('strong', {}, t('detail.attempt', { n: i + 1 })),
      h('span', {}, formatDateTime(a.at)),
      a.status_code !== undefined && h('span', { class: `badge ${ok ? 'status-succeeded' : 'status-failed'}` }, `HTTP ${a.status_code}`),
      h('span', {}, formatLatency(a.latency_ms)),
    ),
    a.error && h('p', { class: 'error-text' }, a.error),
    h('h4', {}, t('detail.requestHeaders')),
    h('pre', { class: 'code' }, headers),
    a.response_body_prefix !== undefined && [
      h('h4', {}, t('detail.response')),
      h('pre', { class: 'code' }, a.response_body_prefix || t('detail.emptyResponse')),
    ],
  );
}
