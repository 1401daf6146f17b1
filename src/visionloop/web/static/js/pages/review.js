// #/p/:project/review — the review queue (reviewers): the images annotators submitted, oldest submission first, one at
// a time, large, with the annotation drawn on it, who annotated it and when. Approve (A), or reject (R) with a reason,
// issue tags (keys 1-9) and a comment drawn on the image (click a point or drag a box: image pixels), and the next
// image opens. J/K move; the grid below selects several to approve at once (X, Shift+A).
//
// Consensus images (annotated independently by k annotators whose answers disagree) show each answer beside the
// merge the server made (weighted box fusion, majority vote, mask vote), which is already the image's annotation:
// A accepts it (POST .../accept-merge), or the reviewer edits it in the editor (E) and approves the result here; an
// annotation edited after the merge shows beside it, and M restores the merge and approves it.
//
// The "From production" tab (?view=production, review_production.js) lists the images model servers sent back.
import {api, apiUrl, projectPath, roleAllows, session} from '../api.js';
import {emptyState, errorState, fmtDate, fmtMetric, h, keymap, modal, pageHeader, plural, projectHref, spinner,
  toast, toastError} from '../ui.js';
import {annotationCanvas, annotationSummary, loadImage} from '../review_canvas.js';
import {disposeProduction, renderProduction, reviewTabs} from './review_production.js';

/** storage.review.REJECT_TAGS with their words for people (a test keeps them in step). */
export const REJECT_TAGS = [['missing_object', 'missing object'], ['wrong_class', 'wrong class'],
  ['loose_box', 'loose box'], ['extra_object', 'extra object'], ['wrong_mask', 'wrong mask'], ['other', 'other']];
const QUEUE_PAGE = 500;
const MERGE_METHOD = {boxes: 'weighted box fusion', instances: 'mask vote', semantic: 'pixel vote',
  label: 'majority vote', tags: 'majority of tags'};
const CLICK_PX = 4; // a drag shorter than this (screen pixels) is a point

let st = null;

export function dispose() {
  disposeProduction();
  if (!st) return;
  st.unbind?.();
  st.help?.close();
  st.disposed = true;
  st = null;
}

export async function render(root, params) {
  const {project} = params;
  dispose();
  const role = await session.role(project);
  if (!roleAllows(role, 'reviewer')) {
    root.replaceChildren(pageHeader('Review'), emptyState('Reviewers only',
      'Reviewing needs the reviewer role in this project; an admin can give it to you.'));
    return;
  }
  if (params.query?.view === 'production') {
    await renderProduction(root, params);
    return;
  }
  const [queue, classes] = await Promise.all([
    api.get(projectPath(project, 'work/review'), {params: {limit: QUEUE_PAGE}}),
    api.get(projectPath(project, 'classes')).catch(() => [])]);
  st = {project, root, classes, items: queue.items, total: queue.total, index: 0, selected: new Set(),
    view: null, comment: null, rejecting: false, tags: new Set(), busy: false, disposed: false, loadToken: 0};
  st.unbind = keymap.bind(bindings(), {allowInFields: ['escape', 'ctrl+enter', ...[1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => `alt+${n}`)]});
  layout();
  await show(0);
}

// ---- keys --------------------------------------------------------------------------------------------------------

const KEYS = [
  ['Review', [['a'], 'Approve (accept the merge of a consensus image)', () => approve()],
    [['m'], 'Consensus image edited after its merge: restore the merge and approve it', () => acceptMerge()],
    [['r'], 'Reject: reason, issue tags and a comment drawn on the image', () => openReject()],
    [['e'], 'Open the image in the editor (approve it here after)', () => openEditor()]],
  ['Move', [['j', 'arrowright', 'arrowdown'], 'Next image', () => move(1)],
    [['k', 'arrowleft', 'arrowup'], 'Previous image', () => move(-1)]],
  ['Several at once', [['x'], 'Select the image for approval (or click its checkbox in the grid)', () => toggleSelect()],
    [['shift+a'], 'Approve every selected image', () => approveSelected()]],
  ['Rejecting', [['1-9'], 'Toggle an issue tag (Alt+1-9 while typing the reason)', null],
    [['drag'], 'Drag a box on the image, or click a point, to show where', null],
    [['ctrl+enter'], 'Send the image back to its annotator', () => sendReject()],
    [['escape'], 'Cancel the rejection', () => cancelReject()]],
  ['Help', [['?'], 'Show or hide these keys', () => toggleHelp()]],
];

