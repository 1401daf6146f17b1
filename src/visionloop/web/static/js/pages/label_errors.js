// #/p/:project/health/label-errors — the label-error candidates of the newest finder run, likeliest first: each
// shows the image around the box, what it is labelled (red, dashed) and what the model suggests (green); one click
// (or F) saves the suggestion as a new revision by you, D dismisses it (the label is right), U opens it again,
// O opens the image in the editor, J/K move. Reviewers and admins; an admin starts the finder from here.
import {api, projectPath, roleAllows} from '../api.js';
import {editorHref, fileUrl, jobPanel, keyLegend, reviewList} from '../data_issues.js';
import {
  colorOf, emptyState, errorState, fmtDate, fmtNumber, h, pageHeader, projectHref, replaceChildren, spinner, textOn,
  toast, toastError,
} from '../ui.js';

const PAGE = 50;
const KINDS = {
  wrong_label: 'Wrong label', wrong_tag: 'Wrong tag', wrong_class: 'Wrong class', missing_box: 'Missing box',
  loose_box: 'Loose box',
};
const TABS = [['open', 'Open'], ['fixed', 'Fixed'], ['dismissed', 'Dismissed'], ['', 'All']];
const GIVEN = '#e0362c';
const SUGGESTED = '#12a150';
const CROP_W = 280;
const CROP_H = 210;

let cleanups = [];

export function dispose() {
  cleanups.forEach((f) => f());
  cleanups = [];
}

