// Farmguardian: the v3.1 fields and kernlb's extensions in one PUT, and each backend's last
// recorded health transition (GET /farms/NAME/fg).
import { farmPath, get, put } from '../api.js';
import {
  checkbox, clearFormErrors, field, h, pageHeader, setText, showFormError, toast, updateBadge,
} from '../dom.js';
import { poll } from '../poll.js';
import { breadcrumb, farmTabs } from './farm.js';

const FG_ERRORS = [
  ['fgtimecheck', /timecheck|interval/i], ['fgtimeout', /timeout/i], ['fgrise', /rise/i],
  ['fgfall', /fall/i], ['fgcutconns', /cutconns|cut/i], ['fglog', /\blog\b|fglog/i],
  ['fgenabled', /enabled|fgenabled/i], ['fgscript', /script|command|check/i],
];

export function mount(main, name) {
  const c = {
    fgscript: h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', list: 'fg-examples', placeholder: 'check_tcp -H HOST -p PORT' }),
    fgtimecheck: h('input', { type: 'number', min: 1, inputmode: 'numeric' }),
    fgtimeout: h('input', { type: 'number', min: 0, inputmode: 'numeric' }),
    fgrise: h('input', { type: 'number', min: 1, inputmode: 'numeric' }),
    fgfall: h('input', { type: 'number', min: 1, inputmode: 'numeric' }),
  };
  const enabled = checkbox({ label: 'Health checks enabled', name: 'fgenabled' });
  const log = checkbox({ label: 'Log every check result', name: 'fglog' });
  const cut = checkbox({ label: 'Cut connections of a backend that goes down', name: 'fgcutconns' });
  const examples = h('datalist', { id: 'fg-examples' },
    ['check_tcp -H HOST -p PORT', 'check_http -H HOST -p PORT', 'check_http -H HOST -p PORT -u /health -e 200', 'check_ping -H HOST -w 2,20% -c 3,50%']
      .map((v) => h('option', { value: v })));
  const saveBtn = h('button', { type: 'submit', class: 'btn btn-primary', id: 'fg-save', text: 'Save health checks' });
  const form = h('form', { class: 'panel', id: 'fg-form', novalidate: true, 'aria-labelledby': 'fg-heading' },
    h('div', { class: 'panel-head' }, h('h2', { id: 'fg-heading', text: 'Farmguardian' })),
    h('div', { class: 'grid' },
      enabled,
      field({ label: 'Check command', name: 'fgscript', control: c.fgscript, wide: true, hint: 'A monitoring plugin; HOST and PORT are replaced by each backend’s' }),
      field({ label: 'Interval (s)', name: 'fgtimecheck', control: c.fgtimecheck }),
      field({ label: 'Timeout (s)', name: 'fgtimeout', control: c.fgtimeout, hint: '0: the interval' }),
      field({ label: 'Rise (passes to go up)', name: 'fgrise', control: c.fgrise }),
      field({ label: 'Fall (failures to go down)', name: 'fgfall', control: c.fgfall }),
      log, cut), examples,
    h('p', { class: 'form-error', role: 'alert', hidden: true }),
    h('div', { class: 'form-actions' }, saveBtn));
  const tbody = h('tbody');
  main.append(breadcrumb(name), pageHeader(`${name}: health checks`), farmTabs(name, 'health'), form,
    h('section', { class: 'panel', 'aria-labelledby': 'fg-results' },
      h('div', { class: 'panel-head' }, h('h2', { id: 'fg-results', text: 'Last result per backend' })),
      h('div', { class: 'table-wrap' }, h('table', { class: 'table', id: 'fg-table' },
        h('caption', { class: 'sr-only', text: 'Health of each backend' }),
        h('thead', {}, h('tr', {}, ['ID', 'Backend', 'Status', 'Health', 'Since', 'Reason'].map((t) => h('th', { scope: 'col', text: t })))),
        tbody))));

  const box = (wrap) => wrap.querySelector('input');
  let filled = false;

  function fill(p) {
    clearFormErrors(form);
    box(enabled).checked = p.fgenabled === 'true';
    box(log).checked = p.fglog === 'true';
    box(cut).checked = p.fgcutconns === 'true';
    for (const k of Object.keys(c)) c[k].value = String(p[k] ?? '');
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearFormErrors(form);
    const body = {
      fgenabled: box(enabled).checked ? 'true' : 'false', fglog: box(log).checked ? 'true' : 'false',
      fgcutconns: box(cut).checked ? 'true' : 'false', fgscript: c.fgscript.value.trim(),
      fgtimecheck: c.fgtimecheck.value.trim(), fgtimeout: c.fgtimeout.value.trim(),
      fgrise: c.fgrise.value.trim(), fgfall: c.fgfall.value.trim(),
    };
    saveBtn.disabled = true;
    try {
      await put(farmPath(name) + '/fg', body);
      toast('Health checks saved.');
      filled = false;
      await poller.now();
    } catch (err) { showFormError(form, err.message, FG_ERRORS); } finally { saveBtn.disabled = false; }
  });

  async function tick() {
    const fg = await get(farmPath(name) + '/fg');
    if (!filled) { fill(fg.params); filled = true; }
    const rows = fg.backends.map((b) => {
      const status = h('span', { class: 'badge' });
      updateBadge(status, b.status);
      const health = h('span', { class: 'badge' });
      updateBadge(health, fg.params.fgenabled === 'true' ? b.health : 'not checked');
      return h('tr', { dataset: { backend: String(b.id) } },
        h('td', { text: b.id }), h('td', { class: 'mono', text: `${b.ip}${b.port != null ? ':' + b.port : ''}` }),
        h('td', {}, status), h('td', {}, health),
        h('td', { text: b.changed ? new Date(b.changed).toLocaleString() : '–' }), h('td', { text: b.reason || '–' }));
    });
    // Same rows, same sizes: replace them only when something changed (no flicker).
    const sig = JSON.stringify(fg.backends) + fg.params.fgenabled;
    if (tbody.dataset.sig !== sig) { tbody.replaceChildren(...rows); tbody.dataset.sig = sig; }
    if (!rows.length) setText(tbody, '');
  }
  const poller = poll(tick);
  return { unmount() { poller.stop(); } };
}
