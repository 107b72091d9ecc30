// Key rotation, version, and the OpenAPI document.
import { BASE, get, post, setKey } from '../api.js';
import { field, h, pageHeader, showFormError, toast } from '../dom.js';

export function mount(main) {
  const version = h('dl', { class: 'facts' });
  const keyInput = h('input', { type: 'password', autocomplete: 'new-password', spellcheck: 'false' });
  const generated = h('input', { type: 'text', readonly: true, id: 'generated-key', class: 'mono' });
  const generatedWrap = h('div', { class: 'notice', hidden: true },
    h('label', { for: 'generated-key', text: 'New key (shown only once; this tab already uses it)' }), generated);
  const form = h('form', { class: 'panel', id: 'key-form', novalidate: true, 'aria-labelledby': 'key-heading' },
    h('div', { class: 'panel-head' }, h('h2', { id: 'key-heading', text: 'Rotate the ZAPI key' })),
    h('p', { class: 'muted', text: 'The old key stops working at once, for every client. kernlb stores only a hash of the key.' }),
    h('input', { type: 'text', name: 'username', autocomplete: 'username', value: 'zapi', hidden: true, tabindex: '-1', 'aria-hidden': 'true' }),
    h('div', { class: 'grid' }, field({ label: 'New key', name: 'key', control: keyInput, hint: 'Letters and digits' })),
    h('p', { class: 'form-error', role: 'alert', hidden: true }),
    h('div', { class: 'form-actions' },
      h('button', { type: 'button', class: 'btn', id: 'key-random', text: 'Generate a random key', onclick: () => rotate({ randomkey: 'true' }) }),
      h('button', { type: 'submit', class: 'btn btn-primary', id: 'key-set', text: 'Set this key' })),
    generatedWrap);
  form.addEventListener('submit', (event) => { event.preventDefault(); rotate({ key: keyInput.value }); });

  async function rotate(body) {
    generatedWrap.hidden = true;
    try {
      const answer = await post('/system/users/zapi', body);
      const newKey = body.key !== undefined ? body.key : answer.params && answer.params.key;
      if (newKey) setKey(newKey);
      keyInput.value = '';
      if (body.randomkey) { generated.value = newKey; generatedWrap.hidden = false; generated.select(); }
      toast('The ZAPI key has been changed.');
    } catch (err) { showFormError(form, err.message, [['key', /key/i]]); }
  }

  main.append(pageHeader('API & key'), form,
    h('section', { class: 'panel', 'aria-labelledby': 'api-heading' },
      h('div', { class: 'panel-head' }, h('h2', { id: 'api-heading', text: 'API' })),
      version,
      h('p', {}, 'Every page here is a client of ZAPI v3.1 at ', h('code', { text: BASE }), '. ',
        h('a', { href: '/openapi.json', id: 'openapi-link', target: '_blank', rel: 'noopener', text: 'OpenAPI document' }),
        ' · ', h('a', { href: '/metrics', target: '_blank', rel: 'noopener', text: 'Prometheus metrics' }))));

  get('/system/version').then((v) => {
    for (const [k, label] of [['appliance_version', 'Version'], ['hostname', 'Host'], ['kernel_version', 'Kernel'], ['system_date', 'Date']]) {
      version.append(h('dt', { text: label }), h('dd', { text: v.params[k] }));
    }
  }).catch((err) => toast(err.message, 'error'));
  return {};
}
