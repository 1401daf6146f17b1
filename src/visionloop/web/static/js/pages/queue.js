// #/p/:project/queue — My queue (annotators): the signed-in person's work items per state and per batch, one big
// button that opens the next item in the editor's work mode (rejections first), and the rejected items with the
// reviewer's reason. Nothing here tells one kind of item from another.
import { api, projectPath } from '../api.js';
import { emptyState, fmtDate, fmtNumber, h, keymap, pageHeader, plural, toastError } from '../ui.js';
import { TAG_LABELS, itemHref, openNext } from '../editor/work.js';

let unbind = null;

export function dispose() {
  if (unbind) unbind();
  unbind = null;
}

export const STATES = [
  ['todo', 'To do'], ['rejected', 'Rejected: to fix'], ['submitted', 'Submitted, waiting for review'],
  ['approved', 'Approved'],
];

function tile(value, label, state) {
  return h('div', { class: `stat queue-stat${value ? ` queue-${state}` : ''}` }, // coloured when there are some
    h('div', { class: 'stat-value', 'data-testid': `queue-${state}` }, fmtNumber(value)),
    h('div', { class: 'stat-label' }, label));
}

/** One bar per batch: approved, submitted, rejected and to do as stacked parts. */
export function batchBar(counts) {
  const total = STATES.reduce((n, [s]) => n + (counts[s] || 0), 0) || 1;
  return h('div', { class: 'work-bar', role: 'img', 'aria-label': STATES.map(([s, l]) => `${l}: ${counts[s] || 0}`)
    .join(', ') }, ['approved', 'submitted', 'rejected', 'todo'].map((s) => (counts[s] ? h('span', {
    class: `work-bar-part work-${s}`, style: { width: `${(100 * counts[s]) / total}%` },
    title: `${STATES.find(([x]) => x === s)[1]}: ${counts[s]}` }) : null)));
}

export async function render(root, { project }) {
  dispose();
  const mine = await api.get(projectPath(project, 'work/mine'));
  const c = mine.counts;
  const open = c.todo + c.rejected;
  const started = c.submitted + c.approved + c.rejected > 0;
  const start = h('button', { class: 'primary queue-start', 'data-testid': 'queue-start', disabled: !open,
    onclick: async () => {
      start.disabled = true;
      try {
        await openNext(project);
      } catch (e) {
        toastError(e, 'Could not open the next image');
        start.disabled = false;
      }
    } }, c.rejected ? 'Fix the rejected images' : started ? 'Continue' : 'Start', h('kbd', {}, 'Enter'));
  unbind = keymap.bind({ enter: (e) => (open && !e.target.closest('a, button') ? start.click() : false) });

  const head = pageHeader('My queue', open
    ? `${plural(open, 'image')} waiting for you. Rejected ones come first; Shift+Enter in the editor submits an `
      + 'image and opens the next.'
    : 'Nothing waiting for you.', start);
  const stats = h('div', { class: 'stat-row' }, STATES.map(([s, label]) => tile(c[s], label, s)));
  const batches = mine.batches.length ? h('section', { class: 'card section' }, h('h2', {}, 'Your batches'),
    h('div', { class: 'work-batches' }, mine.batches.map((b) => {
      const total = STATES.reduce((n, [s]) => n + (b.counts[s] || 0), 0);
      return h('div', { class: 'work-batch-row', 'data-batch': b.batch },
        h('span', { class: 'work-batch-name' }, b.batch), batchBar(b.counts),
        h('span', { class: 'muted num' }, `${b.counts.approved + b.counts.submitted} / ${total} done`));
    })), legend())
    : emptyState('No work assigned to you yet', 'An admin assigns images to you on the Work page; they appear here.');
  const rejected = mine.rejected.length ? h('section', { class: 'card section' },
    h('h2', {}, 'Rejected: to fix'),
    h('table', { class: 'table', 'data-testid': 'queue-rejected-list' },
      h('thead', {}, h('tr', {}, ['Image', 'Batch', 'Reason', 'Issues', 'By', 'When'].map((t) => h('th', {}, t)))),
      h('tbody', {}, mine.rejected.map((r) => h('tr', { 'data-item': r.item },
        h('td', {}, h('a', { href: itemHref(project, { item: r.item, image: { id: r.image_id } }) }, r.name)),
        h('td', {}, r.batch), h('td', { class: 'queue-reason' }, r.reason || '–'),
        h('td', {}, h('div', { class: 'chips' }, r.tags.map((t) => h('span', { class: 'badge bad' },
          TAG_LABELS[t] || t)))),
        h('td', {}, r.author || '–'), h('td', {}, fmtDate(r.rejected_at)))))))
    : null;
  root.replaceChildren(h('div', { class: 'queue-page', 'data-testid': 'queue-page' }, head, stats, rejected,
    batches));
}

export function legend() {
  return h('div', { class: 'work-legend muted' }, [['approved', 'approved'], ['submitted', 'submitted'],
    ['rejected', 'rejected'], ['todo', 'to do']].map(([s, label]) => h('span', {},
    h('span', { class: `work-swatch work-${s}` }), label)));
}