export async function render(root, {project, role, query = {}}) {
  dispose();
  const p = (rest) => projectPath(project, rest);
  const header = pageHeader('Label errors', 'Labels a model trained on the rest of the data disagrees with, '
    + 'likeliest first. Fix applies the suggestion as a new revision by you; dismiss keeps the label.',
  h('a', {class: 'button small', href: projectHref(project, 'health')}, '‹ Health'));
  if (!roleAllows(role, 'reviewer')) {
    root.replaceChildren(h('div', {class: 'page di-page'}, header,
      emptyState('For reviewers', 'Reviewing label errors needs the reviewer role in this project.')));
    return;
  }
  const classes = await api.get(p('classes')).catch(() => []);
  const byId = new Map(classes.map((c) => [c.id, c]));
  const view = {state: query.state ?? 'open', offset: 0, items: []};
  const summary = h('p', {class: 'di-summary muted', 'data-testid': 'le-summary'});
  const tabs = h('div', {class: 'di-tabs', role: 'tablist'});
  const listEl = h('div', {class: 'le-list', 'data-testid': 'le-list'});
  const pager = h('div', {class: 'row di-pager'});
  const job = jobPanel(project, role, {kind: 'label_errors', label: 'Find label errors', path: 'label-errors',
    note: 'Cross-validation on cached backbone features: a few minutes for a few thousand boxes.'},
  () => { view.offset = 0; load(); });
  cleanups.push(job.stop);
  const list = reviewList({f: fix, d: dismiss, u: reopen, o: (it) => { location.hash = editorHref(project, it.issue.image_id); }});
  cleanups.push(list.unbind);
  root.replaceChildren(h('div', {class: 'page di-page le-page', 'data-testid': 'label-errors-page'}, header,
    h('div', {class: 'card di-head'}, h('div', {class: 'row'}, tabs, h('span', {class: 'spacer'}), job.el), summary,
      keyLegend([['F', 'fix'], ['D', 'dismiss'], ['U', 'open again'], ['O', 'open in the editor'], ['J / K', 'next / previous']])),
    listEl, pager));

  function chip(classId, name) {
    if (classId === null || classId === undefined) return h('span', {class: 'muted'}, 'none');
    const colour = colorOf(byId.get(classId) || classId);
    return h('span', {class: 'le-class', style: {background: colour, color: textOn(colour)}}, name || String(classId));
  }

  function renderTabs(counts) {
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    replaceChildren(tabs, TABS.map(([value, label]) => h('button', {
      class: `small${value === view.state ? ' active' : ''}`, role: 'tab', 'aria-selected': String(value === view.state),
      'data-tab': value || 'all', onclick: () => { view.state = value; view.offset = 0; load(); },
    }, label, h('span', {class: 'di-count'}, fmtNumber(value ? counts[value] ?? 0 : total)))));
  }

  async function load() {
    replaceChildren(listEl, spinner('Loading candidates…'));
    let answer;
    try {
      answer = await api.get(p('label-errors'), {params: {state: view.state || null, offset: view.offset, limit: PAGE}});
    } catch (e) {
      replaceChildren(listEl, errorState(e, 'The label-error candidates'));
      return;
    }
    renderTabs(answer.counts);
    const run = answer.run;
    summary.textContent = run
      ? `Found ${fmtDate(run.created_at)} by ${run.created_by} (${run.method.replaceAll('_', ' ')}`
        + `${run.version ? `, version ${run.version}` : ''}${run.source ? `, boxes from ${run.source}` : ''}): `
        + `${fmtNumber(run.summary.candidates ?? 0)} candidates in ${fmtNumber(run.summary.examples ?? 0)} labels.`
      : 'The finder has not run yet.';
    if (!answer.items.length) {
      replaceChildren(listEl, run ? emptyState(view.state === 'open' ? 'Nothing left to review' : 'None here',
        view.state === 'open' ? 'Every candidate of this run is fixed or dismissed.' : '')
        : emptyState('No label errors found yet', roleAllows(role, 'admin')
          ? 'Start the finder above; the candidates appear here when it is done.'
          : 'An admin starts the finder from this page.'));
      list.set([]);
      replaceChildren(pager);
      return;
    }
    view.items = answer.items.map(card);
    replaceChildren(listEl, view.items.map((it) => it.el));
    list.set(view.items);
    renderPager(answer.total);
    loadDetails(view.items);
  }

  function renderPager(total) {
    const last = Math.min(view.offset + PAGE, total);
    replaceChildren(pager, h('span', {class: 'muted'}, `${fmtNumber(view.offset + 1)}–${fmtNumber(last)} of ${fmtNumber(total)}`),
      h('button', {class: 'small', disabled: view.offset === 0, onclick: () => { view.offset -= PAGE; load(); }}, '‹ Previous'),
      h('button', {class: 'small', disabled: last >= total, onclick: () => { view.offset += PAGE; load(); }}, 'Next ›'));
  }

  function card(issue) {
    const item = {issue, detail: null, busy: false};
    const canvas = h('canvas', {class: 'le-crop', width: CROP_W, height: CROP_H, 'aria-label': `image ${issue.image}`});
    item.status = h('div', {class: 'le-status'});
    item.el = h('article', {class: 'le-card', 'data-issue': issue.id, 'data-state': issue.state,
      onclick: () => list.focus(item)},
    h('a', {class: 'le-crop-link', href: editorHref(project, issue.image_id), title: 'Open in the editor (O)'}, canvas),
    h('div', {class: 'le-info'},
      h('div', {class: 'row le-title'}, h('span', {class: 'badge le-kind'}, KINDS[issue.kind] || issue.kind),
        h('span', {class: 'muted'}, `#${issue.rank} · score ${issue.score.toFixed(2)}`)),
      h('p', {class: 'le-change'}, ...describe(issue)),
      h('p', {class: 'le-image muted'}, h('a', {href: editorHref(project, issue.image_id)}, issue.image),
        issue.box_index !== null ? ` · box ${issue.box_index + 1}` : ''),
      h('p', {class: 'le-legend faint'},
        issue.box_index !== null ? [h('span', {class: 'le-key given'}), ' as labelled '] : null,
        issue.box ? [h('span', {class: 'le-key suggested'}), ' suggested'] : null)),
    item.status);
    item.canvas = canvas;
    showStatus(item);
    return item;
  }

  function describe(issue) {
    const given = chip(issue.given_class_id, issue.given);
    const suggested = chip(issue.suggested_class_id, issue.suggested);
    if (issue.kind === 'missing_box') return ['Unlabelled object: add a ', suggested, ' box'];
    if (issue.kind === 'loose_box') return ['The ', given, ' box is loose: tighten it'];
    if (issue.kind === 'wrong_tag') {
      return issue.given_class_id !== null ? ['Remove the tag ', given] : ['Add the tag ', suggested];
    }
    return [given, h('span', {class: 'le-arrow'}, ' → '), suggested];
  }

  function showStatus(item) {
    const {issue} = item;
    item.el.dataset.state = issue.state;
    if (issue.state === 'open') {
      replaceChildren(item.status,
        h('button', {class: 'primary', 'data-action': 'fix', title: 'Apply the suggestion (F)', disabled: item.busy,
          onclick: (e) => { e.stopPropagation(); fix(item); }}, 'Fix ', h('kbd', {}, 'F')),
        h('button', {'data-action': 'dismiss', title: 'The label is right (D)', disabled: item.busy,
          onclick: (e) => { e.stopPropagation(); dismiss(item); }}, 'Dismiss ', h('kbd', {}, 'D')));
      return;
    }
    replaceChildren(item.status,
      h('span', {class: `badge ${issue.state === 'fixed' ? 'ok' : ''}`, 'data-testid': 'le-state'},
        issue.state === 'fixed' ? 'Fixed' : 'Dismissed'),
      h('span', {class: 'faint'}, issue.state_by ? `by ${issue.state_by}` : ''),
      h('button', {class: 'small', 'data-action': 'reopen', title: 'Open it again (U)', disabled: item.busy,
        onclick: (e) => { e.stopPropagation(); reopen(item); }}, 'Undo'));
  }

  async function loadDetails(items) {
    let next = 0;
    const worker = async () => {
      while (next < items.length) {
        const item = items[next++];
        try {
          item.detail = await api.get(p(`images/${item.issue.image_id}`));
          drawCrop(item);
        } catch (e) {
          item.canvas.replaceWith(h('div', {class: 'le-crop error'}, 'The image could not be loaded.'));
        }
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
  }

  function drawCrop(item) {
    const {issue, detail} = item;
    const img = new Image();
    img.onload = () => paint(item.canvas, img, detail, issue, givenBox(detail, issue));
    img.src = fileUrl(project, issue.image_id);
  }

  function settled(item, issue, message) {
    item.issue = issue;
    item.busy = false;
    showStatus(item);
    toast(message, 'success');
    const at = view.items.indexOf(item);
    const nextOpen = view.items.findIndex((it, i) => i > at && it.issue.state === 'open');
    if (nextOpen >= 0) list.set(view.items, nextOpen);
  }

  async function fix(item) {
    if (item.busy || item.issue.state !== 'open') return;
    item.busy = true;
    showStatus(item);
    try {
      if (!item.detail) item.detail = await api.get(p(`images/${item.issue.image_id}`));
      const answer = await api.post(p(`label-errors/${item.issue.id}/fix`), {base_revision: item.detail.head_revision});
      item.detail = {...item.detail, head_revision: answer.revision};
      settled(item, answer.issue, `Fixed ${item.issue.image}: revision ${answer.revision} saved`);
    } catch (e) {
      item.busy = false;
      showStatus(item);
      if (e.status === 409 && e.body && e.body.head) {
        item.detail = await api.get(p(`images/${item.issue.image_id}`)).catch(() => item.detail);
        toast(`${e.body.head.author} saved this image meanwhile (revision ${e.body.head.revision}); `
          + 'press F again to apply the fix to their version, or open it in the editor.', 'error');
      } else {
        toastError(e, 'Not fixed');
      }
    }
  }

  async function setState(item, action, message) {
    if (item.busy) return;
    item.busy = true;
    showStatus(item);
    try {
      settled(item, await api.post(p(`label-errors/${item.issue.id}/${action}`), {}), message);
    } catch (e) {
      item.busy = false;
      showStatus(item);
      toastError(e);
    }
  }

  function dismiss(item) {
    if (item.issue.state === 'open') setState(item, 'dismiss', `Dismissed: ${item.issue.image} keeps its label`);
  }

  function reopen(item) {
    if (item.issue.state !== 'open') {
      setState(item, 'reopen', item.issue.state === 'fixed' ? 'Open again (the saved revision stays: undo it in the editor)'
        : 'Open again');
    }
  }

  load();
}

function givenBox(detail, issue) {
  const ann = detail && detail.annotation;
  if (issue.box_index === null || !ann || !Array.isArray(ann.xyxy)) return null;
  return ann.xyxy[issue.box_index] || null;
}

/** The image around the boxes (the whole image for an image-level label), the given box dashed red and the
 * suggested one green. */
function paint(canvas, img, detail, issue, given) {
  const W = detail.width;
  const H = detail.height;
  const boxes = [given, issue.box].filter(Boolean);
  let [x0, y0, x1, y1] = [0, 0, W, H];
  if (boxes.length) {
    x0 = Math.min(...boxes.map((b) => b[0]));
    y0 = Math.min(...boxes.map((b) => b[1]));
    x1 = Math.max(...boxes.map((b) => b[2]));
    y1 = Math.max(...boxes.map((b) => b[3]));
    const pad = Math.max(40, 0.6 * Math.max(x1 - x0, y1 - y0));
    [x0, y0, x1, y1] = [Math.max(0, x0 - pad), Math.max(0, y0 - pad), Math.min(W, x1 + pad), Math.min(H, y1 + pad)];
  }
  const scale = Math.min(CROP_W / (x1 - x0), CROP_H / (y1 - y0));
  const dw = (x1 - x0) * scale;
  const dh = (y1 - y0) * scale;
  const ox = (CROP_W - dw) / 2;
  const oy = (CROP_H - dh) / 2;
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#1d2530';
  ctx.fillRect(0, 0, CROP_W, CROP_H);
  const sx = img.naturalWidth / W;
  ctx.drawImage(img, x0 * sx, y0 * sx, (x1 - x0) * sx, (y1 - y0) * sx, ox, oy, dw, dh);
  const rect = (b, colour, dash) => {
    ctx.save();
    ctx.strokeStyle = colour;
    ctx.lineWidth = 2.5;
    ctx.setLineDash(dash);
    ctx.strokeRect(ox + (b[0] - x0) * scale, oy + (b[1] - y0) * scale, (b[2] - b[0]) * scale, (b[3] - b[1]) * scale);
    ctx.restore();
  };
  if (given) rect(given, GIVEN, [6, 4]);
  if (issue.box) rect(issue.box, SUGGESTED, []);
}
