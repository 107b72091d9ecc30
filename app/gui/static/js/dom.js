// Tiny DOM helpers. Text always goes through textContent / text nodes, never parsed as HTML, so
// a farm or backend field holding markup is shown as text.
export function h(tag, props = {}, ...children) {
  const el = tag.startsWith('svg:')
    ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
    : document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'text') el.textContent = String(value);
    else if (name === 'class') el.setAttribute('class', value);
    else if (name === 'dataset') Object.assign(el.dataset, value);
    else if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2), value);
    } else if (name in el && !name.includes('-') && typeof value !== 'string' && !tag.startsWith('svg:')) {
      el[name] = value;
    } else el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); }

export function setText(el, value) {
  const text = String(value);
  if (el.textContent !== text) el.textContent = text;
}

let uid = 0;
export const nextId = (prefix) => `${prefix}-${++uid}`;

// A labelled control with a slot for the API's error message right under it.
export function field({ label, name, control, hint, wide = false }) {
  const id = control.id || nextId(`f-${name}`);
  control.id = id;
  control.name = name;
  const error = h('p', { class: 'field-error', id: `${id}-error`, role: 'alert', hidden: true });
  const described = [error.id];
  let hintEl = null;
  if (hint) {
    hintEl = h('p', { class: 'hint', id: `${id}-hint`, text: hint });
    described.push(hintEl.id);
  }
  control.setAttribute('aria-describedby', described.join(' '));
  const wrap = h('div', { class: wide ? 'field wide' : 'field', dataset: { field: name } },
    h('label', { for: id, text: label }), control, hintEl, error);
  return wrap;
}

export function checkbox({ label, name, checked, hint }) {
  const id = nextId(`f-${name}`);
  const input = h('input', { type: 'checkbox', id, name, checked: Boolean(checked) });
  const error = h('p', { class: 'field-error', id: `${id}-error`, role: 'alert', hidden: true });
  input.setAttribute('aria-describedby', error.id);
  return h('div', { class: 'field check', dataset: { field: name } },
    h('span', { class: 'check-row' }, input, h('label', { for: id, text: label })),
    hint ? h('p', { class: 'hint', text: hint }) : null, error);
}

export function select(options, value) {
  const el = h('select');
  for (const opt of options) {
    const [val, text] = Array.isArray(opt) ? opt : [opt, opt];
    el.append(h('option', { value: val, text }));
  }
  if (value !== undefined) el.value = value;
  return el;
}

// Clears every field error of a form, then shows `message` next to the field the API's
// message names (first match of `patterns`), or in the form's general error slot.
export function showFormError(form, message, patterns) {
  clearFormErrors(form);
  for (const [name, pattern] of patterns) {
    if (!pattern.test(message)) continue;
    const wrap = form.querySelector(`[data-field="${name}"]`);
    if (!wrap) continue;
    const slot = wrap.querySelector('.field-error');
    const control = wrap.querySelector('input, select, textarea');
    slot.textContent = message;
    slot.hidden = false;
    wrap.classList.add('invalid');
    if (control) { control.setAttribute('aria-invalid', 'true'); control.focus(); }
    return;
  }
  const general = form.querySelector('.form-error');
  if (general) { general.textContent = message; general.hidden = false; }
}

export function clearFormErrors(form) {
  for (const slot of form.querySelectorAll('.field-error, .form-error')) {
    slot.textContent = '';
    slot.hidden = true;
  }
  for (const wrap of form.querySelectorAll('.invalid')) wrap.classList.remove('invalid');
  for (const c of form.querySelectorAll('[aria-invalid]')) c.removeAttribute('aria-invalid');
}

export function statusBadge(status) {
  const s = String(status || 'unknown');
  return h('span', { class: `badge badge-${badgeKind(s)}`, text: s });
}

export function badgeKind(status) {
  switch (status) {
    case 'up': return 'up';
    case 'down': case 'fgDOWN': return 'down';
    case 'maintenance': return 'maint';
    case 'critical': case 'problem': case 'needed restart': return 'warn';
    case 'stopped': case 'undefined': return 'off';
    default: return 'off';
  }
}

export function updateBadge(el, status) {
  const s = String(status || 'unknown');
  setText(el, s);
  const cls = `badge badge-${badgeKind(s)}`;
  if (el.getAttribute('class') !== cls) el.setAttribute('class', cls);
}

export function toast(message, kind = 'ok') {
  const box = document.getElementById('toasts');
  const el = h('div', { class: `toast toast-${kind}`, text: message });
  box.append(el);
  while (box.children.length > 3) box.firstChild.remove();
  setTimeout(() => el.remove(), kind === 'error' ? 8000 : 4000);
}

// A modal <dialog>: Esc and "Cancel" close it, focus returns to the opener.
export function openDialog({ title, body, submitLabel = 'Save', danger = false, onSubmit }) {
  const opener = document.activeElement;
  const titleId = nextId('dlg-title');
  const general = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const submit = h('button', { type: 'submit', class: danger ? 'btn btn-danger' : 'btn btn-primary', text: submitLabel });
  const form = h('form', { method: 'dialog', class: 'dialog-form', novalidate: true },
    h('h2', { id: titleId, text: title }), body, general,
    h('div', { class: 'dialog-actions' },
      h('button', { type: 'button', class: 'btn', text: 'Cancel', onclick: () => dialog.close() }),
      submit));
  const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': titleId }, form);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    submit.disabled = true;
    try {
      const done = await onSubmit(form);
      if (done !== false) dialog.close();
    } finally { submit.disabled = false; }
  });
  dialog.addEventListener('close', () => {
    dialog.remove();
    if (opener && opener.isConnected) opener.focus();
  });
  document.body.append(dialog);
  dialog.showModal();
  const first = form.querySelector('input:not([type=hidden]), select, textarea');
  (first || submit).focus();
  return { dialog, form };
}

export function confirmDialog({ title, message, confirmLabel }) {
  return new Promise((resolve) => {
    let confirmed = false;
    const { dialog } = openDialog({
      title, body: h('p', { text: message }), submitLabel: confirmLabel, danger: true,
      onSubmit: () => { confirmed = true; },
    });
    dialog.addEventListener('close', () => resolve(confirmed));
  });
}

export function pageHeader(title, ...actions) {
  return h('div', { class: 'page-head' },
    h('h1', { tabindex: '-1', text: title }),
    h('div', { class: 'page-actions' }, actions));
}

export function formatNumber(n) {
  return typeof n === 'number' && Number.isFinite(n) ? n.toLocaleString('en-US') : '–';
}
