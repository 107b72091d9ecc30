// One farm: every l4xnat setting in one form (one PUT: all or nothing, as the API is),
// actions, and its backends with live status, health and connections.
import { del, farmPath, get, put, post } from '../api.js';
import {
  clearFormErrors, confirmDialog, field, formatNumber, h, openDialog, pageHeader, select,
  setText, showFormError, toast, updateBadge,
} from '../dom.js';
import { poll } from '../poll.js';

export const ALGORITHMS = [
  ['weight', 'weight (weighted random)'], ['roundrobin', 'roundrobin'],
  ['leastconn', 'leastconn'], ['hash_srcip', 'hash_srcip'],
  ['hash_srcip_srcport', 'hash_srcip_srcport'], ['symhash', 'symhash'],
];
const NATTYPES = [
  ['nat', 'nat (SNAT + DNAT)'], ['dnat', 'dnat'], ['dsr', 'dsr (direct server return)'],
  ['stateless_dnat', 'stateless_dnat'],
];
const PERSISTENCE = [
  ['', 'none'], ['ip', 'ip (source address)'], ['srcport', 'srcport'], ['srcmac', 'srcmac'],
  ['srcip_srcport', 'srcip_srcport'], ['srcip_dstport', 'srcip_dstport'],
];
const PROTOCOLS = [
  ['tcp', 'tcp'], ['udp', 'udp'], ['sctp', 'sctp'], ['all', 'all'],
  ['ftp', 'ftp (helper)'], ['tftp', 'tftp (helper)'], ['sip', 'sip (helper)'], ['irc', 'irc (helper)'],
  ['pptp', 'pptp (helper)'], ['sane', 'sane (helper)'], ['amanda', 'amanda (helper)'],
  ['snmp', 'snmp (helper)'], ['netbios-ns', 'netbios-ns (helper)'],
];
const FARM_ERRORS = [
  ['newfarmname', /farm ?name|farm .* already exists/i],
  ['algorithm', /algorithm/i],
  ['nattype', /nattype/i],
  ['persistence', /persistence/i],
  ['ttl', /\bttl\b/i],
  ['protocol', /protocol|helper/i],
  ['source_addr', /source/i],
  ['vport', /vport|\bport\b/i],
  ['vip', /\bvip\b/i],
];
const BACKEND_ERRORS = [
  ['port', /\bport\b/i],
  ['weight', /weight/i],
  ['priority', /priority/i],
  ['max_conns', /connection limit|max_conns/i],
  ['source_addr', /source/i],
  ['ip', /\bIP\b/i],
];

export function farmTabs(name, active) {
  return h('nav', { class: 'tabs', 'aria-label': 'Farm' },
    h('a', { href: '#' + farmPath(name), 'aria-current': active === 'farm' ? 'page' : null, text: 'Settings & backends' }),
    h('a', { href: '#' + farmPath(name) + '/health', 'aria-current': active === 'health' ? 'page' : null, text: 'Health checks' }));
}

export function breadcrumb(name) {
  return h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/', text: 'Dashboard' }), ' / ', h('span', { text: name }));
}

function withOption(sel, value) {
  // Keep a value the lists above do not know (a newer server's) selectable and visible.
  if (value !== undefined && value !== null && ![...sel.options].some((o) => o.value === value)) {
    sel.append(h('option', { value, text: value }));
  }
  sel.value = value ?? '';
  return sel;
}

