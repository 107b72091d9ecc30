// Virtual interfaces (list, create, delete) and, for reference, the NICs.
import { del, get, post } from '../api.js';
import { confirmDialog, field, h, openDialog, pageHeader, showFormError, toast, updateBadge } from '../dom.js';

const IF_ERRORS = [['name', /name/i], ['ip', /\bIP\b|address/i]];

export function mount(main) {
  const vbody = h('tbody');
  const nbody = h('tbody');
  const vempty = h('p', { class: 'empty', hidden: true, text: 'No virtual interfaces.' });
  main.append(pageHeader('Interfaces', h('button', { type: 'button', class: 'btn btn-primary', id: 'vif-add', text: 'New virtual interface', onclick: create })),
    h('section', { class: 'panel', 'aria-labelledby': 'vif-heading' },
      h('div', { class: 'panel-head' }, h('h2', { id: 'vif-heading', text: 'Virtual interfaces' })),
      h('div', { class: 'table-wrap' }, h('table', { class: 'table', id: 'vif-table' },
        h('caption', { class: 'sr-only', text: 'Virtual interfaces' }),
        h('thead', {}, h('tr', {}, ['Name', 'Parent', 'IP', 'Netmask', 'Status', 'Actions'].map((t) => h('th', { scope: 'col', text: t })))),
        vbody)), vempty),
    h('section', { class: 'panel', 'aria-labelledby': 'nic-heading' },
      h('div', { class: 'panel-head' }, h('h2', { id: 'nic-heading', text: 'Network interfaces' })),
      h('div', { class: 'table-wrap' }, h('table', { class: 'table', id: 'nic-table' },
        h('caption', { class: 'sr-only', text: 'Network interfaces' }),
        h('thead', {}, h('tr', {}, ['Name', 'IP', 'Netmask', 'MAC', 'Status'].map((t) => h('th', { scope: 'col', text: t })))),
        nbody))));

  async function load() {
    const [virtual, nic] = await Promise.all([get('/interfaces/virtual'), get('/interfaces/nic')]);
    vbody.replaceChildren(...virtual.interfaces.map((i) => {
      const st = h('span', { class: 'badge' }); updateBadge(st, i.status);
      return h('tr', {}, h('th', { scope: 'row', class: 'mono', text: i.name }), h('td', { text: i.parent }),
        h('td', { class: 'mono', text: i.ip }), h('td', { class: 'mono', text: i.netmask }), h('td', {}, st),
        h('td', {}, h('button', { type: 'button', class: 'btn btn-small btn-danger-ghost', text: 'Delete', 'aria-label': `Delete ${i.name}`, onclick: () => remove(i.name) })));
    }));
    vempty.hidden = virtual.interfaces.length > 0;
    nbody.replaceChildren(...nic.interfaces.map((i) => {
      const st = h('span', { class: 'badge' }); updateBadge(st, i.status);
      return h('tr', {}, h('th', { scope: 'row', class: 'mono', text: i.name }), h('td', { class: 'mono', text: i.ip || '–' }),
        h('td', { class: 'mono', text: i.netmask || '–' }), h('td', { class: 'mono', text: i.mac }), h('td', {}, st));
    }));
  }

  function create() {
    const name = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', placeholder: 'eth0:vip1' });
    const ip = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', placeholder: '198.18.0.20' });
    openDialog({
      title: 'New virtual interface', submitLabel: 'Create',
      body: h('div', { class: 'grid' },
        field({ label: 'Name', name: 'name', control: name, hint: 'parent:label, e.g. eth0:vip1' }),
        field({ label: 'IPv4 address', name: 'ip', control: ip, hint: 'Takes the parent’s netmask' })),
      async onSubmit(form) {
        try { await post('/interfaces/virtual', { name: name.value.trim(), ip: ip.value.trim() }); } catch (err) {
          showFormError(form, err.message, IF_ERRORS); return false;
        }
        toast(`Virtual interface ${name.value.trim()} created.`);
        load();
        return true;
      },
    });
  }

  async function remove(ifname) {
    if (!(await confirmDialog({ title: `Delete ${ifname}?`, message: 'Its address leaves the host; farms using it as VIP stop receiving traffic.', confirmLabel: 'Delete interface' }))) return;
    try { await del('/interfaces/virtual/' + encodeURIComponent(ifname)); toast(`${ifname} deleted.`); } catch (err) { toast(err.message, 'error'); }
    load();
  }

  load().catch((err) => toast(err.message, 'error'));
  return {};
}
