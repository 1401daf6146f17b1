// #/p/:project/work — Work (admins): assign images to annotators as batches (by the image list's filters, at most
// N per annotator, one annotator per image or k for a consensus; or the next N unlabelled images in active-learning
// order, which the annotators' queues then follow), set the share of honeypots, follow each batch's progress per
// state and per annotator, and keep the gold images honeypots are scored against.
import { api, projectPath } from '../api.js';
import {
  confirmDialog, emptyState, fmtDate, fmtNumber, h, keymap, pageHeader, plural, projectHref, replaceChildren,
  toast, toastError,
} from '../ui.js';
import { STATES, batchBar, legend } from './queue.js';

let unbind = null;

export function dispose() {
  if (unbind) unbind();
  unbind = null;
}

const SPLITS = [['', 'Any split'], ['train', 'Train'], ['val', 'Validation'], ['test', 'Test'], ['none', 'In no split']];
const ANNOTATED = [['', 'Annotated or not'], ['false', 'Not annotated'], ['true', 'Annotated']];
const SOURCES = [['filter', 'Images the filters select'], ['next', 'The next N to label (active learning)']];
const STRATEGIES = [['auto', 'Auto: uncertainty with the deployed model, typical images without one'],
  ['entropy', 'Entropy'], ['margin', 'Margin'], ['least_confidence', 'Least confidence'],
  ['typiclust', 'Typical images (cold start)'], ['random', 'Random']];

function field(label, control, hint) {
  return h('div', { class: 'field' }, h('label', {}, label, control), hint ? h('span', { class: 'hint' }, hint) : null);
}

function options(list, value = '') {
  return list.map(([v, text]) => h('option', { value: v, selected: v === value ? true : null }, text));
}

/** The image list's filters of the form, as the API's ImageSelection (and the browse page's query). */
function selection(form) {
  const f = {};
  if (form.cls.value) f.class = form.cls.value;
  if (form.split.value) f.split = form.split.value;
  if (form.annotated.value) f.annotated = form.annotated.value === 'true';
  if (form.q.value.trim()) f.q = form.q.value.trim();
  return f;
}

