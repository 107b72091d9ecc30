import { get, setKey } from '../api.js';
import { h } from '../dom.js';

export function mount(main, { onSignedIn }) {
  const input = h('input', { type: 'password', id: 'zapi-key', name: 'zapi_key', autocomplete: 'current-password', required: true, spellcheck: 'false' });
  const error = h('p', { class: 'form-error', id: 'signin-error', role: 'alert', hidden: true });
  const button = h('button', { type: 'submit', class: 'btn btn-primary btn-block', id: 'signin-submit', text: 'Sign in' });
  input.setAttribute('aria-describedby', 'signin-hint signin-error');
  const form = h('form', { class: 'signin-card', novalidate: true },
    h('div', { class: 'signin-brand' }, h('img', { src: '/gui/favicon.svg', alt: '', width: 40, height: 40 }),
      h('div', {}, h('h1', { tabindex: '-1', text: 'kernlb' }), h('p', { class: 'muted', text: 'Linux-kernel load balancer' }))),
    // The user name password managers expect; ZAPI has one user, "zapi".
    h('input', { type: 'text', name: 'username', autocomplete: 'username', value: 'zapi', hidden: true, tabindex: '-1', 'aria-hidden': 'true' }),
    h('label', { for: 'zapi-key', text: 'ZAPI key' }), input,
    h('p', { class: 'hint', id: 'signin-hint', text: 'Kept only in this browser tab and sent in the ZAPI_KEY header.' }),
    error, button);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.hidden = true;
    const key = input.value;
    if (!key) { error.textContent = 'Enter the ZAPI key.'; error.hidden = false; input.focus(); return; }
    button.disabled = true;
    try {
      await get('/system/version', { key, quiet401: true });
      setKey(key);
      onSignedIn();
    } catch (err) {
      error.textContent = err.message;  // the API's own message ("Authorization required")
      error.hidden = false;
      input.setAttribute('aria-invalid', 'true');
      input.select();
    } finally { button.disabled = false; }
  });
  main.append(h('div', { class: 'signin-wrap' }, form));
  input.focus();
  return {};
}