function bindings() {
  const out = {};
  for (const [, ...list] of KEYS) {
    for (const [keys, , fn] of list) {
      // while the keys overlay is open, only ? (and Escape, which the overlay takes) work
      if (fn) for (const k of keys) out[k] = k === '?' ? fn : () => (st?.help ? false : fn());
    }
  }
  out.escape = () => (st?.rejecting ? cancelReject() : false);
  for (let n = 1; n <= 9; n += 1) {
    const toggle = () => (st?.rejecting && n <= REJECT_TAGS.length ? toggleTag(REJECT_TAGS[n - 1][0]) : false);
    out[String(n)] = toggle;
    out[`alt+${n}`] = toggle;
  }
  return out;
}

function toggleHelp() {
  if (st.help) { st.help.close(); return; }
  const sections = KEYS.map(([group, ...list]) => h('section', {}, h('h3', {}, group),
    h('dl', {}, list.flatMap(([keys, label]) => [
      h('dt', {}, keys.map((k, i) => [i ? ' or ' : null, h('kbd', {}, k === 'drag' || k.includes('-') ? k : keymap.label(k))])),
      h('dd', {}, label)]))));
  st.help = modal('Keyboard shortcuts', h('div', {class: 'ed-keys', 'data-testid': 'review-keys'}, sections),
    {wide: true, onClose: () => { if (st) st.help = null; }});
}

// ---- layout ------------------------------------------------------------------------------------------------------

function layout() {
  const helpButton = h('button', {type: 'button', class: 'small', title: 'Keyboard shortcuts (?)', onclick: toggleHelp},
    'Keys ', h('kbd', {}, '?'));
  st.count = h('p', {class: 'subtitle', id: 'review-count'});
  st.stage = h('div', {class: 'review-stage', id: 'review-stage'});
  st.side = h('aside', {class: 'review-side card', id: 'review-side'});
  st.answers = h('section', {class: 'review-answers', id: 'review-answers'});
  st.grid = h('div', {class: 'review-grid', id: 'review-grid', role: 'list'});
  st.selectionBar = h('div', {class: 'selection-bar idle', id: 'review-selection'});
  const header = pageHeader('Review', '', reviewTabs(st.project, 'submitted'), helpButton);
  header.querySelector('div').append(st.count);
  st.root.replaceChildren(h('div', {class: 'review-page', 'data-testid': 'review-page'}, header,
    h('div', {class: 'review-layout'}, h('div', {class: 'review-main'}, st.stage, st.answers), st.side),
    h('section', {class: 'card review-queue'}, h('div', {class: 'section-head'},
      h('h2', {}, 'Waiting for review'), st.selectionBar), st.grid)));
}

function renderCount() {
  st.count.textContent = st.total
    ? `${plural(st.total, 'image')} waiting for review, oldest submission first`
    : 'Nothing is waiting for review';
}

/** The end of a long name (where image names differ): 'BloodImage_00012.jpg' -> '…ge_00012.jpg'. */
const shortName = (name) => (name.length > 14 ? `…${name.slice(-12)}` : name);

