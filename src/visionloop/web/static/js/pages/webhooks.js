// #/p/:project/webhooks (admins) — the webhooks that post the project's events to other systems: add one (its
// signing secret is shown once), turn it on or off, send a test, remove it; a webhook's recent deliveries with their
// state, attempts and last answer or error (retry one that was given up); and the project's events, newest first.
// Everything goes through /api/v1/projects/{p}/webhooks and .../events; the server's worker sends the deliveries.
import { api, projectPath, roleAllows } from '../api.js';
import {
  confirmDialog, emptyState, errorState, fmtDate, fmtNumber, h, modal, pageHeader, plural, replaceChildren, spinner,
  toast, toastError,
} from '../ui.js';

const KINDS = [
  ['prediction.flagged', 'Prediction flagged'], ['review.done', 'Review done'],
  ['version.created', 'Version created'], ['model.trained', 'Model trained'],
  ['model.promoted', 'Model promoted'], ['drift.alert', 'Drift alert'],
];
const DELIVERIES = 20;
const EVENTS = 20;
const REFRESH_MS = 4000;
const STATE_BADGE = { delivered: 'ok', failed: 'bad', pending: 'info' };

let timer = null;

export function dispose() {
  clearInterval(timer);
  timer = null;
}

const badge = (state) => h('span', { class: `badge ${STATE_BADGE[state] || ''}`, 'data-state': state }, state);