export function mount(main, name) {
  const statusBadge = h('span', { class: 'badge', id: 'farm-status' });
  const actions = ['start', 'stop', 'restart'].map((action) => h('button', {
    type: 'button', class: 'btn', id: `farm-${action}`, text: action[0].toUpperCase() + action.slice(1),
    onclick: () => farmAction(action),
  }));
  const deleteBtn = h('button', { type: 'button', class: 'btn btn-danger', id: 'farm-delete', text: 'Delete farm', onclick: deleteFarm });
  const head = pageHeader(name, ...actions, deleteBtn);
  head.querySelector('h1').append(' ', statusBadge);

  const controls = {
    newfarmname: h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false' }),
    vip: h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false' }),
    vport: h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false' }),
    protocol: select(PROTOCOLS),
    algorithm: select(ALGORITHMS),
    nattype: select(NATTYPES),
    persistence: select(PERSISTENCE),
    ttl: h('input', { type: 'number', min: 1, step: 1, inputmode: 'numeric' }),
    source_addr: h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', placeholder: 'masquerade' }),
  };
  const saveBtn = h('button', { type: 'submit', class: 'btn btn-primary', id: 'farm-save', text: 'Save changes' });
  const resetBtn = h('button', { type: 'button', class: 'btn', text: 'Discard', onclick: () => fillForm(loaded) });
  const form = h('form', { class: 'panel', id: 'farm-form', novalidate: true, 'aria-labelledby': 'farm-settings-heading' },
    h('div', { class: 'panel-head' }, h('h2', { id: 'farm-settings-heading', text: 'Settings' })),
    h('div', { class: 'grid' },
      field({ label: 'Name', name: 'newfarmname', control: controls.newfarmname, hint: 'Renaming needs the farm stopped' }),
      field({ label: 'Virtual IP', name: 'vip', control: controls.vip }),
      field({ label: 'Virtual port(s)', name: 'vport', control: controls.vport, hint: '80, 80,443, 1000:2000 or *' }),
      field({ label: 'Protocol', name: 'protocol', control: controls.protocol }),
      field({ label: 'Algorithm', name: 'algorithm', control: controls.algorithm }),
      field({ label: 'NAT type', name: 'nattype', control: controls.nattype }),
      field({ label: 'Persistence', name: 'persistence', control: controls.persistence }),
      field({ label: 'Persistence TTL (s)', name: 'ttl', control: controls.ttl }),
      field({ label: 'Source address (SNAT)', name: 'source_addr', control: controls.source_addr, hint: 'Empty: masquerade (nat mode)' })),
    h('p', { class: 'form-error', role: 'alert', hidden: true }),
    h('div', { class: 'form-actions' }, resetBtn, saveBtn));

  const tbody = h('tbody');
  const backendsPanel = h('section', { class: 'panel', 'aria-labelledby': 'backends-heading' },
    h('div', { class: 'panel-head' }, h('h2', { id: 'backends-heading', text: 'Backends' }),
      h('button', { type: 'button', class: 'btn btn-primary', id: 'backend-add', text: 'Add backend', onclick: () => backendDialog(null) })),
    h('div', { class: 'table-wrap' }, h('table', { class: 'table backends', id: 'backends-table' },
      h('caption', { class: 'sr-only', text: `Backends of ${name}` }),
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col', class: 'num', text: 'ID' }), h('th', { scope: 'col', text: 'IP' }),
        ['Port', 'Weight', 'Priority', 'Max conns'].map((t) => h('th', { scope: 'col', class: 'num', text: t })),
        h('th', { scope: 'col', text: 'Status' }), h('th', { scope: 'col', text: 'Health' }),
        h('th', { scope: 'col', class: 'num', text: 'Established' }), h('th', { scope: 'col', class: 'num', text: 'Pending' }),
        h('th', { scope: 'col', text: 'Actions' }))),
      tbody)),
    h('p', { class: 'empty', id: 'backends-empty', hidden: true, text: 'No backends yet.' }));

  // IPDS (blacklists/whitelists, DoS rules) applied to this farm: shown when the farm has any
  // (GET /farms/NAME carries `ipds` then), with what each dropped (GET /stats/farms/NAME).
  const ipdsBody = h('tbody');
  const ipdsPanel = h('section', { class: 'panel', id: 'farm-ipds', hidden: true, 'aria-labelledby': 'ipds-heading' },
    h('div', { class: 'panel-head' }, h('h2', { id: 'ipds-heading', text: 'IPDS' }), h('a', { href: '#/cluster', text: 'All lists and rules' })),
    h('div', { class: 'table-wrap' }, h('table', { class: 'table', id: 'ipds-table' },
      h('caption', { class: 'sr-only', text: `IPDS of ${name}` }),
      h('thead', {}, h('tr', {}, ['Kind', 'Name', 'Policy / rule', 'Status'].map((t) => h('th', { scope: 'col', text: t })),
        h('th', { scope: 'col', class: 'num', text: 'Dropped packets' }), h('th', { scope: 'col', class: 'num', text: 'Dropped bytes' }))),
      ipdsBody)));

  main.append(breadcrumb(name), head, farmTabs(name, 'farm'), form, backendsPanel, ipdsPanel);

  function showIpds(ipds, counters) {
    const items = [];
    for (const [kind, label] of [['blacklists', 'list'], ['dos', 'DoS rule']]) {
      const dropped = new Map(((counters || {})[kind] || []).map((c) => [c.name, c]));
      for (const item of (ipds && ipds[kind]) || []) {
        const c = dropped.get(item.name) || {};
        items.push([label, item.name, c.policy || c.rule || item.policy || item.rule || '–', item.status || '–', c.packets, c.bytes]);
      }
    }
    ipdsPanel.hidden = items.length === 0;
    const sig = JSON.stringify(items);
    if (ipdsBody.dataset.sig === sig) return;
    ipdsBody.dataset.sig = sig;
    ipdsBody.replaceChildren(...items.map(([kind, itemName, policy, status, packets, bytes]) => {
      const badge = h('span', { class: 'badge' });
      updateBadge(badge, status);
      return h('tr', {}, h('td', { text: kind }), h('th', { scope: 'row', text: itemName }), h('td', { text: policy }),
        h('td', {}, badge), h('td', { class: 'num', text: formatNumber(packets) }), h('td', { class: 'num', text: formatNumber(bytes) }));
    }));
  }

  let loaded = null;
  let stopped = false;
  const rows = new Map();

  function fillForm(params) {
    if (!params) return;
    clearFormErrors(form);
    controls.newfarmname.value = name;
    controls.vip.value = params.vip;
    controls.vport.value = String(params.vport);
    withOption(controls.protocol, params.protocol);
    withOption(controls.algorithm, params.algorithm);
    withOption(controls.nattype, params.nattype);
    withOption(controls.persistence, params.persistence);
    controls.ttl.value = String(params.ttl);
    controls.source_addr.value = params.source_addr || '';
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearFormErrors(form);
    const body = {
      vip: controls.vip.value.trim(), vport: controls.vport.value.trim(),
      protocol: controls.protocol.value, algorithm: controls.algorithm.value,
      nattype: controls.nattype.value, persistence: controls.persistence.value,
      ttl: controls.ttl.value.trim(), source_addr: controls.source_addr.value.trim(),
    };
    const newName = controls.newfarmname.value.trim();
    if (newName !== name) body.newfarmname = newName;
    saveBtn.disabled = true;
    try {
      await put(farmPath(name), body);
      toast(`Farm ${newName} saved.`);
      if (newName !== name) { location.hash = '#' + farmPath(newName); return; }
      loaded = null;
      await poller.now();
    } catch (err) {
      showFormError(form, err.message, FARM_ERRORS);
    } finally { saveBtn.disabled = false; }
  });

  async function farmAction(action) {
    try {
      await put(farmPath(name) + '/actions', { action });
      toast(`Farm ${name}: ${action} done.`);
    } catch (err) { toast(err.message, 'error'); }
    await poller.now();
  }

  async function deleteFarm() {
    const ok = await confirmDialog({
      title: `Delete farm ${name}?`,
      message: `The farm, its ${rows.size} backend(s) and its kernel rules are removed at once. Established connections through it stop.`,
      confirmLabel: 'Delete farm',
    });
    if (!ok) return;
    try {
      await del(farmPath(name));
      toast(`Farm ${name} deleted.`);
      location.hash = '#/';
    } catch (err) { toast(err.message, 'error'); }
  }

  function backendDialog(backend) {
    const c = {
      ip: h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', value: backend ? backend.ip : '' }),
      port: h('input', { type: 'number', min: 1, max: 65535, inputmode: 'numeric', value: backend && backend.port != null ? String(backend.port) : '' }),
      weight: h('input', { type: 'number', min: 1, max: 9, value: String(backend ? backend.weight : 1) }),
      priority: h('input', { type: 'number', min: 0, max: 9, value: String(backend ? backend.priority : 1) }),
      max_conns: h('input', { type: 'number', min: 0, value: String(backend ? backend.max_conns : 0) }),
      source_addr: h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', value: backend && backend.source_addr ? backend.source_addr : '' }),
    };
    openDialog({
      title: backend ? `Edit backend ${backend.id}` : 'Add backend',
      submitLabel: backend ? 'Save backend' : 'Add backend',
      body: h('div', { class: 'grid' },
        field({ label: 'IP address', name: 'ip', control: c.ip }),
        field({ label: 'Port', name: 'port', control: c.port, hint: 'Empty: keep the client’s port' }),
        field({ label: 'Weight (1–9)', name: 'weight', control: c.weight }),
        field({ label: 'Priority (0–9)', name: 'priority', control: c.priority }),
        field({ label: 'Max connections', name: 'max_conns', control: c.max_conns, hint: '0: unlimited' }),
        field({ label: 'Source address (SNAT)', name: 'source_addr', control: c.source_addr })),
      async onSubmit(dialogForm) {
        const body = {
          ip: c.ip.value.trim(), port: c.port.value.trim(), weight: c.weight.value.trim(),
          priority: c.priority.value.trim(), max_conns: c.max_conns.value.trim(),
        };
        const source = c.source_addr.value.trim();
        if (source || (backend && backend.source_addr)) body.source_addr = source;
        try {
          if (backend) await put(`${farmPath(name)}/backends/${backend.id}`, body);
          else await post(`${farmPath(name)}/backends`, body);
        } catch (err) {
          showFormError(dialogForm, err.message, BACKEND_ERRORS);
          return false;
        }
        toast(backend ? `Backend ${backend.id} saved.` : `Backend ${body.ip} added.`);
        poller.now();
        return true;
      },
    });
  }

  async function maintenance(backend, action, mode) {
    try {
      await put(`${farmPath(name)}/backends/${backend.id}/maintenance`, mode ? { action, mode } : { action });
      toast(`Backend ${backend.id}: ${mode || action}.`);
    } catch (err) { toast(err.message, 'error'); }
    await poller.now();
  }

  async function deleteBackend(backend) {
    const ok = await confirmDialog({
      title: `Delete backend ${backend.id}?`,
      message: `${backend.ip}${backend.port != null ? ':' + backend.port : ''} leaves the farm and its connections are cut.`,
      confirmLabel: 'Delete backend',
    });
    if (!ok) return;
    try {
      await del(`${farmPath(name)}/backends/${backend.id}`);
      toast(`Backend ${backend.id} deleted.`);
    } catch (err) { toast(err.message, 'error'); }
    await poller.now();
  }

  function makeRow(id) {
    const cell = (cls) => h('td', { class: cls });
    const r = {
      backend: null,
      id: cell('num'), ip: cell('mono'), port: cell('num'), weight: cell('num'), priority: cell('num'),
      max: cell('num'), status: h('span', { class: 'badge' }), health: h('span', { class: 'health' }),
      reason: h('span', { class: 'muted small' }), est: cell('num'), pend: cell('num'),
    };
    const btn = (text, label, onclick, cls = 'btn btn-small') => h('button', { type: 'button', class: cls, text, 'aria-label': label, onclick });
    r.drain = btn('Drain', `Drain backend ${id}`, () => maintenance(r.backend, 'maintenance', 'drain'));
    r.cut = btn('Cut', `Cut backend ${id}`, () => maintenance(r.backend, 'maintenance', 'cut'));
    r.up = btn('Up', `Put backend ${id} up`, () => maintenance(r.backend, 'up'));
    r.tr = h('tr', { dataset: { backend: String(id) } }, r.id, r.ip, r.port, r.weight, r.priority, r.max,
      h('td', {}, r.status), h('td', { class: 'health-cell' }, r.health, h('br'), r.reason), r.est, r.pend,
      h('td', { class: 'row-actions' },
        btn('Edit', `Edit backend ${id}`, () => backendDialog(r.backend)), r.drain, r.cut, r.up,
        btn('Delete', `Delete backend ${id}`, () => deleteBackend(r.backend), 'btn btn-small btn-danger-ghost')));
    return r;
  }

  async function tick() {
    const [farm, stats, fg] = await Promise.all([
      get(farmPath(name)),
      get(`/stats/farms/${encodeURIComponent(name)}`).catch(() => null),
      get(farmPath(name) + '/fg').catch(() => null),
    ]);
    if (stopped) return;
    updateBadge(statusBadge, farm.params.status);
    if (!loaded) fillForm(farm.params);
    loaded = farm.params;
    const conns = new Map((stats?.backends || []).map((b) => [b.id, b]));
    const healths = new Map((fg?.backends || []).map((b) => [b.id, b]));
    const ids = farm.backends.map((b) => b.id);
    if (ids.join(',') !== [...rows.keys()].join(',')) {
      const keep = new Map(rows);
      rows.clear();
      for (const id of ids) rows.set(id, keep.get(id) || makeRow(id));
      tbody.replaceChildren(...[...rows.values()].map((r) => r.tr));
    }
    for (const b of farm.backends) {
      const r = rows.get(b.id);
      r.backend = b;
      setText(r.id, b.id); setText(r.ip, b.ip); setText(r.port, b.port ?? '(client’s)');
      setText(r.weight, b.weight); setText(r.priority, b.priority); setText(r.max, b.max_conns || '∞');
      updateBadge(r.status, b.status);
      const hl = healths.get(b.id);
      setText(r.health, hl ? (farm.params.fgenabled === 'true' ? hl.health : 'not checked') : '–');
      setText(r.reason, hl && hl.changed ? `${hl.reason || 'changed'} · ${new Date(hl.changed).toLocaleTimeString()}` : (hl && hl.reason) || '');
      const s = conns.get(b.id);
      setText(r.est, s ? formatNumber(s.established) : '–');
      setText(r.pend, s ? formatNumber(s.pending) : '–');
      r.drain.disabled = b.status === 'maintenance';
      r.cut.disabled = b.status === 'maintenance';
      r.up.disabled = b.status !== 'maintenance';
    }
    document.getElementById('backends-empty').hidden = farm.backends.length > 0;
    showIpds(farm.ipds, stats && stats.ipds);
  }

  const poller = poll(async () => {
    try { await tick(); } catch (err) {
      if (err.status === 404 || err.status === 400) {
        main.replaceChildren(breadcrumb(name), h('div', { class: 'page-head' }, h('h1', { tabindex: '-1', text: name })),
          h('p', { class: 'notice', text: err.message }));
        poller.stop();
      } else throw err;
    }
  });
  return { unmount() { stopped = true; poller.stop(); } };
}
