// The editor's work mode (#/p/:project/annotate/:id?item=N, opened from My queue).
//
// The item (GET .../work/items/N) gives the annotation to start from and the revision it was read at. Edits stay a
// draft in this browser (kept across a reload) until "Submit & next" (Shift+Enter) sends them to
// POST .../work/N/submit: the server decides where the answer goes (the image's annotation for normal work, the
// work item for an image checked against a trusted answer or merged from several annotators), so the editor never
// saves to the image itself here and every item reads the same. A rejected item shows the reviewer's reason, tags
// and the comment drawn on the image until it is submitted again.

import * as ol from '../../vendor/ol/ol.js';
import { ApiError, api, projectPath, roleAllows } from '../api.js';
import { fmtDate, h, projectHref, replaceChildren, toast, toastError } from '../ui.js';
import { conflictDialog } from './conflict.js';
import { boxGeometry } from './shapes.js';

export const TAG_LABELS = {
  missing_object: 'Missing object', wrong_class: 'Wrong class', loose_box: 'Loose box', extra_object: 'Extra object',
  wrong_mask: 'Wrong mask', other: 'Other',
};

const COMMENT_COLOUR = '#e5004f';

/** The editor's address of a work item ({item, image: {id}}). */
export const itemHref = (project, item) => projectHref(project, `annotate/${item.image.id}?item=${item.item}`);

/** Open the annotator's next item (rejections first); back to the queue when none is left. Returns the item. */
export async function openNext(project) {
  const { item } = await api.get(projectPath(project, 'work/next'));
  location.hash = item ? itemHref(project, item) : projectHref(project, 'queue');
  return item;
}

const draftKey = (project, item) => `vl_work_draft:${project}:${item}`;

export class WorkMode {
  /** `editor`: the Editor; `item`: the work item as the API gives it. */
  constructor(editor, item) {
    this.editor = editor;
    this.item = item;
    this.base = item.base_revision;
    this.conflict = false; // the AutoSave interface the editor calls (schedule, flushNow, dispose, conflict)
    this.busy = false;
    this.key = draftKey(editor.project, item.item);
  }

  static load(project, itemId) {
    return api.get(projectPath(project, `work/items/${encodeURIComponent(itemId)}`));
  }

  get open() {
    return this.item.state === 'todo' || this.item.state === 'rejected';
  }

  /** The payload to start from: this browser's draft of the same item state and base, else the item's. */
  start() {
    try {
      const draft = JSON.parse(localStorage.getItem(this.key) || 'null');
      if (draft && this.open && draft.state === this.item.state && draft.base === this.base) return draft.payload;
    } catch { /* a broken draft is no draft */ }
    return this.item.annotation || null;
  }

  // ---- the AutoSave interface: edits are kept as a draft, sent only by submit -----------------------------------

  schedule() {
    if (!this.open) return;
    try {
      localStorage.setItem(this.key, JSON.stringify({ state: this.item.state, base: this.base,
        payload: this.editor.history.current }));
    } catch { /* too large for local storage: the edits stay on the page */ }
    this.report();
  }

  async flushNow() {}

  dispose() {}

  report() {
    const text = { todo: 'Not submitted yet', rejected: 'Rejected: fix and submit', submitted: 'Submitted',
      approved: 'Approved' }[this.item.state] || this.item.state;
    this.editor.panel.setStatus({ state: this.item.state === 'approved' ? 'saved' : 'idle', text });
  }

  // ---- display ------------------------------------------------------------------------------------------------

  /** The side panel's work section and the reviewer's comment on the canvas. */
  show() {
    const { project } = this.editor;
    const review = this.item.review;
    const button = h('button', { class: 'primary ed-submit', 'data-testid': 'submit-next', disabled: !this.open,
      title: 'Submit this image and open the next one (Shift+Enter)', onclick: () => this.submit(),
      onmousedown: (e) => e.preventDefault() }, 'Submit & next', h('kbd', {}, 'Shift+Enter'));
    replaceChildren(this.editor.panel.workEl,
      h('h3', {}, 'Your work'),
      h('p', { class: 'muted ed-work-batch' }, `Batch ${this.item.batch}`),
      review ? h('div', { class: 'ed-rejection', 'data-testid': 'rejection' },
        h('strong', {}, `Rejected by ${review.author}`), ' ', h('span', { class: 'muted' }, fmtDate(review.created_at)),
        h('p', { class: 'ed-reason' }, review.reason || ''),
        review.tags.length ? h('div', { class: 'chips' }, review.tags.map((t) => h('span', {
          class: 'badge bad', 'data-tag': t }, TAG_LABELS[t] || t))) : null,
        review.comment ? h('p', { class: 'muted' }, 'The reviewer marked the place on the image (red).') : null)
        : null,
      this.open ? button : h('p', { class: 'muted' }, this.item.state === 'approved' ? 'Approved: nothing to do.'
        : 'Submitted: waiting for review.'),
      h('a', { class: 'ed-work-back', href: projectHref(project, 'queue') }, '‹ My queue'));
    this.editor.panel.workEl.hidden = false;
    this.showComment();
    this.report();
  }