function batchForm(project, { classes, users, onCreated }) {
  const annotators = users.filter((u) => ['annotator', 'reviewer', 'admin'].includes(u.role));
  const form = {
    name: h('input', { type: 'text', id: 'batch-name', placeholder: 'e.g. week-12', maxlength: 128 }),
    cls: h('select', { id: 'batch-class' }, options([['', 'Any class'], ...classes.filter((c) => c.active !== false)
      .map((c) => [c.name, c.name])])),
    split: h('select', { id: 'batch-split' }, options(SPLITS)),
    annotated: h('select', { id: 'batch-annotated' }, options(ANNOTATED, 'false')),
    q: h('input', { type: 'search', id: 'batch-q', placeholder: 'part of a file name' }),
    perAnnotator: h('input', { type: 'number', id: 'batch-per-annotator', min: 1, placeholder: 'all', step: 1 }),
    mode: h('select', { id: 'batch-mode' }, options([['normal', 'One annotator per image'],
      ['consensus', 'Consensus: k annotators per image']])),
    k: h('input', { type: 'number', id: 'batch-k', min: 2, value: 2, step: 1 }),
    honeypot: h('input', { type: 'number', id: 'batch-honeypot', min: 0, max: 1, step: 0.05, value: 0 }),
    source: h('select', { id: 'batch-source' }, options(SOURCES)),
    nextN: h('input', { type: 'number', id: 'batch-next-n', min: 1, max: 1000, step: 1, value: 50 }),
    strategy: h('select', { id: 'batch-strategy' }, options(STRATEGIES)),
  };
  const people = h('div', { class: 'chips work-people', id: 'batch-annotators' }, annotators.length
    ? annotators.map((u) => h('label', { class: 'check chip' }, h('input', { type: 'checkbox', value: u.name,
      checked: u.role === 'annotator' }), u.name, h('span', { class: 'muted' }, u.role)))
    : h('span', { class: 'muted' }, 'No user may annotate yet: add annotators to the project first.'));
  const matched = h('span', { class: 'muted', id: 'batch-matches', 'aria-live': 'polite' }, '');
  const browse = h('a', { id: 'batch-browse' }, 'see them');
  let counting = 0;
  const count = async () => {
    const f = selection(form);
    browse.href = `${projectHref(project, 'images')}?${new URLSearchParams(f)}`;
    const n = ++counting;
    try {
      const { total } = await api.get(projectPath(project, 'images/count'), { params: f });
      if (n === counting) matched.textContent = `${plural(total, 'image')} match; gold images and images in open `
        + 'work will be left out · ';
    } catch (e) {
      if (n === counting) matched.textContent = `${e.detail || e.message} · `;
    }
  };
  for (const el of [form.cls, form.split, form.annotated]) el.addEventListener('change', count);
  form.q.addEventListener('input', count);
  const filters = h('div', { class: 'span2 work-filters' },
    field('Class ', form.cls), field('Split ', form.split), field('Annotated ', form.annotated),
    field('File name ', form.q));
  const matches = h('p', { class: 'span2 work-matches' }, matched, browse);
  const perField = field('Images per annotator ', form.perAnnotator, 'At most N each (the first by id); empty: every '
    + 'match.');
  const nextInfo = h('p', { class: 'span2 muted', id: 'batch-next-info', 'aria-live': 'polite' }, '');
  const nextFields = h('div', { class: 'span2 work-filters' },
    field('How many ', form.nextN, 'Unlabelled, outside gold and open work; the queue follows this order.'),
    field('Strategy ', form.strategy, 'Diversity (k-center on embeddings) keeps near-copies out of one batch.'));
  const syncSource = () => {
    const next = form.source.value === 'next';
    for (const el of [filters, matches, perField]) el.hidden = next;
    nextFields.hidden = !next;
    nextInfo.hidden = !next;
  };
  form.source.addEventListener('change', syncSource);
  /** The batch body's images: the ranked ids of GET .../next (best first), said in nextInfo. */
  const nextIds = async () => {
    const out = await api.get(projectPath(project, 'next'), { params: { n: Number(form.nextN.value || 50),
      strategy: form.strategy.value } });
    const model = out.model ? `model ${out.model.name}` : 'no model';
    nextInfo.textContent = `Ranked by ${out.strategy}${out.diversity === 'none' ? '' : ` + ${out.diversity}`} (${model}`
      + `): ${plural(out.results.length, 'image')} of ${fmtNumber(out.pool)} unlabelled.`
      + (out.notes.length ? ` ${out.notes.join(' ')}` : '');
    return out.results.map((r) => r.id);
  };
  const kField = field('Annotators per image (k) ', form.k);
  const syncMode = () => { kField.hidden = form.mode.value !== 'consensus'; };
  form.mode.addEventListener('change', syncMode);
  syncMode();
  const create = h('button', { class: 'primary', type: 'submit', id: 'batch-create' }, 'Create batch');
  const el = h('form', { class: 'card section work-form', id: 'batch-form', onsubmit: async (e) => {
    e.preventDefault();
    const chosen = [...people.querySelectorAll('input:checked')].map((i) => i.value);
    const body = { name: form.name.value.trim(), annotators: chosen, filter: selection(form), mode: form.mode.value,
      honeypot_rate: Number(form.honeypot.value || 0) };
    if (form.perAnnotator.value) body.per_annotator = Number(form.perAnnotator.value);
    if (body.mode === 'consensus') body.k = Number(form.k.value);
    if (!body.name) return toast('Name the batch first.', 'error');
    if (!chosen.length) return toast('Choose at least one annotator.', 'error');
    create.disabled = true;
    try {
      if (form.source.value === 'next') {
        delete body.filter;
        delete body.per_annotator;
        body.image_ids = await nextIds();
        if (!body.image_ids.length) return toast('No unlabelled image is left outside gold and open work.', 'error');
      }
      const batch = await api.post(projectPath(project, 'work/batches'), body);
      toast(`Batch ${batch.name}: ${plural(batch.params.images, 'image')} assigned to `
        + `${plural(batch.params.annotators.length, 'annotator')}.`, 'success');
      form.name.value = '';
      await onCreated();
      count();
    } catch (err) {
      toastError(err, 'No batch created');
    } finally {
      create.disabled = false;
    }
    return null;
  } },
  h('h2', {}, 'New batch'),
  h('div', { class: 'form-grid' },
    field('Name ', form.name),
    field('Honeypot rate ', form.honeypot, 'Share of each queue that gold images take (0 to 1); annotators are not '
      + 'told which.'),
    h('div', { class: 'field span2' }, h('label', {}, 'Annotators'), people),
    field('Images ', form.source), nextFields, nextInfo, filters, matches, perField,
    field('Mode ', form.mode), kField,
    h('div', { class: 'span2 actions' }, create)));
  syncSource();
  count();
  return el;
}

