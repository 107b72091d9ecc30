// HA cluster and IPDS state. Both features are optional: each section asks its endpoint and,
// when this kernlb does not serve it yet (404), says so instead of failing.
import { get } from '../api.js';
import { h, pageHeader } from '../dom.js';

const SECTIONS = [
  { id: 'cluster', title: 'Cluster', path: '/system/cluster', what: 'high availability (cluster nodes, VRRP roles, sync lag)' },
  { id: 'blacklists', title: 'IPDS blacklists and whitelists', path: '/ipds/blacklists', what: 'IPDS lists' },
  { id: 'dos', title: 'IPDS DoS rules', path: '/ipds/dos', what: 'IPDS DoS rules' },
];

export function mount(main) {
  main.append(pageHeader('Cluster & IPDS'));
  for (const s of SECTIONS) {
    const body = h('div', { class: 'section-body' }, h('p', { class: 'muted', text: 'Loading…' }));
    main.append(h('section', { class: 'panel', id: `sec-${s.id}`, 'aria-labelledby': `h-${s.id}` },
      h('div', { class: 'panel-head' }, h('h2', { id: `h-${s.id}`, text: s.title }), h('code', { class: 'muted', text: s.path })), body));
    get(s.path).then((data) => body.replaceChildren(render(data))).catch((err) => {
      // ZAPI's unknown-route 404 says "Request not found: PATH"; any other answer (e.g. "This
      // node is not in a cluster ...") is the feature's own word and is shown as it is.
      const unserved = err.status === 404 && /^Request not found/.test(err.message);
      body.replaceChildren(h('p', { class: 'notice', text: unserved
        ? `This kernlb does not serve ${s.path} yet: ${s.what} will show here once it does.`
        : err.message }));
    });
  }
  return {};
}

// Generic view of a ZAPI answer: arrays of objects as tables, objects as key/value lists.
function render(data) {
  const payload = data.params ?? data;
  return value(payload);
}

function value(v) {
  if (Array.isArray(v)) {
    if (!v.length) return h('p', { class: 'muted', text: 'None.' });
    if (v.every((x) => x && typeof x === 'object' && !Array.isArray(x))) {
      // The identifying column first, whatever order the API keeps its keys in.
      const cols = [...new Set(v.flatMap((x) => Object.keys(x)))]
        .sort((a, b) => (b === 'name') - (a === 'name'));
      return h('div', { class: 'table-wrap' }, h('table', { class: 'table' },
        h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col', text: c })))),
        h('tbody', {}, v.map((x) => h('tr', {}, cols.map((c) => h('td', {}, scalar(x[c]))))))));
    }
    return h('p', { text: v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))).join(', ') });
  }
  if (v && typeof v === 'object') {
    return h('dl', { class: 'facts' }, Object.entries(v).map(([k, x]) => [h('dt', { text: k }), h('dd', {}, typeof x === 'object' && x !== null ? value(x) : scalar(x))]));
  }
  return scalar(v);
}

function scalar(x) {
  if (x === undefined || x === null) return '–';
  if (Array.isArray(x) && x.every((y) => typeof y !== 'object')) return x.length ? x.join(', ') : '–';
  return typeof x === 'object' ? JSON.stringify(x) : String(x);
}
