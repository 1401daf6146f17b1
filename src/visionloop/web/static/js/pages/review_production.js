// #/p/:project/review?view=production — the review page's "From production" view (reviewers): the images model
// servers sent back (`visionloop serve --feedback`), oldest first, not yet approved, one at a time with the model's
// prediction drawn on it, which samplers chose it and why, and the model and package version that predicted it.
// Accept as is (A: the prediction becomes the image's annotation, approved, by the reviewer), or correct it in the
// editor (E: it offers the prediction as suggestions) and approve the corrected annotation here (A again).
import {api, apiUrl, projectPath} from '../api.js';
import {emptyState, errorState, fmtDate, fmtMetric, fmtNumber, h, keymap, pageHeader, plural, projectHref, spinner, toast,
  toastError} from '../ui.js';
import {annotationCanvas, annotationSummary, loadImage} from '../review_canvas.js';

const PAGE = 200;

let st = null;

export function disposeProduction() {
  if (!st) return;
  st.unbind?.();
  st = null;
}

/** The tabs of the review page: the annotators' submissions and the images from production (with how many wait). */
export function reviewTabs(project, view) {
  const tab = (key, label, href, ...more) => h('a', {class: `button small${view === key ? ' active' : ''}`,
    role: 'tab', 'aria-selected': String(view === key), 'data-tab': key, href}, label, ...more);
  const waiting = h('span', {class: 'di-count', id: 'production-waiting'});
  api.get(projectPath(project, 'production'), {params: {reviewed: false, limit: 1}})
    .then((answer) => { waiting.textContent = fmtNumber(answer.total); }).catch(() => {});
  return h('div', {class: 'di-tabs review-tabs', role: 'tablist'},
    tab('submitted', 'Submitted', projectHref(project, 'review')),
    tab('production', 'From production', projectHref(project, 'review?view=production'), waiting));
}

/** The prediction (Prediction.to_json, project classes by name, else id) as an annotation payload to draw. */
export function predictionPayload(prediction, classes) {
  const byName = new Map(classes.map((c) => [c.name, c.id]));
  const id = (d) => byName.get(d.name) ?? d.class_id;
  const p = prediction || {};
  if (p.task === 'classification') return p.label ? {type: 'label', class_id: id(p.label)} : null;
  if (p.task === 'tagging') return {type: 'tags', class_ids: (p.tags || []).map(id)};
  if (p.segments) {
    const size = p.segments[0]?.mask?.size || [p.height, p.width];
    return {type: 'semantic', size, classes: Object.fromEntries(p.segments.map((s) => [id(s), s.mask.counts]))};
  }
  const dets = p.detections || [];
  const boxes = {xyxy: dets.map((d) => d.xyxy), class_id: dets.map(id)};
  if (dets.some((d) => d.mask)) return {type: 'instances', ...boxes, segmentations: dets.map((d) => ({rle: d.mask}))};
  return {type: 'boxes', ...boxes};
}

export async function renderProduction(root, {project}) {
  disposeProduction();
  const classes = await api.get(projectPath(project, 'classes')).catch(() => []);
  st = {project, root, classes, items: [], total: 0, index: 0, busy: false, loadToken: 0, detail: null};
  st.unbind = keymap.bind({a: () => approve(), e: () => openEditor(), j: () => move(1), k: () => move(-1),
    arrowright: () => move(1), arrowleft: () => move(-1)});
  st.count = h('p', {class: 'subtitle', id: 'production-count'});
  st.stage = h('div', {class: 'review-stage', id: 'production-stage'});
  st.side = h('aside', {class: 'review-side card', id: 'production-side'});
  st.grid = h('div', {class: 'review-grid', id: 'production-grid', role: 'list'});
  const header = pageHeader('Review', '', reviewTabs(project, 'production'));
  header.querySelector('div').append(st.count);
  root.replaceChildren(h('div', {class: 'review-page', 'data-testid': 'review-production'}, header,
    h('div', {class: 'review-layout'}, h('div', {class: 'review-main'}, st.stage), st.side),
    h('section', {class: 'card review-queue'}, h('div', {class: 'section-head'},
      h('h2', {}, 'From production, oldest first')), st.grid)));
  await reload(0);
}

async function reload(index) {
  const answer = await api.get(projectPath(st.project, 'production'), {params: {reviewed: false, limit: PAGE}});
  if (!st) return;
  st.items = answer.items;
  st.total = answer.total;
  const waiting = st.root.querySelector('#production-waiting');
  if (waiting) waiting.textContent = fmtNumber(answer.total);
  await show(index);
}

const current = () => st?.items[st.index] || null;

function renderGrid() {
  st.count.textContent = st.total
    ? `${plural(st.total, 'image')} from production waiting for review`
    : 'Nothing from production is waiting for review';
  st.grid.replaceChildren(...st.items.map((item, i) => h('div', {
    class: `thumb review-thumb${i === st.index ? ' current' : ''}`, role: 'listitem', 'data-id': item.id,
    title: item.samplers.map((s) => s.name).join(', '), onclick: () => show(i)},
  h('div', {class: 'thumb-img'}, h('img', {loading: 'lazy', alt: `sample ${item.id}`,
    src: apiUrl(projectPath(st.project, `images/${item.image_id}/thumbnail`), {size: 160})}),
  item.random_slice ? h('span', {class: 'badge thumb-flag'}, 'random') : null),
  h('div', {class: 'thumb-meta'}, h('span', {class: 'thumb-name'}, item.samplers.map((s) => s.name).join(', '))))));
  if (!st.items.length) st.grid.replaceChildren(h('p', {class: 'muted'}, 'Nothing left from production.'));
}

