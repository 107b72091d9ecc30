// Router and chrome: hash routes (#/, #/farms/NAME, #/farms/NAME/health, ...), sign-in gate.
import { clearKey, getKey, setUnauthorizedHandler } from './api.js';
import { clear, h } from './dom.js';
import * as signin from './pages/signin.js';
import * as dashboard from './pages/dashboard.js';
import * as farm from './pages/farm.js';
import * as health from './pages/health.js';
import * as interfaces from './pages/interfaces.js';
import * as settings from './pages/settings.js';
import * as cluster from './pages/cluster.js';

const ROUTES = [
  [/^#?\/?$/, dashboard, 'dashboard'],
  [/^#\/farms\/([^/]+)$/, farm, 'dashboard'],
  [/^#\/farms\/([^/]+)\/health$/, health, 'dashboard'],
  [/^#\/interfaces$/, interfaces, 'interfaces'],
  [/^#\/settings$/, settings, 'settings'],
  [/^#\/cluster$/, cluster, 'cluster'],
];

let current = null;

export function navigate(hash) {
  if (location.hash === hash || (hash === '#/' && location.hash === '')) route();
  else location.hash = hash;
}

function route() {
  if (current && current.unmount) current.unmount();
  current = null;
  for (const dlg of document.querySelectorAll('dialog')) dlg.remove();
  const main = document.getElementById('main');
  clear(main);
  const signedIn = Boolean(getKey());
  document.getElementById('topbar').hidden = !signedIn;
  document.body.classList.toggle('signed-out', !signedIn);
  if (!signedIn) {
    document.title = 'Sign in · kernlb';
    current = signin.mount(main, { onSignedIn: () => navigate('#/') });
    return;
  }
  for (const [pattern, page, nav] of ROUTES) {
    const match = location.hash.match(pattern);
    if (!match) continue;
    for (const link of document.querySelectorAll('.mainnav a')) {
      if (link.dataset.nav === nav) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
    const params = match.slice(1).map(decodeURIComponent);
    current = page.mount(main, ...params);
    const heading = main.querySelector('h1');
    if (heading) {
      document.title = `${heading.textContent} · kernlb`;
      if (document.activeElement === document.body || !main.contains(document.activeElement)) {
        heading.focus({ preventScroll: true });
      }
    }
    return;
  }
  main.append(h('div', { class: 'page-head' }, h('h1', { tabindex: '-1', text: 'Page not found' })),
    h('p', {}, h('a', { href: '#/', text: 'Back to the dashboard' })));
}

function signOut() {
  clearKey();
  navigate('#/');
}

setUnauthorizedHandler(() => {
  // The key was rotated elsewhere or revoked: back to the sign-in form.
  if (getKey()) { clearKey(); route(); }
});
window.addEventListener('hashchange', route);
document.getElementById('signout').addEventListener('click', signOut);
route();
