// Pieces shared by the pages that find what is wrong in the data (label errors, duplicates, outliers) and the
// "more like this" strip: image links and thumbnails, the job that computes a list (started here, followed with
// its progress), a review list walked with the keyboard.
import {api, projectPath, roleAllows} from './api.js';
import {FINAL_STATES, jobProgress, watchJob} from './job_watch.js';
import {
  emptyState, fmtDate, h, keymap, pageHeader, projectHref, replaceChildren, toast, toastError,
} from './ui.js';

export const thumbUrl = (project, id, size = 256) => `${api.url(projectPath(project, `images/${id}/thumbnail`))}?size=${size}`;
export const fileUrl = (project, id) => api.url(projectPath(project, `images/${id}/file`));
export const editorHref = (project, id) => `#/p/${encodeURIComponent(project)}/annotate/${id}`;

/** A thumbnail that opens the image in the editor; `caption` under it. */
export function thumbLink(project, image, {size = 256, caption = null, cls = 'di-thumb'} = {}) {
  return h('a', {class: cls, href: editorHref(project, image.id), title: image.name || `image ${image.id}`,
    'data-id': image.id},
  h('img', {src: thumbUrl(project, image.id, size), loading: 'lazy', alt: image.name || '', decoding: 'async'}),
  caption !== null ? h('span', {class: 'di-caption'}, caption) : null);
}

/**
 * The job that computes a page's list: a button (for `role` at least `needs`) that queues it, and its progress
 * while it runs (also one started elsewhere: the newest job of `kind` that has not ended).
 * Options: {kind, label, path, body, needs, note(job)}; `onDone(job)` when a job ends well.
 * Returns {el, stop()}.
 */
export function jobPanel(project, role, {kind, label, path, body = {}, needs = 'admin', note = null}, onDone) {
  const el = h('div', {class: 'di-job', 'data-kind': kind});
  let watcher = null;
  const allowed = roleAllows(role, needs);
  function idle(last) {
    const button = allowed ? h('button', {class: 'primary', 'data-testid': `start-${kind}`, onclick: start}, label)
      : h('span', {class: 'muted'}, `An ${needs} can start it.`);
    const said = last && last.state === 'failed' ? h('span', {class: 'error'}, `The last run failed: ${last.error || ''}`)
      : last && last.finished_at ? h('span', {class: 'muted'}, `Last run ${fmtDate(last.finished_at)}`)
        : note ? h('span', {class: 'muted'}, note) : null;
    replaceChildren(el, button, said);
  }
  function follow(job) {
    const bar = jobProgress();
    bar.set(job);
    replaceChildren(el, bar.el);
    watcher = watchJob(project, job.id, (j) => bar.set(j), {interval: 1000});
    watcher.done.then((j) => {
      if (!j || !j.state) return;
      idle(j);
      if (j.state === 'done') onDone(j);
      else if (j.state === 'failed') toast(`${label} failed: ${j.error || 'see the Jobs page'}`, 'error');
    });
  }
  async function start(e) {
    e.currentTarget.disabled = true;
    try {
      follow(await api.post(projectPath(project, path), body));
    } catch (err) {
      toastError(err);
      idle(null);
    }
  }
  idle(null);
  api.get(projectPath(project, 'jobs'), {params: {kind, limit: 1}}).then((jobs) => {
    const last = jobs && jobs[0];
    if (last && !FINAL_STATES.has(last.state)) follow(last);
    else idle(last);
  }).catch(() => {});
  return {el, stop: () => watcher && watcher.stop()};
}

/**
 * A list walked with the keyboard: J/K (or arrows) move, and `keys` ({'f': fn(item), ...}) act on the current
 * item. `items` are {el, ...}; the current one gets the class `current` and is scrolled into view.
 * Returns {set(items), move(step), current(), index, unbind()}.
 */
export function reviewList(keys) {
  const list = {items: [], index: 0};
  const show = () => {
    list.items.forEach((it, i) => it.el.classList.toggle('current', i === list.index));
    const cur = list.items[list.index];
    if (cur) cur.el.scrollIntoView({block: 'nearest'});
  };
  list.set = (items, index = 0) => { list.items = items; list.index = Math.max(0, Math.min(index, items.length - 1)); show(); };
  list.move = (step) => { if (list.items.length) { list.index = Math.max(0, Math.min(list.index + step, list.items.length - 1)); show(); } };
  list.focus = (item) => { const i = list.items.indexOf(item); if (i >= 0) { list.index = i; show(); } };
  list.current = () => list.items[list.index] || null;
  const bindings = {j: () => list.move(1), k: () => list.move(-1), arrowdown: () => list.move(1),
    arrowup: () => list.move(-1)};
  for (const [key, fn] of Object.entries(keys)) bindings[key] = () => { const cur = list.current(); if (cur) fn(cur); };
  list.unbind = keymap.bind(bindings);
  return list;
}

/** The keys of a review page, as a line of key caps. */
export function keyLegend(pairs) {
  return h('p', {class: 'di-keys muted'}, pairs.map(([key, what]) => h('span', {}, h('kbd', {}, key), ` ${what}`)));
}

/** The top of a list page computed from embeddings: its title, a link back to the health page, and a card with the
 * `status` line, the `job` panel and the `keys`. */
export function listPageHead(project, {title, subtitle, status, job, keys}) {
  return [pageHeader(title, subtitle, h('a', {class: 'button small', href: projectHref(project, 'health')}, '‹ Health')),
    h('div', {class: 'card di-head'}, h('div', {class: 'row'}, status, h('span', {class: 'spacer'}), job.el),
      keyLegend(keys))];
}

/** What a list computed from embeddings shows while there are none. */
export function embeddingsNeeded(role, what) {
  return emptyState('Embeddings needed', roleAllows(role, 'admin')
    ? `${what} are found from the images\u2019 embeddings: update them above (a minute or two per thousand images).`
    : `${what} are found from the images\u2019 embeddings; an admin computes them.`);
}