  /** The reviewer's point or box as a layer over the shapes (never part of the annotation). */
  showComment() {
    const comment = this.item.review && this.item.review.comment;
    if (!comment || !this.open) return;
    const { canvas, detail } = this.editor;
    const geometry = comment.box ? boxGeometry(comment.box, detail.height)
      : new ol.geom.Point(canvas.toMap(comment.point));
    const stroke = new ol.style.Stroke({ color: COMMENT_COLOUR, width: 3, lineDash: [10, 6] });
    const style = new ol.style.Style({
      stroke, fill: new ol.style.Fill({ color: 'rgba(229, 0, 79, 0.08)' }),
      image: new ol.style.Circle({ radius: 16, stroke, fill: new ol.style.Fill({ color: 'rgba(229, 0, 79, 0.15)' }) }),
      text: new ol.style.Text({ text: 'Reviewer', font: '600 13px sans-serif', offsetY: comment.box ? 0 : -28,
        placement: 'point', fill: new ol.style.Fill({ color: '#fff' }),
        backgroundFill: new ol.style.Fill({ color: COMMENT_COLOUR }), padding: [2, 6, 2, 6],
        textBaseline: comment.box ? 'bottom' : 'middle' }),
    });
    this.commentLayer = new ol.layer.Vector({ source: new ol.source.Vector({ features: [new ol.Feature(geometry)] }),
      style, zIndex: 20 });
    this.commentLayer.set('name', 'review-comment');
    canvas.addLayer(this.commentLayer);
  }

  /** Shift+Enter in the `?` overlay. */
  bindings() {
    return [{ keys: ['shift+enter'], label: 'Submit this image and open the next one in your queue',
      group: 'General', when: () => this.open && !this.editor.readOnly, run: () => { this.submit(); } }];
  }

  // ---- submit -------------------------------------------------------------------------------------------------

  async submit() {
    if (this.busy || !this.open) return;
    this.busy = true;
    const { project } = this.editor;
    let retry = false;
    try {
      await api.post(projectPath(project, `work/${this.item.item}/submit`), {
        annotation: this.editor.history.current, base_revision: this.base });
      localStorage.removeItem(this.key);
      this.item = { ...this.item, state: 'submitted' };
      toast('Submitted', 'success', { timeout: 1500 });
      if (!(await openNext(project))) toast('Your queue is done: nothing left to annotate.', 'success');
    } catch (e) {
      if (e instanceof ApiError && e.status === 409 && e.body && e.body.error === 'StaleRevisionError') {
        retry = await this.settle();
      } else toastError(e, 'Not submitted');
    } finally {
      this.busy = false;
    }
    if (retry) await this.submit();
  }

  /** Someone saved the image since the item was read: choose theirs, mine or both (as the editor's save does).
   * Returns true when the chosen version is to be submitted now. */
  async settle() {
    const ed = this.editor;
    const fresh = await api.get(projectPath(ed.project, `images/${ed.id}`));
    const head = { revision: fresh.head_revision, payload: fresh.annotation, author: '', created_at: null };
    try {
      const revs = await api.get(projectPath(ed.project, `images/${ed.id}/revisions`));
      const last = revs[revs.length - 1];
      if (last) Object.assign(head, { author: last.author, created_at: last.created_at });
    } catch { /* the author is a nicety */ }
    const { choice, payload } = await conflictDialog({ detail: ed.detail, classes: ed.allClasses, head,
      mine: ed.history.current });
    if (choice === null || ed.disposed) return false;
    this.base = head.revision;
    const chosen = choice === 'theirs' ? head.payload : choice === 'merge' ? payload : null;
    if (chosen) {
      ed.history.push(chosen);
      ed.apply(chosen);
    }
    this.schedule();
    if (choice === 'theirs') {
      toast('Their version is shown: check it, then Shift+Enter submits it.', 'info');
      return false;
    }
    return true;
  }
}

/** Admins, outside work mode: G marks the open image's saved annotation as the gold of honeypots. */
export function goldBinding(editor) {
  if (editor.work || !roleAllows(editor.params.role || 'viewer', 'admin')) return null;
  return { keys: ['shift+g'], label: "Make this image's saved annotation the gold answer of honeypots (admins)",
    group: 'Review', run: () => { markGold(editor); } };
}

async function markGold(editor) {
  await editor.autosave.flushNow();
  if (editor.autosave.state().state !== 'saved') {
    toast('The gold is the saved annotation: wait until the status says Saved, then press Shift+G again.', 'info');
    return;
  }
  try {
    await api.put(projectPath(editor.project, `work/gold/${editor.id}`));
    toast('This image is gold now: honeypots score annotators against its saved annotation.', 'success');
  } catch (e) {
    toastError(e, 'Not marked as gold');
  }
}
