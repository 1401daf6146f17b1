// Small UI helpers shared by every page: an element builder, toasts, dialogs, key bindings, class colours, formats.

/**
 * h('button', {class: 'primary', onclick: fn, disabled: true}, 'Save') -> HTMLButtonElement.
 * attrs: `class`, `style` (string or object), `dataset` (object), `on<event>` (listener), boolean attributes
 * (true sets, false/null/undefined leaves out), anything else as an attribute. Children: nodes, strings, numbers,
 * arrays of those; null, undefined and false are skipped.
 */
export function h(tag, attrs, ...children) {
  const svg = tag.startsWith('svg:');
  const el = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
    : document.createElement(tag);
  let deferredValue = null;
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === 'style' && typeof value === 'object') {
      Object.assign(el.style, value);
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (key === 'value' && !svg) {
      deferredValue = value; // after the children: a <select>'s value needs its options
    } else if (key === 'checked' && !svg) {
      el.checked = Boolean(value);
    } else {
      el.setAttribute(key === 'className' ? 'class' : key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  if (deferredValue !== null) el.value = deferredValue;
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Remove every child of `el` and put `children` in. */
export function replaceChildren(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

function toastHost() {
  let host = document.getElementById('toasts');
  if (!host) {
    host = h('div', { id: 'toasts', class: 'toasts', role: 'status', 'aria-live': 'polite' });
    document.body.append(host);
  }
  return host;
}

/** A short message in the corner; kind: 'info' | 'success' | 'error'. Errors stay until closed ({timeout: 0}
 * keeps any). Returns {close(), update(message)}. */
export function toast(message, kind = 'info', { timeout } = {}) {
  const close = () => item.remove();
  const text = h('span', { class: 'toast-text' }, message);
  const item = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : null },
    text,
    h('button', { class: 'toast-close', 'aria-label': 'Close', title: 'Close', onclick: close }, '\u00d7'));
  toastHost().append(item);
  const ms = timeout ?? (kind === 'error' ? 0 : 4000);
  if (ms > 0) setTimeout(close, ms);
  return { close, update: (next) => { text.textContent = next; } };
}

/** An error caught on a page, said to the person: the API's detail, or the message. */
export function toastError(error, prefix = '') {
  const text = (error && (error.detail || error.message)) || String(error);
  return toast(prefix ? `${prefix}: ${text}` : text, 'error');
}

/**
 * A modal dialog: `modal(title, content, {actions, onClose, wide})` -> {close, element}.
 * `content` is a node (or an array of nodes); Escape and the backdrop close it; focus goes to the first field or button.
 */
export function modal(title, content, { actions = [], onClose, wide = false } = {}) {
  const previous = document.activeElement;
  const titleId = `modal-title-${Math.random().toString(36).slice(2, 8)}`;
  const dialog = h('div', { class: `modal${wide ? ' modal-wide' : ''}`, role: 'dialog', 'aria-modal': 'true',
    'aria-labelledby': titleId },
  h('div', { class: 'modal-head' }, h('h2', { id: titleId }, title),
    h('button', { class: 'icon-button', 'aria-label': 'Close', title: 'Close (Esc)', onclick: () => close() },
      '\u00d7')),
  h('div', { class: 'modal-body' }, content),
  actions.length ? h('div', { class: 'modal-actions' }, actions) : null);
  const backdrop = h('div', { class: 'modal-backdrop', onmousedown: (e) => { if (e.target === backdrop) close(); } },
    dialog);
  const onKey = (e) => {
    if (e.key === 'Escape') { e.stopPropagation(); close(); }
  };
  let closed = false;
  function close(result) {
    if (closed) return;
    closed = true;
    document.removeEventListener('keydown', onKey, true);
    backdrop.remove();
    if (previous && previous.focus) previous.focus();
    if (onClose) onClose(result);
  }
  document.addEventListener('keydown', onKey, true);
  document.body.append(backdrop);
  const first = dialog.querySelector('.modal-body input, .modal-body select, .modal-body textarea')
    || dialog.querySelector('.modal-actions .primary, .modal-actions button');
  if (first) first.focus();
  return { close, element: dialog };
}

/**
 * Ask before doing something: resolves true when confirmed. Options: {confirm: 'Delete', danger: true, title}.
 */
export function confirmDialog(message, { confirm = 'OK', cancel = 'Cancel', danger = false, title = 'Please confirm' } = {}) {
  return new Promise((resolve) => {
    let answer = false;
    const yes = h('button', { class: danger ? 'danger' : 'primary', onclick: () => { answer = true; dlg.close(); } },
      confirm);
    const no = h('button', { onclick: () => dlg.close() }, cancel);
    const dlg = modal(title, h('p', { class: 'confirm-text' }, message),
      { actions: [no, yes], onClose: () => resolve(answer) });
    yes.focus();
  });
}

// ---- keys -------------------------------------------------------------------------------------------------------

/** True when the event comes from a place where keys type text (then shortcuts stay quiet). */
export function isTyping(event) {
  const t = event.target;
  if (!t || !(t instanceof Element)) return false;
  if (t.isContentEditable) return true;
  const tag = t.tagName;
  if (tag === 'TEXTAREA' || tag === 'SELECT') return true;
  if (tag !== 'INPUT') return false;
  return !['checkbox', 'radio', 'button', 'submit', 'range', 'color'].includes(t.type);
}

/** 'ctrl+shift+z', 'alt+arrowleft', '?', 'delete', '1' ... from a keydown event (meta counts as ctrl). */
export function keyName(event) {
  let key = event.key.length === 1 ? event.key.toLowerCase() : event.key.toLowerCase();
  if (key === ' ') key = 'space';
  const parts = [];
  if (event.ctrlKey || event.metaKey) parts.push('ctrl');
  if (event.altKey) parts.push('alt');
  // shift is part of the character for printable keys ('?', 'A'), named for the others ('shift+tab')
  if (event.shiftKey && (event.key.length > 1 || /[a-z]/i.test(event.key))) parts.push('shift');
  parts.push(key);
  return parts.join('+');
}

export const keymap = {
  keyName,
  isTyping,
  /**
   * Bind keys while a page is shown: keymap.bind({'ctrl+z': undo, '?': help}, {target: document}) -> unbind().
   * A handler that returns false lets the event through; otherwise it is prevented. Typing in fields is ignored.
   */
  bind(bindings, { target = document, allowInFields = [] } = {}) {
    const listener = (event) => {
      const name = keyName(event);
      const fn = bindings[name];
      if (!fn) return;
      if (isTyping(event) && !allowInFields.includes(name)) return;
      if (fn(event) !== false) event.preventDefault();
    };
    target.addEventListener('keydown', listener);
    return () => target.removeEventListener('keydown', listener);
  },
  /** How a key name reads for a person: 'ctrl+shift+z' -> 'Ctrl+Shift+Z'. */
  label(name) {
    return name.split('+').map((p) => (p.length === 1 ? p.toUpperCase()
      : p.replace(/^arrow/, '').replace(/^./, (c) => c.toUpperCase()))).join('+');
  },
};

// ---- classes ----------------------------------------------------------------------------------------------------

/** Distinct colours for classes without one (colour-blind friendly first, then more). */
export const PALETTE = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#42d4f4', '#f032e6', '#bfef45',
  '#fabed4', '#469990', '#dcbeff', '#9a6324', '#800000', '#aaffc3', '#808000', '#000075'];
/** Default keys in class order: 1..9 then 0. */
export const DEFAULT_KEYS = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '0'];