function renderGrid() {
  const thumb = (item, i) => {
    const check = h('input', {type: 'checkbox', class: 'thumb-check', checked: st.selected.has(item.image_id),
      'aria-label': `select ${item.name}`, tabindex: -1});
    check.addEventListener('click', (e) => { e.stopPropagation(); toggleSelect(item.image_id); });
    return h('div', {class: `thumb review-thumb${i === st.index ? ' current' : ''}${st.selected.has(item.image_id) ? ' selected' : ''}`,
      role: 'listitem', 'data-id': item.image_id, title: item.name, onclick: () => show(i)},
    h('div', {class: 'thumb-img'}, h('img', {loading: 'lazy', alt: item.name,
      src: apiUrl(projectPath(st.project, `images/${item.image_id}/thumbnail`), {size: 160})}), check,
    item.consensus ? h('span', {class: 'badge warn thumb-flag'}, 'consensus') : null),
    h('div', {class: 'thumb-meta'}, h('span', {class: 'thumb-name'}, shortName(item.name))));
  };
  st.grid.replaceChildren(...st.items.map(thumb));
  if (!st.items.length) st.grid.replaceChildren(h('p', {class: 'muted'}, 'Nothing left: every submitted image is reviewed.'));
  const n = st.selected.size;
  st.selectionBar.className = `selection-bar${n ? '' : ' idle'}`;
  st.selectionBar.replaceChildren(...(n
    ? [h('span', {}, `${plural(n, 'image')} selected`),
      h('button', {type: 'button', class: 'small primary', id: 'review-approve-selected', onclick: approveSelected},
        'Approve selected ', h('kbd', {}, 'Shift+A')),
      h('button', {type: 'button', class: 'small', onclick: () => { st.selected.clear(); renderGrid(); }}, 'Clear')]
    : [h('span', {class: 'muted'}, 'X or a checkbox selects images to approve at once')]));
}

// ---- one image ---------------------------------------------------------------------------------------------------

const current = () => st?.items[st.index] || null;

async function show(index) {
  if (!st.items.length && st.total > 0) {  // the loaded page is done: the next one (the queue moved meanwhile)
    const queue = await api.get(projectPath(st.project, 'work/review'), {params: {limit: QUEUE_PAGE}});
    if (!st) return;
    st.items = queue.items;
    st.total = queue.total;
  }
  renderCount();
  st.index = Math.max(0, Math.min(index, st.items.length - 1));
  st.rejecting = false;
  st.comment = null;
  st.tags = new Set();
  st.view = null;
  st.merge = null;
  renderGrid();
  const item = current();
  if (!item) {
    st.stage.replaceChildren(emptyState('Nothing to review',
      'Images appear here when annotators submit them from their queues (or a consensus image\'s answers disagree).',
      h('a', {class: 'button', href: projectHref(st.project, 'images')}, 'Browse the images')));
    st.side.replaceChildren();
    st.answers.replaceChildren();
    return;
  }
  const token = ++st.loadToken;
  st.stage.replaceChildren(spinner(`Loading ${item.name}…`));
  st.answers.replaceChildren();
  try {
    const detail = await api.get(projectPath(st.project, `images/${item.image_id}`));
    const [image, answers] = await Promise.all([loadImage(detail.url),
      item.consensus ? api.get(projectPath(st.project, `work/review/${item.image_id}/answers`)) : null]);
    const last = answers?.merges?.[answers.merges.length - 1] || null;
    const merge = last ? {...last, edited: detail.head_revision !== last.revision, payload: detail.annotation} : null;
    if (merge?.edited) {  // the merge as it was made, from the image's revisions
      const revisions = await api.get(projectPath(st.project, `images/${item.image_id}/revisions`));
      merge.payload = revisions.find((r) => r.revision === merge.revision)?.payload ?? null;
    }
    if (st?.loadToken !== token) return;
    st.merge = merge;
    st.detail = detail;
    st.view = annotationCanvas(image, detail.annotation, st.classes);
    st.image = image;
    wireDrawing(st.view);
    st.stage.replaceChildren(h('div', {class: 'review-title'}, h('strong', {id: 'review-name'}, item.name),
      h('span', {class: 'muted'}, `${st.index + 1} / ${st.items.length}`)),
    h('div', {class: 'review-canvas-wrap'}, st.view.canvas));
    renderSide(item, detail);
    renderAnswers(detail, answers, image);
  } catch (e) {
    if (st?.loadToken === token) st.stage.replaceChildren(errorState(e, 'This image'));
  }
}