async function show(index) {
  st.index = Math.max(0, Math.min(index, st.items.length - 1));
  renderGrid();
  const item = current();
  if (!item) {
    st.stage.replaceChildren(emptyState('Nothing from production',
      'Model servers started with --feedback send the predictions their samplers choose; they appear here.'));
    st.side.replaceChildren();
    return;
  }
  const token = ++st.loadToken;
  st.stage.replaceChildren(spinner('Loading the image…'));
  try {
    const detail = await api.get(projectPath(st.project, `images/${item.image_id}`));
    const image = await loadImage(detail.url);
    if (st?.loadToken !== token) return;
    st.detail = detail;
    const predicted = predictionPayload(item.prediction, st.classes);
    const corrected = detail.annotation !== null && detail.annotation !== undefined;
    const view = annotationCanvas(image, corrected ? detail.annotation : predicted, st.classes);
    st.stage.replaceChildren(h('div', {class: 'review-title'},
      h('strong', {id: 'production-shown'}, corrected ? 'The annotation (corrected)' : 'The model\'s prediction'),
      h('span', {class: 'muted'}, `${st.index + 1} / ${st.items.length}`)),
    h('div', {class: 'review-canvas-wrap'}, view.canvas));
    renderSide(item, detail, predicted, corrected);
  } catch (e) {
    if (st?.loadToken === token) st.stage.replaceChildren(errorState(e, 'This image'));
  }
}

function renderSide(item, detail, predicted, corrected) {
  const why = h('ul', {class: 'production-why', id: 'production-why'}, item.samplers.map((s) => h('li', {},
    h('strong', {}, s.name), s.why ? `: ${s.why}` : '')));
  const approveButton = h('button', {type: 'button', class: 'primary', id: 'production-approve',
    onclick: () => approve()}, corrected ? 'Approve the annotation ' : 'Accept the prediction ', h('kbd', {}, 'A'));
  st.side.replaceChildren(
    h('dl', {class: 'review-facts'},
      h('dt', {}, 'Chosen by'), h('dd', {}, why),
      h('dt', {}, 'Score'), h('dd', {}, item.score === null || item.samplers.every((x) => x.name === 'random')
        ? '–' : fmtMetric(item.score, 2),
        item.random_slice ? h('span', {class: 'badge', title: 'an unbiased sample: it may enter the test set'},
          ' random slice') : null),
      h('dt', {}, 'Model'), h('dd', {id: 'production-model'}, item.model,
        item.package_version ? h('span', {class: 'muted'}, ` · version ${item.package_version}`) : null),
      h('dt', {}, 'Predicted'), h('dd', {}, fmtDate(item.predicted_at), item.server
        ? h('span', {class: 'muted'}, ` on ${item.server}`) : null),
      h('dt', {}, 'Prediction'), h('dd', {id: 'production-prediction'}, annotationSummary(predicted, st.classes)),
      corrected ? [h('dt', {}, 'Annotation'), h('dd', {id: 'production-annotation'},
        annotationSummary(detail.annotation, st.classes))] : null),
    h('div', {class: 'review-actions'}, approveButton,
      h('a', {class: 'button', id: 'production-edit', href: projectHref(st.project, `annotate/${item.image_id}`)},
        'Correct in the editor ', h('kbd', {}, 'E'))),
    h('div', {class: 'review-nav'},
      h('button', {type: 'button', class: 'small', onclick: () => move(-1), disabled: st.index === 0},
        '← Previous ', h('kbd', {}, 'K')),
      h('button', {type: 'button', class: 'small', onclick: () => move(1), disabled: st.index >= st.items.length - 1},
        'Next ', h('kbd', {}, 'J'), ' →')),
    h('p', {class: 'muted review-hint'}, corrected
      ? 'The image was annotated since: approve the annotation, or correct it further in the editor.'
      : 'In the editor, show the model\'s predictions (O) to accept or correct its boxes, then approve here.'));
}

async function approve() {
  const item = current();
  if (!item || st.busy || !st.detail) return;
  const corrected = st.detail.annotation !== null && st.detail.annotation !== undefined;
  st.busy = true;
  try {
    if (corrected) await api.post(projectPath(st.project, `production/${item.id}/approve`), {});
    else {
      await api.post(projectPath(st.project, `production/${item.id}/accept`),
        {base_revision: st.detail.head_revision ?? null});
    }
    toast(corrected ? 'Annotation approved' : 'Prediction accepted and approved', 'success');
    await reload(st.index);
  } catch (e) {
    toastError(e);
  } finally {
    if (st) st.busy = false;
  }
}

function openEditor() {
  const item = current();
  if (item) location.hash = projectHref(st.project, `annotate/${item.image_id}`);
}

function move(step) {
  if (!st || !st.items.length) return;
  const next = Math.max(0, Math.min(st.items.length - 1, st.index + step));
  if (next !== st.index) show(next);
}