/** The colour of a class ({id, colour} or a number id): its own `#rrggbb`, else one from the palette. */
export function colorOf(cls) {
  if (cls && typeof cls === 'object' && /^#[0-9a-f]{6}$/i.test(cls.colour || '')) return cls.colour;
  const id = typeof cls === 'number' ? cls : (cls && cls.id) || 0;
  return PALETTE[Math.abs(id) % PALETTE.length];
}

/** Black or white, whichever reads better on `hex`. */
export function textOn(hex) {
  const n = parseInt(hex.slice(1), 16);
  const [r, g, b] = [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  return 0.299 * r + 0.587 * g + 0.114 * b > 150 ? '#111' : '#fff';
}

// ---- formats ----------------------------------------------------------------------------------------------------

const numberFormat = new Intl.NumberFormat();
export const fmtNumber = (n) => (n === null || n === undefined ? '–' : numberFormat.format(n));

export function fmtMetric(value, digits = 3) {
  if (value === null || value === undefined || Number.isNaN(value)) return '–';
  return typeof value === 'number' ? value.toFixed(digits) : String(value);
}

export function fmtDate(value) {
  if (!value) return '–';
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? String(value) : d.toLocaleString(undefined,
    { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

/** '3 s', '4 min', '2 h 5 min' from seconds. */
export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return '–';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

export const plural = (n, one, many = `${one}s`) => `${fmtNumber(n)} ${n === 1 ? one : many}`;

// ---- page pieces ------------------------------------------------------------------------------------------------

/** A box that says there is nothing here yet and what to do next (`action` is an optional node). */
export function emptyState(title, text, action = null) {
  return h('div', { class: 'empty' }, h('h3', {}, title), text ? h('p', {}, text) : null, action);
}

/** A message for a part of a page that failed to load, with what to do. */
export function errorState(error, what = 'This part of the page') {
  const status = error && error.status;
  const hint = status === 0 ? 'Check that the server is running, then reload the page.'
    : status === 403 ? 'Your role in this project does not allow it; ask an admin.'
      : status === 404 ? 'It may have been deleted or renamed; go back to the projects.'
        : 'Reload the page; if it happens again, tell your admin what it says.';
  return h('div', { class: 'error-box', role: 'alert' },
    h('strong', {}, `${what} could not be loaded.`), ' ',
    h('span', {}, (error && (error.detail || error.message)) || ''), h('p', {}, hint));
}

export const spinner = (label = 'Loading…') => h('div', { class: 'loading', role: 'status' },
  h('span', { class: 'spinner', 'aria-hidden': 'true' }), label);

/** A progress bar: fraction in [0, 1] or null for an unknown amount. */
export function progressBar(fraction, label = '') {
  const known = typeof fraction === 'number' && Number.isFinite(fraction);
  const pct = known ? Math.max(0, Math.min(100, fraction * 100)) : 0;
  return h('div', { class: `progress${known ? '' : ' indeterminate'}`, role: 'progressbar',
    'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': known ? Math.round(pct) : null,
    'aria-label': label || null },
  h('div', { class: 'progress-fill', style: { width: known ? `${pct}%` : '30%' } }));
}

/** A page heading with optional actions on the right. */
export function pageHeader(title, subtitle, ...actions) {
  return h('div', { class: 'page-header' },
    h('div', {}, h('h1', {}, title), subtitle ? h('p', { class: 'subtitle' }, subtitle) : null),
    actions.length ? h('div', { class: 'page-actions' }, actions) : null);
}

/** `fn` called at most once every `ms` after the calls stop. */
export function debounce(fn, ms = 250) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** '#/p/<project>/<rest>' with the project name escaped. */
export function projectHref(project, rest = '') {
  return `#/p/${encodeURIComponent(project)}${rest ? `/${rest}` : ''}`;
}

export const TASK_LABELS = {
  classification: 'Classification', tagging: 'Tagging', detection: 'Detection', segmentation: 'Segmentation',
};
export const taskLabel = (task) => TASK_LABELS[task] || task;

/** What each kind of background job is called in the pages. */
export const JOB_KINDS = { import: 'Import', export: 'Export', train: 'Training', evaluate: 'Evaluation', package: 'Package',
  preannotate: 'Pre-annotation', embed: 'Embeddings', label_errors: 'Label errors', drift: 'Drift check',
  loop: 'Loop cycle' };