function renderSide(item, detail) {
  const edited = st.merge?.edited;
  const approveText = st.merge && !edited ? 'Accept the merge' : edited ? 'Approve the edited annotation' : 'Approve';
  const approveButton = h('button', {type: 'button', class: 'primary', id: 'review-approve', onclick: () => approve()},
    approveText, ' ', h('kbd', {}, 'A'));
  const restoreButton = edited ? h('button', {type: 'button', id: 'review-restore-merge', onclick: () => acceptMerge()},
    'Restore the merge and approve ', h('kbd', {}, 'M')) : null;
  st.side.replaceChildren(
    h('dl', {class: 'review-facts'},
      h('dt', {}, item.consensus ? 'Answered by' : 'Annotated by'),
      h('dd', {id: 'review-annotators'}, item.annotators.length ? item.annotators.join(', ') : '–'),
      h('dt', {}, 'Submitted'), h('dd', {}, fmtDate(item.submitted_at)),
      h('dt', {}, 'Batch'), h('dd', {}, item.batch || '–'),
      h('dt', {}, 'Objects'), h('dd', {id: 'review-summary'}, annotationSummary(detail.annotation, st.classes)),
      item.consensus ? [h('dt', {}, 'Agreement'), h('dd', {}, h('span', {class: 'badge warn'},
        item.agreement === null ? '–' : fmtMetric(item.agreement, 2)))] : null),
    h('div', {class: 'review-actions'}, approveButton, restoreButton,
      h('button', {type: 'button', class: 'danger-outline', id: 'review-reject', onclick: () => openReject()},
        'Reject', ' ', h('kbd', {}, 'R')),
      h('a', {class: 'button', id: 'review-edit', href: editorHref(item)}, 'Edit in the editor ', h('kbd', {}, 'E'))),
    h('div', {class: 'review-nav'},
      h('button', {type: 'button', class: 'small', onclick: () => move(-1), disabled: st.index === 0},
        '← Previous ', h('kbd', {}, 'K')),
      h('button', {type: 'button', class: 'small', onclick: () => move(1), disabled: st.index >= st.items.length - 1},
        'Next ', h('kbd', {}, 'J'), ' →')),
    st.rejectForm = h('form', {class: 'review-reject', id: 'review-reject-form', hidden: true}),
    h('p', {class: 'muted review-hint'}, 'Click a point or drag a box on the image to show the annotator where.'));
}

const editorHref = (item) => projectHref(st.project, `annotate/${item.image_id}`);

function openEditor() {
  const item = current();
  if (item) location.hash = editorHref(item);
}

// ---- consensus ---------------------------------------------------------------------------------------------------

function renderAnswers(detail, answers, image) {
  if (!answers || !answers.answers.length) { st.answers.replaceChildren(); return; }
  const merge = st.merge;
  const method = MERGE_METHOD[(merge?.payload || detail.annotation)?.type] || 'merge';
  const large = merge?.edited ? 'current' : 'merge';
  const cards = [];
  const card = (title, sub, payload, key) => {
    const small = annotationCanvas(image, payload, st.classes, {className: 'review-answer-canvas', labels: false});
    const el = h('button', {type: 'button', class: `review-answer${key === large ? ' shown' : ''}`,
      'data-answer': key, title: 'Show it large'},
    small.canvas, h('strong', {}, title), h('span', {class: 'muted'}, sub),
    h('span', {class: 'review-answer-summary'}, annotationSummary(payload, st.classes)));
    el.addEventListener('click', () => {
      cards.forEach((c) => c.classList.toggle('shown', c === el));
      st.view = annotationCanvas(image, payload, st.classes);
      wireDrawing(st.view);
      st.stage.querySelector('.review-canvas-wrap').replaceChildren(st.view.canvas);
      st.view.redraw(st.comment);
    });
    cards.push(el);
    return el;
  };
  const answerCards = answers.answers.map((a) => card(a.annotator,
    a.score ? `agrees ${fmtMetric(a.score.score, 2)} with the others, ${fmtMetric(a.score.with_merge, 2)} with the merge`
      : 'answered', a.annotation, `item-${a.item}`));
  const mergeCard = merge ? card(`Merged (${method})`, `agreement ${fmtMetric(merge.agreement, 2)}`, merge.payload,
    'merge') : null;
  const currentCard = merge?.edited ? card('Current annotation', 'edited after the merge', detail.annotation,
    'current') : null;
  st.answers.replaceChildren(h('div', {class: 'section-head'}, h('h2', {}, 'Consensus: the answers and the merge'),
    h('span', {class: 'muted'}, merge?.edited
      ? 'Click one to see it large. Approve the edited annotation (A), or restore the merge (M).'
      : 'Click one to see it large. Accept the merge (A), or edit it in the editor (E).')),
  h('div', {class: 'review-answer-row'}, ...answerCards, mergeCard, currentCard));
}

