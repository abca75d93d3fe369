// The console's shell: the top bar, sign-in state and a hash router. Routes live in the hash
// (#/apps, #/apps/:id, #/apps/:id/deliveries[/:delivery_id]) so the server serves one page.

import { session, whenUnauthenticated } from './api.js';
import { h } from './dom.js';
import { LANG, t } from './i18n.js';
import { appsView, appView, notFoundView, signInView } from './views.js';
import { deliveriesView } from './deliveries.js';

const main = document.getElementById('main');
const topbar = document.getElementById('topbar');

/** The view on screen: cleanup stops its timers; update takes a new route without a redraw. */
let current = null;
/** A message for the next view (after a delete, a sign-out or a refused token). */
let pendingNotice = null;

const VIEWS = { signIn: signInView, apps: appsView, app: appView, deliveries: deliveriesView, notFound: notFoundView };

/** A route segment decoded, or null when it is not valid percent-encoding (`#/apps/%E0`). */
function decodeSegment(segment) {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeSegment);
  if (parts.includes(null)) return { name: 'notFound' };
  if (parts.length === 0 || (parts[0] === 'apps' && parts.length === 1)) return { name: 'apps' };
  if (parts[0] === 'apps' && parts.length === 2) return { name: 'app', appId: parts[1] };
  if (parts[0] === 'apps' && parts[2] === 'deliveries' && parts.length <= 4) {
    return { name: 'deliveries', appId: parts[1], deliveryId: parts[3] ?? null };
  }
  return { name: 'notFound' };
}

function render() {
  renderTopbar();
  const route = session.token ? parseRoute() : { name: 'signIn' };
  if (current?.route.name === route.name && current.update?.(route)) {
    current.route = route;
    return;
  }
  current?.cleanup?.();
  main.replaceChildren();
  const notice = pendingNotice;
  pendingNotice = null;
  const view = VIEWS[route.name]({ main, route, notice, signedIn, notify }) ?? {};
  current = { ...view, route };
  // Each view starts with its heading; moving focus there tells screen readers the page changed.
  if (route.name !== 'signIn') main.querySelector('h1')?.focus({ preventScroll: false });
}

function renderTopbar() {
  topbar.replaceChildren(
    h('a', { class: 'skip-link', href: '#main', onclick: skipToContent }, t('nav.skip')),
    h(
      'a',
      { class: 'brand', href: '#/apps' },
      h('img', { src: '/console/favicon.svg', alt: '', width: 24, height: 24 }),
      h('span', {}, 'huidiao'),
      h('span', { class: 'brand-sub' }, t('nav.console')),
    ),
  );
  if (!session.token) return;
  topbar.append(
    h(
      'nav',
      { 'aria-label': t('nav.label') },
      h('a', { href: '#/apps', 'aria-current': parseRoute().name === 'apps' ? 'page' : null }, t('nav.apps')),
      h('button', { type: 'button', class: 'ghost', onclick: signOut }, t('nav.signOut')),
    ),
  );
}

/** The skip link's target is an element, not a route, so it must not change the hash. */
function skipToContent(event) {
  event.preventDefault();
  main.focus();
}

function signedIn(token) {
  session.signIn(token);
  render();
}

function signOut() {
  session.signOut();
  pendingNotice = { kind: 'info', text: t('signin.signedOut') };
  history.replaceState(null, '', location.pathname);
  render();
}

/** Goes to a route and shows a notice there (or redraws when already there). */
function notify(hash, notice) {
  pendingNotice = notice;
  if (location.hash === hash) {
    current?.cleanup?.();
    current = null;
    render();
  } else {
    location.hash = hash;
  }
}

whenUnauthenticated((error) => {
  session.signOut();
  pendingNotice = { kind: 'error', text: t('signin.refused'), error };
  render();
});

document.documentElement.lang = LANG === 'zh' ? 'zh-CN' : 'en';
document.title = t('title');
window.addEventListener('hashchange', render);
render();