function batchList(project, batches, refresh) {
  if (!batches.length) {
    return h('section', { class: 'card section', id: 'batches' }, h('h2', {}, 'Batches'),
      emptyState('No batch yet', 'Create one above: its progress shows here.'));
  }
  const rate = (b) => {
    const input = h('input', { type: 'number', min: 0, max: 1, step: 0.05, value: b.honeypot_rate,
      class: 'work-rate', 'aria-label': `Honeypot rate of ${b.name}` });
    const set = h('button', { class: 'small', onclick: async () => {
      try {
        await api.put(projectPath(project, `work/batches/${encodeURIComponent(b.name)}/honeypot-rate`),
          { rate: Number(input.value) });
        toast(`Honeypot rate of ${b.name}: ${input.value}`, 'success');
        await refresh();
      } catch (e) {
        toastError(e, 'Rate not set');
      }
    } }, 'Set');
    return h('span', { class: 'row work-rate-row' }, input, set);
  };
  const total = (c) => STATES.reduce((n, [s]) => n + (c[s] || 0), 0);
  return h('section', { class: 'card section', id: 'batches' }, h('h2', {}, 'Batches'), legend(),
    h('table', { class: 'table work-batches-table' },
      h('thead', {}, h('tr', {}, ['Batch', 'Progress', ...STATES.map(([, l]) => l.split(/[:,]/)[0]),
        'Honeypots', 'Created'].map((t) => h('th', {}, t)))),
      h('tbody', {}, batches.flatMap((b) => [
        h('tr', { 'data-batch': b.name, class: 'work-batch' },
          h('td', {}, h('strong', {}, b.name), h('div', { class: 'muted' }, b.mode === 'consensus'
            ? `consensus, k = ${b.k}` : `${plural(b.params.images || 0, 'image')}`)),
          h('td', { class: 'work-progress' }, batchBar(b.counts),
            h('span', { class: 'muted' }, `${fmtNumber(b.counts.approved)} / ${fmtNumber(total(b.counts))} approved`)),
          STATES.map(([s]) => h('td', { class: 'num', 'data-state': s }, fmtNumber(b.counts[s]))),
          h('td', {}, rate(b)),
          h('td', {}, fmtDate(b.created_at), h('div', { class: 'muted' }, b.created_by))),
        ...Object.entries(b.by_annotator).map(([who, c]) => h('tr', { class: 'work-annotator', 'data-batch': b.name,
          'data-annotator': who },
        h('td', { class: 'work-who' }, who), h('td', { class: 'work-progress' }, batchBar(c)),
        STATES.map(([s]) => h('td', { class: 'num' }, fmtNumber(c[s]))), h('td', {}), h('td', {}))),
      ]))));
}

function goldSection(project, gold, refresh) {
  const ids = h('input', { type: 'text', id: 'gold-ids', placeholder: 'image ids, e.g. 12, 40' });
  const mark = async (e) => {
    e.preventDefault();
    const list = ids.value.split(/[\s,]+/).filter(Boolean).map(Number);
    if (!list.length || list.some((n) => !Number.isInteger(n) || n < 1)) {
      toast('Type image ids (numbers), separated by commas.', 'error');
      return;
    }
    let done = 0;
    for (const id of list) {
      try {
        await api.put(projectPath(project, `work/gold/${id}`));
        done += 1;
      } catch (err) {
        toastError(err, `Image ${id} not marked`);
      }
    }
    if (done) toast(`${plural(done, 'image')} marked as gold.`, 'success');
    ids.value = '';
    await refresh();
  };
  const unmark = async (g) => {
    if (!(await confirmDialog(`Image ${g.image_id} is no longer gold? Its past honeypot scores stay.`,
      { confirm: 'Unmark' }))) return;
    try {
      await api.del(projectPath(project, `work/gold/${g.image_id}`));
      await refresh();
    } catch (err) {
      toastError(err, 'Not unmarked');
    }
  };
  const count = (a) => (a && a.xyxy ? plural(a.xyxy.length, 'object') : a && a.type ? a.type : '–');
  return h('section', { class: 'card section', id: 'gold' },
    h('h2', {}, 'Gold images'),
    h('p', { class: 'muted' }, 'A gold image keeps the annotation it had when marked: honeypots score annotators '
      + 'against it. Mark the image open in the editor with Shift+G, or type ids here.'),
    h('form', { class: 'row', onsubmit: mark }, ids, h('button', { type: 'submit', id: 'gold-mark' }, 'Mark as gold')),
    gold.length ? h('div', { class: 'gold-grid', 'data-testid': 'gold-list' }, gold.map((g) => h('figure', {
      class: 'gold-item', 'data-image': g.image_id },
    h('a', { href: projectHref(project, `annotate/${g.image_id}`) }, h('img', { loading: 'lazy', alt: '',
      src: api.url(projectPath(project, `images/${g.image_id}/thumbnail`), { size: 128 }) })),
    h('figcaption', {}, h('strong', {}, `#${g.image_id}`), ` · ${count(g.annotation)}`,
      h('div', { class: 'muted' }, `${g.author}, ${fmtDate(g.created_at)}`),
      h('button', { class: 'link-button', onclick: () => unmark(g) }, 'Unmark'))))) : emptyState('No gold image yet',
      'Annotate an image carefully (or have a trusted person do it), then mark it here.'));
}

export async function render(root, { project }) {
  dispose();
  const p = (rest) => projectPath(project, rest);
  const [classes, users] = await Promise.all([api.get(p('classes')), api.get(p('users'))]);
  const listHost = h('div', {});
  const goldHost = h('div', {});
  const refresh = async () => {
    const [batches, gold] = await Promise.all([api.get(p('work/batches'), { params: { limit: 100 } }),
      api.get(p('work/gold'))]);
    replaceChildren(listHost, batchList(project, batches.items, refresh));
    replaceChildren(goldHost, goldSection(project, gold, refresh));
  };
  await refresh();
  const form = batchForm(project, { classes, users, onCreated: refresh });
  unbind = keymap.bind({ r: () => { refresh(); } });
  root.replaceChildren(h('div', { class: 'work-page', 'data-testid': 'work-page' },
    pageHeader('Work', 'Assign images to annotators, follow their progress, keep the gold answers of honeypots. '
      + 'R reloads.'), form, listHost, goldHost));
}
