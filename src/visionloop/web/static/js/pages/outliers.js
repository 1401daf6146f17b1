// #/p/:project/health/outliers — the images least like the rest (far from even their nearest images in embedding
// space), most unusual first, with their score: O (or a click) opens one in the editor, D dismisses it (it is
// fine; reviewers), J/K move. The list comes from the stored embeddings: the embed job (started here) computes
// what is missing.
import {api, projectPath, roleAllows} from '../api.js';
import {editorHref, embeddingsNeeded, jobPanel, listPageHead, reviewList, thumbLink} from '../data_issues.js';
import {emptyState, errorState, h, plural, replaceChildren, spinner, toast, toastError} from '../ui.js';

const COUNT = 60;

let cleanups = [];

export function dispose() {
  cleanups.forEach((f) => f());
  cleanups = [];
}

export async function render(root, {project, role}) {
  dispose();
  const p = (rest) => projectPath(project, rest);
  const reviewer = roleAllows(role, 'reviewer');
  const status = h('p', {class: 'di-summary muted', 'data-testid': 'outlier-summary'});
  const grid = h('div', {class: 'outlier-grid', 'data-testid': 'outlier-list'});
  const job = jobPanel(project, role, {kind: 'embed', label: 'Update embeddings', path: 'embeddings',
    note: 'Embeds the images that have no embedding yet.'}, () => load());
  cleanups.push(job.stop);
  const list = reviewList({o: (it) => { location.hash = editorHref(project, it.outlier.id); }, d: dismiss});
  cleanups.push(list.unbind);
  root.replaceChildren(h('div', {class: 'page di-page outlier-page', 'data-testid': 'outliers-page'},
    listPageHead(project, {title: 'Outliers', subtitle: 'Images unlike the rest of the project: a wrong file, an odd '
      + 'stain, another microscope. Open them to check, or dismiss the ones that are fine.', status, job,
    keys: [['O', 'open in the editor'], ['D', 'dismiss'], ['J / K', 'next / previous']]}),
    grid));

  async function load() {
    replaceChildren(grid, spinner('Ranking the images…'));
    let found;
    try {
      found = await api.get(p('outliers'), {params: {n: COUNT}});
    } catch (e) {
      if (e.status === 409) {
        status.textContent = 'No embeddings yet.';
        replaceChildren(grid, embeddingsNeeded(role, 'Outliers'));
        list.set([]);
        return;
      }
      replaceChildren(grid, errorState(e, 'The outliers'));
      return;
    }
    status.textContent = `The ${plural(found.results.length, 'most unusual image')} (mean distance to the ${found.k} `
      + `nearest images; 0 = alike, 1 = unrelated)${found.dismissed ? ` · ${plural(found.dismissed, 'image')} dismissed` : ''}.`;
    if (!found.results.length) {
      replaceChildren(grid, emptyState('No outliers', 'Too few images to compare, or every unusual one is dismissed.'));
      list.set([]);
      return;
    }
    const max = Math.max(...found.results.map((o) => o.score), 1e-9);
    const items = found.results.map((o) => card(o, max));
    replaceChildren(grid, items.map((it) => it.el));
    list.set(items);
  }

  function card(outlier, max) {
    const item = {outlier};
    item.el = h('figure', {class: 'outlier', 'data-id': outlier.id, onclick: () => list.focus(item)},
      thumbLink(project, outlier, {caption: outlier.name}),
      h('div', {class: 'outlier-score', title: 'Mean cosine distance to the nearest images'},
        h('div', {class: 'hbar-track'}, h('div', {class: 'hbar-fill', style: {width: `${(100 * outlier.score) / max}%`}})),
        h('span', {class: 'num'}, outlier.score.toFixed(3))),
      h('figcaption', {class: 'row'},
        h('a', {class: 'button small', href: editorHref(project, outlier.id), title: 'Open in the editor (O)'}, 'Open'),
        reviewer ? h('button', {class: 'small', 'data-action': 'dismiss', title: 'It is fine (D)',
          onclick: (e) => { e.stopPropagation(); dismiss(item); }}, 'Dismiss ', h('kbd', {}, 'D')) : null));
    return item;
  }

  async function dismiss(item) {
    if (!reviewer) return;
    try {
      await api.post(p('dismissals'), {kind: 'outlier', image_ids: [item.outlier.id]});
      toast(`Dismissed ${item.outlier.name}`, 'success');
      const at = list.items.indexOf(item);
      item.el.remove();
      list.set(list.items.filter((it) => it !== item), at);
    } catch (e) {
      toastError(e);
    }
  }

  load();
}