export async function render(root, { project, role }) {
  dispose();
  const p = (rest) => projectPath(project, rest);
  if (!roleAllows(role, 'admin')) {
    root.append(errorState({ status: 403, message: 'Webhooks are managed by the project\'s admins.' }, 'Webhooks'));
    return;
  }
  const st = { hooks: [], selected: null, eventsOffset: 0 };
  const list = h('div', { 'data-testid': 'webhook-list' });
  const deliveries = h('section', { class: 'card section', 'data-testid': 'deliveries' });
  const events = h('section', { class: 'card section', 'data-testid': 'events' });
  const form = addForm();
  root.replaceChildren(
    pageHeader('Webhooks', 'Signed HTTP posts of this project\'s events to your other systems, retried with backoff '
      + 'until the receiver answers 2xx.'),
    h('section', { class: 'card section' }, h('div', { class: 'section-head' }, h('h2', {}, 'Webhooks')), list, form),
    deliveries, events);

  function addForm() {
    const url = h('input', { id: 'webhook-url', type: 'text', inputmode: 'url', required: true, placeholder: 'https://hooks.example.com/visionloop',
      autocomplete: 'off', maxlength: 2048 });
    const checks = KINDS.map(([kind, label]) => h('label', { class: 'check' },
      h('input', { type: 'checkbox', name: 'kind', value: kind }), label));
    const secret = h('input', { id: 'webhook-secret', type: 'text', autocomplete: 'off', minlength: 16, maxlength: 128,
      placeholder: 'leave empty: a random one is made' });
    const el = h('form', { class: 'form-rows', 'data-testid': 'webhook-form', onsubmit: (e) => { e.preventDefault(); add(); } },
      h('label', { for: 'webhook-url' }, 'URL'), url,
      h('span', {}, 'Events'), h('div', { class: 'row' }, checks, h('span', { class: 'muted' }, 'none ticked: every kind')),
      h('label', { for: 'webhook-secret' }, 'Secret'), secret,
      h('span', {}), h('div', { class: 'actions' }, h('button', { class: 'primary', type: 'submit' }, 'Add webhook')));

    async function add() {
      const kinds = checks.map((c) => c.querySelector('input')).filter((i) => i.checked).map((i) => i.value);
      try {
        const made = await api.post(p('webhooks'), { url: url.value.trim(), kinds, secret: secret.value || null });
        url.value = '';
        secret.value = '';
        checks.forEach((c) => { c.querySelector('input').checked = false; });
        showSecret(made);
        st.selected = made.id;
        await loadHooks();
      } catch (e) {
        toastError(e, 'Not added: ');
      }
    }
    return h('div', { class: 'webhook-add' }, h('h3', {}, 'Add a webhook'), el);
  }

  function showSecret(made) {
    const code = h('code', { class: 'webhook-secret', 'data-testid': 'webhook-secret' }, made.secret);
    const done = h('button', { class: 'primary', onclick: () => dlg.close() }, 'I have kept it');
    const dlg = modal('Signing secret', h('div', { class: 'stack' },
      h('p', {}, 'Each delivery to ', h('strong', {}, made.url), ' carries X-Visionloop-Signature: the HMAC-SHA256 of '
        + '"<X-Visionloop-Timestamp>.<body>" with this secret. Keep it in the receiver\'s settings: it is shown only now.'),
      code), { actions: [done] });
  }

  function hookRow(hook) {
    const kinds = hook.kinds.length ? hook.kinds.map((k) => h('span', { class: 'badge' }, k)) : h('span', { class: 'muted' }, 'every kind');
    const act = (label, fn, attrs = {}) => h('button', { class: 'small', onclick: (e) => { e.stopPropagation(); fn(); }, ...attrs }, label);
    return h('tr', { class: hook.id === st.selected ? 'selected' : null, 'data-id': hook.id, tabindex: 0,
      onclick: () => select(hook.id), onkeydown: (e) => { if (e.key === 'Enter') select(hook.id); } },
    h('td', {}, h('i', { class: `dot${hook.active ? ' on' : ''}`, title: hook.active ? 'on' : 'off' }), ' ',
      h('span', { class: 'webhook-url' }, hook.url)),
    h('td', {}, h('div', { class: 'chips' }, kinds)),
    h('td', { class: 'muted' }, `${hook.created_by}, ${fmtDate(hook.created_at)}`),
    h('td', { class: 'nowrap' },
      act(hook.active ? 'Turn off' : 'Turn on', () => toggle(hook), { 'data-action': 'toggle' }), ' ',
      act('Test', () => ping(hook), { 'data-action': 'test', disabled: hook.active ? null : true }), ' ',
      act('Remove', () => remove(hook), { 'data-action': 'remove', class: 'small danger' })));
  }

  async function loadHooks() {
    try {
      st.hooks = await api.get(p('webhooks'));
    } catch (e) {
      replaceChildren(list, errorState(e, 'The webhooks'));
      return;
    }
    if (!st.hooks.some((w) => w.id === st.selected)) st.selected = st.hooks.length ? st.hooks[0].id : null;
    replaceChildren(list, st.hooks.length
      ? h('div', { class: 'table-wrap' }, h('table', { class: 'table webhooks-table' },
        h('thead', {}, h('tr', {}, ['URL', 'Events', 'Added', ''].map((t) => h('th', {}, t)))),
        h('tbody', {}, st.hooks.map(hookRow))))
      : emptyState('No webhooks yet', 'Add one below to send review decisions, new versions, trained models, '
        + 'promotions and drift alerts to another system.'));
    await loadDeliveries();
  }

  function select(id) {
    st.selected = id;
    list.querySelectorAll('tr[data-id]').forEach((tr) => tr.classList.toggle('selected', Number(tr.dataset.id) === id));
    loadDeliveries();
  }

  async function toggle(hook) {
    try {
      await api.patch(p(`webhooks/${hook.id}`), { active: !hook.active });
      toast(`${hook.url} turned ${hook.active ? 'off' : 'on'}`, 'success');
      await loadHooks();
    } catch (e) {
      toastError(e);
    }
  }

  async function ping(hook) {
    try {
      await api.post(p(`webhooks/${hook.id}/test`));
      toast(`Test event sent to ${hook.url}`, 'success');
      st.selected = hook.id;
      await loadHooks();
    } catch (e) {
      toastError(e);
    }
  }

  async function remove(hook) {
    if (!await confirmDialog(`Remove the webhook to ${hook.url}? Its deliveries go with it; the events stay.`,
      { confirm: 'Remove', danger: true })) return;
    try {
      await api.del(p(`webhooks/${hook.id}`));
      toast('Webhook removed', 'success');
      await loadHooks();
    } catch (e) {
      toastError(e);
    }
  }

  async function loadDeliveries() {
    const hook = st.hooks.find((w) => w.id === st.selected);
    if (!hook) {
      replaceChildren(deliveries, h('div', { class: 'section-head' }, h('h2', {}, 'Deliveries')),
        h('p', { class: 'muted' }, 'Deliveries of a webhook show here.'));
      return;
    }
    let page;
    try {
      page = await api.get(p(`webhooks/${hook.id}/deliveries`), { params: { limit: DELIVERIES } });
    } catch (e) {
      replaceChildren(deliveries, errorState(e, 'The deliveries'));
      return;
    }
    const rows = page.items.map((d) => h('tr', { 'data-id': d.id, 'data-state': d.state },
      h('td', { class: 'num' }, d.id), h('td', {}, d.kind), h('td', {}, badge(d.state)),
      h('td', { class: 'num', 'data-col': 'attempts' }, fmtNumber(d.attempts)),
      h('td', { class: 'num', 'data-col': 'status' }, d.last_status ?? '–'),
      h('td', { class: 'delivery-error', title: d.last_error || '' }, d.last_error || ''),
      h('td', { class: 'muted nowrap' }, d.state === 'delivered' ? `delivered ${fmtDate(d.delivered_at)}`
        : d.state === 'pending' ? `next ${fmtDate(d.next_attempt_at)}` : `event ${fmtDate(d.event_created_at)}`),
      h('td', {}, d.state === 'failed' ? h('button', { class: 'small', 'data-action': 'retry', onclick: () => retry(hook, d) },
        'Retry') : null)));
    replaceChildren(deliveries,
      h('div', { class: 'section-head' }, h('h2', {}, 'Deliveries'),
        h('span', { class: 'muted' }, `${plural(page.total, 'delivery', 'deliveries')} to ${hook.url}`)),
      page.items.length
        ? h('div', { class: 'table-wrap' }, h('table', { class: 'table deliveries-table' },
          h('thead', {}, h('tr', {}, ['#', 'Event', 'State', 'Attempts', 'Status', 'Last error', 'When', '']
            .map((t, i) => h('th', { class: i === 0 || i === 3 || i === 4 ? 'num' : null }, t)))),
          h('tbody', {}, rows)))
        : h('p', { class: 'muted' }, 'Nothing sent yet: send a test, or wait for the next event.'));
  }

  async function retry(hook, delivery) {
    try {
      await api.post(p(`webhooks/${hook.id}/deliveries/${delivery.id}/retry`));
      toast(`Delivery ${delivery.id} queued again`, 'success');
      await loadDeliveries();
    } catch (e) {
      toastError(e);
    }
  }

  async function loadEvents() {
    let page;
    try {
      page = await api.get(p('events'), { params: { limit: EVENTS, offset: st.eventsOffset } });
    } catch (e) {
      replaceChildren(events, errorState(e, 'The events'));
      return;
    }
    const pager = h('div', { class: 'row' },
      h('button', { class: 'small', disabled: st.eventsOffset ? null : true,
        onclick: () => { st.eventsOffset = Math.max(0, st.eventsOffset - EVENTS); loadEvents(); } }, 'Newer'),
      h('button', { class: 'small', disabled: st.eventsOffset + EVENTS < page.total ? null : true,
        onclick: () => { st.eventsOffset += EVENTS; loadEvents(); } }, 'Older'));
    replaceChildren(events,
      h('div', { class: 'section-head' }, h('h2', {}, 'Events'), h('span', { class: 'muted' }, plural(page.total, 'event'))),
      page.items.length
        ? h('div', { class: 'table-wrap' }, h('table', { class: 'table events-table' },
          h('thead', {}, h('tr', {}, ['#', 'Kind', 'When', 'What'].map((t) => h('th', {}, t)))),
          h('tbody', {}, page.items.map((e) => h('tr', { 'data-id': e.id, 'data-kind': e.kind },
            h('td', { class: 'num' }, e.id), h('td', {}, e.kind), h('td', { class: 'nowrap muted' }, fmtDate(e.created_at)),
            h('td', { class: 'event-payload' }, h('code', {}, summary(e.payload))))))))
        : h('p', { class: 'muted' }, 'No events yet: they come with review decisions, new versions and trained models.'),
      page.total > EVENTS ? pager : null);
  }

  replaceChildren(list, spinner('Loading the webhooks…'));
  await Promise.all([loadHooks(), loadEvents()]);
  timer = setInterval(() => { if (!document.hidden) { loadDeliveries(); if (!st.eventsOffset) loadEvents(); } },
    REFRESH_MS);
}

/** A short line of an event's payload: its scalar fields, without the links. */
export function summary(payload) {
  return Object.entries(payload || {}).filter(([k, v]) => k !== 'links' && v !== null && v !== undefined
    && (typeof v !== 'object' || (Array.isArray(v) && v.length && v.length <= 8 && v.every((x) => typeof x !== 'object'))))
    .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(', ') : v}`).join(' · ');
}
