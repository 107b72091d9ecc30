// Dashboard: host figures and every farm, one page of rows at a time, refreshed every 2 s
// from /stats/farms (one request whatever the number of farms).
import { farmPath, get, post, put } from '../api.js';
import { pushSample, sparkline } from '../chart.js';
import {
  field, formatNumber, h, openDialog, pageHeader, select, setText, showFormError, updateBadge,
} from '../dom.js';
import { poll } from '../poll.js';

const PAGE_SIZE = 50;
const DETAIL_TTL_MS = 30000;
const history = new Map(); // farm name -> established samples (kept across page changes)
const details = new Map(); // farm name -> { at, params } from GET /farms/NAME

export function mount(main) {
  details.clear(); // settings may have changed since the last visit
  const cards = {
    farms: card('Farms', 'farms up of all'),
    conns: card('Connections', 'established · pending'),
    load: card('Load', '1 · 5 · 15 min'),
    memory: card('Memory', 'used of total'),
    traffic: card('Traffic', 'Mbit/s in · out, all interfaces'),
  };
  const filter = h('input', { type: 'search', id: 'farm-filter', placeholder: 'Name, VIP or port', autocomplete: 'off' });
  const range = h('span', { class: 'muted range', 'aria-live': 'polite' });
  const prev = h('button', { type: 'button', class: 'btn btn-small', text: 'Previous', 'aria-label': 'Previous page' });
  const next = h('button', { type: 'button', class: 'btn btn-small', text: 'Next', 'aria-label': 'Next page' });
  const tbody = h('tbody');
  const empty = h('p', { class: 'empty', hidden: true });
  const table = h('table', { class: 'table farms', id: 'farms-table' },
    h('caption', { class: 'sr-only', text: 'Farms' }),
    h('thead', {}, h('tr', {},
      ['Farm', 'Status', 'VIP : port', 'Protocol', 'Mode', 'Algorithm'].map((t) => h('th', { scope: 'col', text: t })),
      h('th', { scope: 'col', class: 'num' }, h('span', { class: 'long', text: 'Established' }), h('span', { class: 'short', text: 'Conns' })),
      h('th', { scope: 'col', class: 'num', text: 'Pending' }),
      h('th', { scope: 'col', class: 'chart-col' }, h('span', { class: 'long', text: 'Last 2 minutes' }), h('span', { class: 'short', text: '2 min' })))),
    tbody);
  main.append(
    pageHeader('Dashboard', h('button', { type: 'button', class: 'btn btn-primary', id: 'new-farm', text: 'New farm', onclick: newFarm })),
    h('section', { class: 'cards', 'aria-label': 'Host' }, Object.values(cards).map((c) => c.el)),
    h('section', { class: 'panel', 'aria-labelledby': 'farms-heading' },
      h('div', { class: 'panel-head' },
        h('h2', { id: 'farms-heading', text: 'Farms' }),
        h('div', { class: 'toolbar' },
          h('label', { for: 'farm-filter', class: 'sr-only', text: 'Filter farms' }), filter,
          range, h('div', { class: 'pager' }, prev, next))),
      h('div', { class: 'table-wrap' }, table), empty));

  let farms = [];
  let page = 0;
  let shown = []; // names in the current page, in order
  const rows = new Map(); // name -> row refs
  let lastNet = null;

  const visible = () => {
    const q = filter.value.trim().toLowerCase();
    return q ? farms.filter((f) => `${f.farmname} ${f.vip}:${f.vport}`.toLowerCase().includes(q)) : farms;
  };

  function render() {
    const t0 = performance.now();
    const list = visible();
    const pages = Math.max(1, Math.ceil(list.length / PAGE_SIZE));
    page = Math.min(page, pages - 1);
    const slice = list.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
    const names = slice.map((f) => f.farmname);
    if (names.join('\n') !== shown.join('\n')) {
      rows.clear();
      tbody.replaceChildren(...slice.map((f) => { const r = makeRow(f.farmname); rows.set(f.farmname, r); return r.tr; }));
      shown = names;
    }
    for (const f of slice) fillRow(rows.get(f.farmname), f);
    setText(range, list.length
      ? `${page * PAGE_SIZE + 1}–${page * PAGE_SIZE + slice.length} of ${list.length}`
      : '0 farms');
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
    empty.hidden = list.length > 0;
    setText(empty, farms.length ? 'No farm matches the filter.' : 'No farms yet: create one with “New farm”.');
    performance.measure('kernlb:dashboard-render', { start: t0, end: performance.now() });
    loadDetails(slice.map((f) => f.farmname));
  }

  function makeRow(name) {
    const chart = sparkline({ label: `Established connections of ${name}` });
    const cells = {
      status: h('span', { class: 'badge' }),
      vip: h('td', { class: 'mono' }), protocol: h('td'), mode: h('td'), algorithm: h('td'),
      est: h('td', { class: 'num' }), pend: h('td', { class: 'num' }),
    };
    const tr = h('tr', { dataset: { farm: name } },
      h('th', { scope: 'row' }, h('a', { href: '#' + farmPath(name), text: name })),
      h('td', {}, cells.status), cells.vip, cells.protocol, cells.mode, cells.algorithm,
      cells.est, cells.pend, h('td', { class: 'chart-col' }, chart.el));
    return { tr, cells, chart };
  }

  function fillRow(row, f) {
    const c = row.cells;
    updateBadge(c.status, f.status);
    setText(c.vip, `${f.vip}:${f.vport}`);
    const p = details.get(f.farmname)?.params;
    setText(c.protocol, p ? p.protocol : '…');
    setText(c.mode, p ? p.nattype : '…');
    setText(c.algorithm, p ? p.algorithm : '…');
    setText(c.est, formatNumber(f.established));
    setText(c.pend, formatNumber(f.pending));
    const series = history.get(f.farmname) || [];
    row.chart.update(series, `${f.farmname}: ${f.established} established now`);
  }

  let loading = false;
  async function loadDetails(names) {
    if (loading) return;
    const now = Date.now();
    const stale = names.filter((n) => !details.has(n) || now - details.get(n).at > DETAIL_TTL_MS);
    if (!stale.length) return;
    loading = true;
    try {
      // A few at a time: a page of 50 farms costs 50 small GETs every 30 s at most.
      for (let i = 0; i < stale.length; i += 6) {
        await Promise.all(stale.slice(i, i + 6).map(async (name) => {
          try {
            const body = await get(farmPath(name));
            details.set(name, { at: Date.now(), params: body.params });
          } catch {
            // Deleted meanwhile (the next tick drops it) or unreadable: retry after the TTL.
            details.set(name, { at: Date.now(), params: null });
          }
        }));
      }
    } finally { loading = false; }
    if (!stopped) render();
  }

  async function tick() {
    const started = performance.now();
    const [stats, sys, net] = await Promise.all([
      get('/stats/farms'), get('/stats').catch(() => null), get('/stats/system/network').catch(() => null),
    ]);
    farms = (stats.farms || []).slice().sort((a, b) => a.farmname.localeCompare(b.farmname));
    for (const f of farms) pushSample(history, f.farmname, Number(f.established) || 0);
    const names = new Set(farms.map((f) => f.farmname));
    for (const name of history.keys()) if (!names.has(name)) { history.delete(name); details.delete(name); }
    render();
    performance.measure('kernlb:dashboard-tick', { start: started, end: performance.now() });
    const up = farms.filter((f) => f.status === 'up').length;
    cards.farms.set(`${up} / ${farms.length}`);
    const est = farms.reduce((s, f) => s + (Number(f.established) || 0), 0);
    const pend = farms.reduce((s, f) => s + (Number(f.pending) || 0), 0);
    cards.conns.set(`${formatNumber(est)} · ${formatNumber(pend)}`);
    if (sys) {
      const { load, memory, cpu } = sys.params;
      cards.load.set(`${load.Last_1.toFixed(2)} · ${load.Last_5.toFixed(2)} · ${load.Last_15.toFixed(2)}`,
        `${cpu.cores} cores, CPU ${cpu.usage.toFixed(0)} % busy`);
      const pct = memory.MemTotal ? (memory.MemUsed / memory.MemTotal) * 100 : 0;
      cards.memory.set(`${gib(memory.MemUsed)} of ${gib(memory.MemTotal)}`, `${pct.toFixed(0)} % used`, pct);
    }
    if (net) {
      const totals = net.params.interfaces.reduce((acc, i) => {
        acc.in += Number(i.in) || 0; acc.out += Number(i.out) || 0; return acc;
      }, { in: 0, out: 0 });
      const at = performance.now();
      if (lastNet && at > lastNet.at) {
        const secs = (at - lastNet.at) / 1000;
        const rate = (mb) => ((Math.max(0, mb) * 8) / secs).toFixed(2);
        cards.traffic.set(`${rate(totals.in - lastNet.in)} · ${rate(totals.out - lastNet.out)}`,
          `Mbit/s in · out; ${totals.in.toFixed(1)} / ${totals.out.toFixed(1)} MB in total`);
      } else {
        cards.traffic.set('…', `Mbit/s in · out; ${totals.in.toFixed(1)} / ${totals.out.toFixed(1)} MB in total`);
      }
      lastNet = { at, ...totals };
    }
  }

  filter.addEventListener('input', () => { page = 0; render(); });
  prev.addEventListener('click', () => { page = Math.max(0, page - 1); render(); });
  next.addEventListener('click', () => { page += 1; render(); });

  let stopped = false;
  const poller = poll(tick);
  return { unmount() { stopped = true; poller.stop(); } };
}

