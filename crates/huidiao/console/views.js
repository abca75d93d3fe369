// Sign-in, the apps list and an app's settings page. Each view draws into `main` and returns
// { cleanup } so the router can stop what it started.

import { api, ApiError, eachLimited, findApp, readPages } from './api.js';
import { copyText, fill, formatDateTime, h } from './dom.js';
import { EVENT_TYPES, eventDescription, statusLabel, t } from './i18n.js';

// ---- shared pieces ----------------------------------------------------------------------------

/** An error as the user sees it: what the server said (msg), its code and the logid to quote. */
export function errorBox(error, title) {
  const isApi = error instanceof ApiError;
  const facts = [];
  if (isApi && error.code > 0) facts.push(t('error.code', { code: error.code }));
  if (isApi && error.logid) facts.push([t('error.logid'), ' ', h('code', { class: 'logid' }, error.logid)]);
  return h(
    'div',
    { class: 'alert alert-error' },
    title && h('strong', {}, title),
    h('p', { class: 'alert-msg' }, error.message || t('error.unknown')),
    facts.length > 0 &&
      h(
        'p',
        { class: 'alert-facts' },
        facts.map((fact, i) => [i > 0 ? ' · ' : '', fact]),
      ),
  );
}

export function successBox(text) {
  return h('div', { class: 'alert alert-success' }, h('p', { class: 'alert-msg' }, text));
}

/** A message handed over from the previous view (e.g. "app deleted"). */
export function noticeBox(notice) {
  if (!notice) return null;
  if (notice.kind === 'error') return h('div', { role: 'alert' }, errorBox(notice.error, notice.text));
  return h('div', { role: 'status', class: `alert alert-${notice.kind}` }, h('p', { class: 'alert-msg' }, notice.text));
}

export function typeBadge(type) {
  return h('span', { class: `badge badge-${type}` }, t(`type.${type}`));
}

export function statusBadge(status) {
  return h('span', { class: `badge status status-${status}` }, statusLabel(status));
}