// ---- the comment drawn on the image ------------------------------------------------------------------------------

function wireDrawing(view) {
  const canvas = view.canvas;
  let start = null;
  let startScreen = null;
  canvas.addEventListener('pointerdown', (e) => {
    if (e.button !== 0) return;
    e.preventDefault();
    document.activeElement?.blur?.();  // out of the reason field: the tag keys 1-9 work again
    canvas.setPointerCapture(e.pointerId);
    start = view.toImage(e);
    startScreen = [e.clientX, e.clientY];
  });
  canvas.addEventListener('pointermove', (e) => {
    if (!start) return;
    const [x, y] = view.toImage(e);
    if (Math.hypot(e.clientX - startScreen[0], e.clientY - startScreen[1]) >= CLICK_PX) {
      view.redraw({box: [Math.min(start[0], x), Math.min(start[1], y), Math.max(start[0], x), Math.max(start[1], y)]});
    }
  });
  canvas.addEventListener('pointerup', (e) => {
    if (!start) return;
    const [x, y] = view.toImage(e);
    const far = Math.hypot(e.clientX - startScreen[0], e.clientY - startScreen[1]) >= CLICK_PX;
    st.comment = far ? {box: [Math.min(start[0], x), Math.min(start[1], y), Math.max(start[0], x), Math.max(start[1], y)]}
      : {point: start};
    start = null;
    view.redraw(st.comment);
    if (!st.rejecting) openReject();
    else renderRejectForm();
  });
}

// ---- approve and reject ------------------------------------------------------------------------------------------

function removeItems(ids) {
  const gone = new Set(ids);
  const before = st.items.length;
  st.items = st.items.filter((i) => !gone.has(i.image_id));
  st.total = Math.max(0, st.total - (before - st.items.length));
  ids.forEach((id) => st.selected.delete(id));
}

/** Send the current image's decision (`path`, `body`), say `done`, and open the next image. */
async function decide(item, path, body, done) {
  st.busy = true;
  try {
    await api.post(projectPath(st.project, path), body);
    toast(`${item.name} ${done}`, 'success');
    removeItems([item.image_id]);
    await show(st.index);
  } catch (e) {
    toastError(e, `${item.name}: `);
  } finally {
    if (st) st.busy = false;
  }
}

async function approve() {
  const item = current();
  if (!item || st.busy || st.rejecting) return;
  if (st.merge && !st.merge.edited) await acceptMerge();  // what the reviewer saw: the merge
  else await decide(item, 'work/review/approve', {ids: [item.image_id]}, 'approved');
}

async function acceptMerge() {
  const item = current();
  if (!item || !st.merge || st.busy || st.rejecting) return;
  await decide(item, `work/review/${item.image_id}/accept-merge`, {},
    st.merge.edited ? 'approved with its merge restored' : 'approved with its merge');
}