function card(title, caption) {
  const value = h('p', { class: 'card-value', text: '…' });
  const sub = h('p', { class: 'card-sub', text: caption });
  const bar = h('div', { class: 'meter', hidden: true }, h('div', { class: 'meter-fill' }));
  const el = h('div', { class: 'card' }, h('h2', { class: 'card-title', text: title }), value, bar, sub);
  return {
    el,
    set(text, subText, percent) {
      setText(value, text);
      if (subText !== undefined) setText(sub, subText);
      if (percent !== undefined) {
        bar.hidden = false;
        bar.firstChild.style.width = `${Math.min(100, Math.max(0, percent)).toFixed(1)}%`;
      }
    },
  };
}

function gib(mb) { return `${(mb / 1024).toFixed(1)} GiB`; }

const FARM_ERRORS = [
  ['farmname', /farm ?name|farm .* already exists/i],
  ['vport', /\bvport\b|\bport\b/i],
  ['vip', /\bvip\b|\bIP\b/i],
];

function newFarm() {
  const name = h('input', { type: 'text', required: true, autocomplete: 'off', spellcheck: 'false' });
  const vip = h('input', { type: 'text', required: true, inputmode: 'decimal', autocomplete: 'off', placeholder: '198.18.0.10' });
  const vport = h('input', { type: 'text', required: true, autocomplete: 'off', placeholder: '80' });
  const protocol = select(['tcp', 'udp', 'sctp', 'all'], 'tcp');
  openDialog({
    title: 'New l4xnat farm',
    submitLabel: 'Create farm',
    body: h('div', { class: 'grid' },
      field({ label: 'Name', name: 'farmname', control: name }),
      field({ label: 'Virtual IP', name: 'vip', control: vip, hint: 'An address of this host' }),
      field({ label: 'Virtual port(s)', name: 'vport', control: vport, hint: '80, 80,443, 1000:2000 or *' }),
      field({ label: 'Protocol', name: 'protocol', control: protocol })),
    async onSubmit(form) {
      try {
        await post('/farms', { farmname: name.value.trim(), profile: 'l4xnat', vip: vip.value.trim(), vport: vport.value.trim() });
      } catch (err) {
        showFormError(form, err.message, FARM_ERRORS);
        return false;
      }
      if (protocol.value !== 'tcp') {
        try { await put(farmPath(name.value.trim()), { protocol: protocol.value }); } catch { /* the farm page shows it */ }
      }
      location.hash = '#' + farmPath(name.value.trim());
      return true;
    },
  });
}