/** Runs an async action from a form: the button is busy meanwhile, the outcome lands in `result`. */
async function submitting(button, result, action) {
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  result.replaceChildren();
  try {
    const outcome = await action();
    if (outcome) result.replaceChildren(outcome);
  } catch (error) {
    result.replaceChildren(errorBox(error));
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

/** A polite live region for the outcome of a form. */
const resultArea = () => h('div', { class: 'result', 'aria-live': 'polite' });

/**
 * The heading, breadcrumb and tabs shared by an app's settings and deliveries pages. The h1
 * exists before the app is loaded so that focus can move to it at once.
 */
export function appFrame(main, appId, active) {
  const heading = h('h1', { tabindex: -1 }, t('common.loading'));
  const current = h('span', { 'aria-current': 'page' });
  const meta = h('p', { class: 'meta' });
  const body = h('div', { class: `app-body app-body-${active}` });
  const tab = (name, hash) =>
    h('a', { href: hash, class: 'tab', 'aria-current': active === name ? 'page' : null }, t(`tabs.${name}`));
  main.append(
    h(
      'div',
      { class: 'page-head' },
      h('nav', { class: 'crumbs', 'aria-label': t('nav.breadcrumb') }, h('a', { href: '#/apps' }, t('nav.apps')), current),
      heading,
      meta,
      h(
        'nav',
        { class: 'tabs', 'aria-label': t('tabs.label') },
        tab('settings', `#/apps/${appId}`),
        tab('deliveries', `#/apps/${appId}/deliveries`),
      ),
    ),
    body,
  );
  const show = (app) => {
    heading.textContent = app.name ?? app.id;
    current.textContent = `${app.name ?? app.id} · ${t(`tabs.${active}`)}`;
    fill(
      meta,
      typeBadge(app.app_type),
      h('span', {}, t('app.id'), ' ', h('code', {}, app.id)),
      app.connector_id && h('span', {}, t('app.connector'), ' ', h('code', {}, app.connector_id)),
    );
  };
  /** Loads the app into the frame; null (with a message shown) when it cannot be had. */
  const load = async () => {
    try {
      const app = await findApp(appId);
      if (app) {
        show(app);
        return app;
      }
      heading.textContent = t('app.notFoundTitle');
      body.replaceChildren(h('p', {}, t('app.notFound')), h('p', {}, h('a', { href: '#/apps' }, t('nav.backToApps'))));
    } catch (error) {
      heading.textContent = t('app.loadFailed');
      body.replaceChildren(h('div', { role: 'alert' }, errorBox(error)));
    }
    return null;
  };
  return { heading, body, load, show };
}

// ---- sign in ----------------------------------------------------------------------------------

export function signInView({ main, notice, signedIn }) {
  const input = h('input', {
    id: 'token',
    type: 'password',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
    'aria-describedby': 'token-help',
    placeholder: 'pat_…',
  });
  const button = h('button', { type: 'submit', class: 'primary' }, t('signin.submit'));
  const result = resultArea();
  // No name on the input and method=post: even if the script failed, the token could never be
  // put into a URL by a form submission.
  const form = h(
    'form',
    { class: 'card signin', method: 'post', novalidate: true, onsubmit: submit },
    h('h1', { tabindex: -1 }, t('signin.title')),
    h('p', {}, t('signin.intro')),
    noticeBox(notice),
    h('label', { for: 'token' }, t('signin.token')),
    input,
    h('p', { id: 'token-help', class: 'hint' }, t('signin.help')),
    button,
    result,
  );
  main.append(h('div', { class: 'signin-wrap' }, form));
  input.focus();

  async function submit(event) {
    event.preventDefault();
    const token = input.value.trim();
    if (!token) {
      result.replaceChildren(errorBox(new Error(t('signin.empty'))));
      input.focus();
      return;
    }
    await submitting(button, result, async () => {
      await api.checkToken(token);
      signedIn(token);
    });
  }
}

// ---- apps list --------------------------------------------------------------------------------

export function appsView({ main, notice, notify }) {
  let alive = true;
  let filter = '';
  const status = h('p', { class: 'list-status', 'aria-live': 'polite' });
  const errors = h('div', { role: 'alert' });
  const list = h('ul', { class: 'cards', 'aria-label': t('apps.listLabel') });
  const create = createAppPanel(notify);

  const filterGroup = h(
    'fieldset',
    { class: 'segmented' },
    h('legend', {}, t('apps.filter')),
    ['', 'normal', 'connector'].map((value) => {
      const id = `filter-${value || 'all'}`;
      return [
        h('input', { type: 'radio', name: 'app-type', id, value, checked: value === filter, onchange: () => load(value) }),
        h('label', { for: id }, value ? t(`type.${value}`) : t('apps.all')),
      ];
    }),
  );

  fill(
    main,
    h('div', { class: 'page-head row' }, h('h1', { tabindex: -1 }, t('apps.title')), create.toggle),
    noticeBox(notice),
    create.panel,
    h('div', { class: 'toolbar' }, filterGroup, status),
    errors,
    list,
  );
  load('');

  async function load(type) {
    filter = type;
    status.textContent = t('common.loading');
    errors.replaceChildren();
    let apps;
    try {
      ({ items: apps } = await readPages((page) => api.listApps({ ...page, app_type: filter })));
    } catch (error) {
      if (!alive || type !== filter) return;
      status.textContent = '';
      errors.replaceChildren(errorBox(error));
      return;
    }
    if (!alive || type !== filter) return;
    status.textContent = t('apps.count', { n: apps.length });
    if (apps.length === 0) {
      list.replaceChildren(h('li', { class: 'empty' }, filter ? t('apps.noneOfType') : t('apps.none')));
      return;
    }
    const cards = apps.map(appCard);
    list.replaceChildren(...cards.map((card) => card.element));
    await eachLimited(cards, 4, (card) => (alive && type === filter ? card.load() : null));
  }

  return {
    cleanup() {
      alive = false;
    },
  };
}

function createAppPanel(notify) {
  const panelId = 'create-app';
  const toggle = h(
    'button',
    { type: 'button', class: 'primary', 'aria-expanded': 'false', 'aria-controls': panelId, onclick: () => setOpen(panel.hidden) },
    t('apps.new'),
  );
  const typeRadio = (value) =>
    h(
      'div',
      { class: 'choice' },
      h('input', {
        type: 'radio',
        name: 'new-app-type',
        id: `new-type-${value}`,
        value,
        checked: value === 'normal',
        onchange: sync,
        'aria-describedby': `new-type-${value}-hint`,
      }),
      h('label', { for: `new-type-${value}` }, t(`type.${value}`)),
      h('span', { id: `new-type-${value}-hint`, class: 'hint' }, t(`apps.typeHint.${value}`)),
    );
  const name = h('input', { id: 'new-name', type: 'text', maxlength: 128, autocomplete: 'off' });
  const connector = h('input', { id: 'new-connector', type: 'text', inputmode: 'numeric', autocomplete: 'off', 'aria-describedby': 'new-connector-help' });
  const nameField = h('div', { class: 'field' }, h('label', { for: 'new-name' }, t('app.name')), name);
  const connectorField = h(
    'div',
    { class: 'field', hidden: true },
    h('label', { for: 'new-connector' }, t('app.connectorId')),
    connector,
    h('p', { id: 'new-connector-help', class: 'hint' }, t('apps.connectorHelp')),
  );
  const submit = h('button', { type: 'submit', class: 'primary' }, t('apps.create'));
  const result = resultArea();
  const panel = h(
    'form',
    { id: panelId, class: 'card create', hidden: true, novalidate: true, onsubmit: create, 'aria-labelledby': 'create-title' },
    h('h2', { id: 'create-title' }, t('apps.newTitle')),
    h('fieldset', { class: 'choices' }, h('legend', {}, t('app.type')), typeRadio('normal'), typeRadio('connector')),
    nameField,
    connectorField,
    h(
      'div',
      { class: 'actions' },
      submit,
      h('button', { type: 'button', onclick: () => setOpen(false) }, t('common.cancel')),
    ),
    result,
  );

  function selectedType() {
    return panel.querySelector('input[name="new-app-type"]:checked').value;
  }

  function sync() {
    const connectorApp = selectedType() === 'connector';
    nameField.hidden = connectorApp;
    connectorField.hidden = !connectorApp;
  }

  function setOpen(open) {
    panel.hidden = !open;
    toggle.setAttribute('aria-expanded', String(open));
    if (open) panel.querySelector('input:checked').focus();
    else toggle.focus();
  }

  async function create(event) {
    event.preventDefault();
    const type = selectedType();
    const body =
      type === 'normal' ? { app_type: 'normal', name: name.value } : { app_type: 'connector', connector_id: connector.value.trim() };
    await submitting(submit, result, async () => {
      const app = await api.createApp(body);
      notify(`#/apps/${app.id}`, { kind: 'success', text: t('apps.created', { name: app.name ?? app.id }) });
    });
  }

  return { toggle, panel };
}

/** One app's card. Subscriptions and health need a request each, made by load(). */
function appCard(app) {
  const loading = () => h('span', { class: 'muted' }, t('common.loading'));
  const events = h('dd', {}, loading());
  const health = h('dd', {}, loading());
  const href = `#/apps/${app.id}`;
  const element = h(
    'li',
    { class: 'card app-card', 'data-app-id': app.id },
    h(
      'div',
      { class: 'card-head' },
      h('h2', {}, h('a', { href }, app.name ?? app.id)),
      typeBadge(app.app_type),
      app.paused && h('span', { class: 'badge badge-paused', title: app.paused_reason ?? '' }, t('pause.badge')),
    ),
    h(
      'dl',
      { class: 'facts' },
      app.connector_id && [h('dt', {}, t('app.connector')), h('dd', { class: 'mono' }, app.connector_id)],
      h('dt', {}, t('app.callbackUrl')),
      h('dd', { class: 'url' }, app.callback_url ?? h('span', { class: 'muted' }, t('app.noUrl'))),
      h('dt', {}, t('app.events')),
      events,
      h('dt', {}, t('app.health')),
      health,
    ),
    h(
      'div',
      { class: 'card-actions' },
      h('a', { href, 'aria-label': t('apps.settingsOf', { name: app.name ?? app.id }) }, t('tabs.settings')),
      h('a', { href: `${href}/deliveries`, 'aria-label': t('apps.deliveriesOf', { name: app.name ?? app.id }) }, t('tabs.deliveries')),
    ),
  );
  const load = async () => {
    await Promise.all([
      readPages((page) => api.listEvents(app.id, page)).then(
        ({ items }) =>
          events.replaceChildren(
            items.length
              ? h('ul', { class: 'chips' }, items.map((item) => h('li', { class: 'chip', title: eventDescription(item.event_type) }, item.event_type)))
              : h('span', { class: 'muted' }, t('app.noEvents')),
          ),
        (error) => events.replaceChildren(errorBox(error)),
      ),
      api.listDeliveries(app.id, { page_size: 20 }).then(
        ({ items }) => health.replaceChildren(...healthView(items)),
        (error) => health.replaceChildren(errorBox(error)),
      ),
    ]);
  };
  return { element, load };
}

/**
 * How an app's receiver is doing, from its latest deliveries: failing when the newest finished
 * one failed, degraded when some failed or are being retried, healthy otherwise.
 */
export function healthOf(deliveries) {
  if (deliveries.length === 0) return { level: 'none', counts: {} };
  const counts = {};
  for (const d of deliveries) counts[d.status] = (counts[d.status] ?? 0) + 1;
  const newestFinished = deliveries.find((d) => d.status === 'succeeded' || d.status === 'failed');
  const retrying = deliveries.some((d) => d.status === 'pending' && d.attempts > 0);
  let level = 'ok';
  if (newestFinished?.status === 'failed') level = 'bad';
  else if (counts.failed || retrying) level = 'warn';
  return { level, counts };
}

function healthView(deliveries) {
  const { level, counts } = healthOf(deliveries);
  if (level === 'none') return [h('span', { class: 'muted' }, t('health.none'))];
  const parts = ['succeeded', 'failed', 'pending', 'skipped', 'cancelled']
    .filter((status) => counts[status])
    .map((status) => `${counts[status]} ${statusLabel(status)}`);
  return [
    h('span', { class: `health health-${level}` }, h('span', { class: 'dot', 'aria-hidden': 'true' }), t(`health.${level}`)),
    h('span', { class: 'health-summary' }, t('health.summary', { n: deliveries.length, parts: parts.join(' · ') })),
    // Oldest to newest, left to right; the sentence above says the same for screen readers.
    h(
      'span',
      { class: 'strip', 'aria-hidden': 'true' },
      deliveries
        .slice()
        .reverse()
        .map((d) => h('span', { class: `tick status-${d.status}`, title: `${d.event_type}: ${statusLabel(d.status)}` })),
    ),
  ];
}

// ---- one app's settings -----------------------------------------------------------------------

export function appView({ main, route, notice, notify }) {
  let alive = true;
  const frame = appFrame(main, route.appId, 'settings');
  const dialog = h('dialog', { class: 'confirm', 'aria-labelledby': 'delete-title', 'aria-describedby': 'delete-body' });
  frame.load().then((app) => {
    if (!alive || !app) return;
    fill(
      frame.body,
      noticeBox(notice),
      pausingSection(app),
      nameSection(app, frame),
      urlSection(app),
      tokenSection(app),
      subscriptionsSection(app),
      deleteSection(app, dialog, notify),
    );
    main.append(dialog);
  });
  return {
    cleanup() {
      alive = false;
      if (dialog.open) dialog.close();
      dialog.remove();
    },
  };
}

function section(id, title, ...content) {
  return h('section', { class: 'card', 'aria-labelledby': id }, h('h2', { id }, title), ...content);
}

/** Whether the app's deliveries are paused and why, with the way back: resume, and replay what failed. */
function pausingSection(app) {
  const state = h('div', {});
  const result = resultArea();
  const reason = h('input', { id: 'pause-reason', type: 'text', maxlength: 1024, autocomplete: 'off' });
  const pauseButton = h('button', { type: 'submit' }, t('pause.pause'));
  const pauseForm = h(
    'form',
    { class: 'inline-form', novalidate: true, onsubmit: pause },
    h('label', { for: 'pause-reason' }, t('pause.reason')),
    h('div', { class: 'input-row' }, reason, pauseButton),
  );
  const resumeButton = h('button', { type: 'button', class: 'primary', onclick: resume }, t('pause.resume'));
  const replayButton = h('button', { type: 'button', onclick: replay }, t('pause.replayFailed'));
  const testType = h('select', { id: 'test-event-type' }, EVENT_TYPES.map((type) => h('option', { value: type }, type)));
  const testButton = h('button', { type: 'button', onclick: sendTest }, t('pause.sendTest'));
  const testForm = h(
    'div',
    { class: 'inline-form' },
    h('label', { for: 'test-event-type' }, t('pause.testType')),
    h('div', { class: 'input-row' }, testType, testButton),
  );
  const show = () => {
    fill(
      state,
      app.paused
        ? h(
            'div',
            { class: 'alert alert-warn paused' },
            h('strong', {}, t('pause.paused', { since: formatDateTime(app.paused_at) })),
            h('p', { class: 'alert-msg paused-reason' }, app.paused_reason ?? t('pause.noReason')),
          )
        : h('p', { class: 'hint' }, t('pause.active')),
    );
    pauseForm.hidden = Boolean(app.paused);
    resumeButton.hidden = !app.paused;
  };
  /** Takes the app as the server answered it; a field it left out is no longer set. */
  const take = (fresh) => {
    delete app.paused_reason;
    delete app.paused_at;
    Object.assign(app, fresh);
    show();
  };
  async function pause(event) {
    event.preventDefault();
    await submitting(pauseButton, result, async () => {
      take(await api.pause(app.id, reason.value.trim()));
      reason.value = '';
      return successBox(t('pause.pausedDone'));
    });
  }
  async function resume() {
    await submitting(resumeButton, result, async () => {
      take(await api.resume(app.id));
      return successBox(t('pause.resumed'));
    });
  }
  async function replay() {
    await submitting(replayButton, result, async () => {
      const { replayed } = await api.replay(app.id, { status: 'failed' });
      return successBox(t('pause.replayed', { n: replayed }));
    });
  }
  async function sendTest() {
    await submitting(testButton, result, async () => {
      const { delivery_id: deliveryId } = await api.testEvent(app.id, testType.value);
      return successBox(t('pause.testSent', { id: deliveryId }));
    });
  }
  show();
  return section(
    'pause-title',
    t('pause.title'),
    state,
    pauseForm,
    h('div', { class: 'actions' }, resumeButton, replayButton),
    h('p', { class: 'hint' }, t('pause.replayHelp')),
    testForm,
    h('p', { class: 'hint' }, t('pause.testHelp')),
    result,
  );
}

function nameSection(app, frame) {
  const input = h('input', { id: 'app-name', type: 'text', value: app.name ?? '', maxlength: 128, autocomplete: 'off' });
  const button = h('button', { type: 'submit' }, t('app.rename'));
  const result = resultArea();
  const form = h(
    'form',
    { class: 'inline-form', novalidate: true, onsubmit: submit },
    h('label', { for: 'app-name', class: 'visually-hidden' }, t('app.name')),
    h('div', { class: 'input-row' }, input, button),
    result,
  );
  async function submit(event) {
    event.preventDefault();
    await submitting(button, result, async () => {
      await api.updateApp(app.id, { name: input.value });
      app.name = input.value;
      frame.show(app);
      return successBox(t('app.renamed'));
    });
  }
  return section('name-title', t('app.nameTitle'), form);
}

function urlSection(app) {
  const input = h('input', {
    id: 'callback-url',
    type: 'url',
    value: app.callback_url ?? '',
    placeholder: 'https://example.com/coze/callback',
    autocomplete: 'off',
    spellcheck: 'false',
    'aria-describedby': 'callback-url-help',
  });
  const button = h('button', { type: 'submit', class: 'primary' }, t('app.verifyAndSave'));
  const result = resultArea();
  // novalidate: the server's verification message is more precise than the browser's.
  const form = h(
    'form',
    { class: 'inline-form', novalidate: true, onsubmit: submit },
    h('label', { for: 'callback-url', class: 'visually-hidden' }, t('app.callbackUrl')),
    h('div', { class: 'input-row' }, input, button),
    h('p', { id: 'callback-url-help', class: 'hint' }, t('app.urlHelp')),
    result,
  );
  async function submit(event) {
    event.preventDefault();
    const url = input.value.trim();
    result.replaceChildren(h('p', { class: 'muted' }, t('app.verifying')));
    button.disabled = true;
    try {
      await api.updateApp(app.id, { callback_url: url });
      // The server stores the normalised URL it verified; show that, not what was typed.
      app.callback_url = (await findApp(app.id))?.callback_url ?? url;
      input.value = app.callback_url;
      result.replaceChildren(successBox(t('app.verified')));
    } catch (error) {
      result.replaceChildren(errorBox(error, t('app.verifyFailed')));
    } finally {
      button.disabled = false;
    }
  }
  return section('url-title', t('app.urlTitle'), form);
}

function tokenSection(app) {
  let shown = false;
  const input = h('input', {
    id: 'verify-token',
    type: 'password',
    value: app.verify_token,
    readonly: true,
    class: 'mono',
    autocomplete: 'off',
    'aria-describedby': 'verify-token-help',
  });
  const reveal = h('button', { type: 'button', 'aria-controls': 'verify-token', onclick: toggle }, t('app.reveal'));
  const copied = h('span', { class: 'copied', 'aria-live': 'polite' });
  const copy = h(
    'button',
    {
      type: 'button',
      onclick: async () => {
        const ok = await copyText(app.verify_token);
        copied.textContent = ok ? t('common.copied') : t('common.copyFailed');
      },
    },
    t('common.copy'),
  );
  function toggle() {
    shown = !shown;
    input.type = shown ? 'text' : 'password';
    reveal.textContent = shown ? t('app.hide') : t('app.reveal');
  }
  return section(
    'token-title',
    t('app.tokenTitle'),
    h('label', { for: 'verify-token', class: 'visually-hidden' }, t('app.verifyToken')),
    h('div', { class: 'input-row' }, input, reveal, copy),
    copied,
    h('p', { id: 'verify-token-help', class: 'hint' }, t('app.tokenHelp')),
  );
}

function subscriptionsSection(app) {
  const connectorApp = app.app_type === 'connector';
  const boxes = h('div', { class: 'checks' }, h('p', { class: 'muted' }, t('common.loading')));
  const button = h('button', { type: 'submit', class: 'primary', disabled: true }, t('app.saveSubscriptions'));
  const result = resultArea();
  let subscribed = new Set();

  const draw = () =>
    boxes.replaceChildren(
      ...EVENT_TYPES.map((type, i) => {
        const normalOnly = connectorApp && type.startsWith('benefit.plugin.scale.');
        return h(
          'div',
          { class: 'check' },
          h('input', {
            type: 'checkbox',
            id: `event-${i}`,
            value: type,
            checked: subscribed.has(type),
            disabled: normalOnly,
            'aria-describedby': normalOnly ? `event-${i}-note` : null,
          }),
          h(
            'label',
            { for: `event-${i}` },
            h('code', {}, type),
            h('span', { class: 'desc' }, eventDescription(type)),
            normalOnly && h('span', { id: `event-${i}-note`, class: 'note' }, t('app.normalOnly')),
          ),
        );
      }),
    );

  const reload = async () => {
    const { items } = await readPages((page) => api.listEvents(app.id, page));
    subscribed = new Set(items.map((item) => item.event_type));
    draw();
    button.disabled = false;
  };
  reload().catch((error) => boxes.replaceChildren(errorBox(error)));

  async function submit(event) {
    event.preventDefault();
    const wanted = new Set(
      [...boxes.querySelectorAll('input[type=checkbox]:checked:not(:disabled)')].map((box) => box.value),
    );
    const add = [...wanted].filter((type) => !subscribed.has(type));
    const remove = [...subscribed].filter((type) => !wanted.has(type));
    await submitting(button, result, async () => {
      if (add.length === 0 && remove.length === 0) return successBox(t('app.noChange'));
      if (add.length) await api.subscribe(app.id, add);
      if (remove.length) await api.unsubscribe(app.id, remove);
      await reload();
      return successBox(t('app.subscriptionsSaved', { added: add.length, removed: remove.length }));
    });
  }

  return section(
    'events-title',
    t('app.subscriptions'),
    h(
      'form',
      { novalidate: true, onsubmit: submit },
      h('fieldset', {}, h('legend', { class: 'visually-hidden' }, t('app.subscriptions')), boxes),
      connectorApp && h('p', { class: 'hint' }, t('app.connectorRule')),
      h('div', { class: 'actions' }, button),
      result,
    ),
  );
}

function deleteSection(app, dialog, notify) {
  const name = app.name ?? app.id;
  const result = resultArea();
  const confirm = h('button', { type: 'button', class: 'danger', onclick: remove }, t('app.deleteConfirm'));
  dialog.replaceChildren(
    h('h2', { id: 'delete-title' }, t('app.deleteTitle', { name })),
    h('p', { id: 'delete-body' }, t('app.deleteBody')),
    result,
    h(
      'div',
      { class: 'actions' },
      h('button', { type: 'button', autofocus: true, onclick: () => dialog.close() }, t('common.cancel')),
      confirm,
    ),
  );
  async function remove() {
    await submitting(confirm, result, async () => {
      await api.deleteApp(app.id);
      dialog.close();
      notify('#/apps', { kind: 'success', text: t('apps.deleted', { name }) });
    });
  }
  return h(
    'section',
    { class: 'card danger-zone', 'aria-labelledby': 'delete-section-title' },
    h('h2', { id: 'delete-section-title' }, t('app.deleteSection')),
    h('p', {}, t('app.deleteBody')),
    h(
      'button',
      {
        type: 'button',
        class: 'danger',
        'aria-haspopup': 'dialog',
        onclick: () => {
          result.replaceChildren();
          dialog.showModal();
        },
      },
      t('app.delete'),
    ),
  );
}

export function notFoundView({ main }) {
  main.append(
    h('h1', { tabindex: -1 }, t('notFound.title')),
    h('p', {}, h('a', { href: '#/apps' }, t('nav.backToApps'))),
  );
}