async function approveSelected() {
  if (!st || !st.selected.size || st.busy) return;
  const ids = [...st.selected];
  st.busy = true;
  try {
    const answer = await api.post(projectPath(st.project, 'work/review/approve'), {ids});
    toast(`${plural(answer.changed, 'image')} approved`, 'success');
    const id = current()?.image_id;
    removeItems(ids);
    const at = st.items.findIndex((i) => i.image_id === id);
    await show(at >= 0 ? at : st.index);
  } catch (e) {
    toastError(e);
  } finally {
    if (st) st.busy = false;
  }
}

function toggleSelect(id = current()?.image_id) {
  if (!st || id === undefined) return;
  if (st.selected.has(id)) st.selected.delete(id);
  else st.selected.add(id);
  renderGrid();
}

function move(step) {
  if (!st || st.rejecting || !st.items.length) return;
  const next = Math.max(0, Math.min(st.items.length - 1, st.index + step));
  if (next !== st.index) show(next);
}

function openReject() {
  if (!current() || !st.rejectForm) return;
  st.rejecting = true;
  renderRejectForm();
  st.rejectForm.querySelector('textarea').focus();
}

function cancelReject() {
  if (!st) return;
  st.rejecting = false;
  st.comment = null;
  st.tags = new Set();
  st.rejectForm.hidden = true;
  st.view?.redraw(null);
}

function toggleTag(tag) {
  if (st.tags.has(tag)) st.tags.delete(tag);
  else st.tags.add(tag);
  renderRejectForm();
}

function renderRejectForm() {
  const form = st.rejectForm;
  const old = form.querySelector('textarea');
  const reason = h('textarea', {id: 'review-reason', rows: 3, maxlength: 2000, required: true,
    placeholder: 'What to fix (the annotator reads this)'});
  reason.value = old ? old.value : '';
  const hadFocus = old && document.activeElement === old;
  const tags = h('div', {class: 'chips review-tags', id: 'review-tags'}, REJECT_TAGS.map(([tag, words], i) => {
    const box = h('input', {type: 'checkbox', value: tag, checked: st.tags.has(tag)});
    box.addEventListener('change', () => toggleTag(tag));
    return h('label', {class: `chip review-tag${st.tags.has(tag) ? ' on' : ''}`, 'data-tag': tag}, box,
      h('kbd', {}, String(i + 1)), ' ', words);
  }));
  const c = st.comment;
  const where = c?.box ? `a box ${c.box.map((v) => Math.round(v)).join(', ')}`
    : c?.point ? `a point at ${c.point.map((v) => Math.round(v)).join(', ')}` : 'nothing drawn (optional)';
  const send = h('button', {type: 'submit', class: 'danger', id: 'review-send'}, 'Send back ', h('kbd', {}, 'Ctrl+Enter'));
  form.onsubmit = (e) => { e.preventDefault(); sendReject(); };
  form.replaceChildren(h('h3', {}, 'Reject'),
    h('label', {class: 'field'}, h('span', {}, 'Reason'), reason),
    h('div', {class: 'field'}, h('span', {}, 'Issues'), tags),
    h('p', {class: 'review-where', id: 'review-where'}, 'On the image: ', where,
      c ? h('button', {type: 'button', class: 'link-button', onclick: () => { st.comment = null; st.view?.redraw(null); renderRejectForm(); }}, ' clear') : null),
    h('div', {class: 'row'}, send,
      h('button', {type: 'button', onclick: () => cancelReject()}, 'Cancel ', h('kbd', {}, 'Esc'))));
  form.hidden = false;
  if (hadFocus) reason.focus();
}

async function sendReject() {
  const item = current();
  if (!item || !st.rejecting || st.busy) return false;
  const reason = st.rejectForm.querySelector('textarea').value.trim();
  if (!reason) {
    toast('Say what to fix: the reason is what the annotator reads', 'error');
    st.rejectForm.querySelector('textarea').focus();
    return undefined;
  }
  const body = {reason, tags: REJECT_TAGS.map(([t]) => t).filter((t) => st.tags.has(t)), comment: st.comment};
  await decide(item, `work/review/${item.image_id}/reject`, body,
    `sent back to ${item.annotators.join(', ') || 'its annotator'}`);
  return undefined;
}
