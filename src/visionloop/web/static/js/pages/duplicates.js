// #/p/:project/health/duplicates — exact duplicates (the same bytes) and near-duplicate groups (embeddings, checked
// by layout), each group's images side by side: "keep this one" deletes the others (admins, after a confirmation;
// keys 1-9), "not duplicates" sets the group aside (reviewers; N). J/K move between groups. The list comes from the
// stored embeddings: the embed job (started here) computes what is missing.
import {api, projectPath, roleAllows} from '../api.js';
import {embeddingsNeeded, jobPanel, listPageHead, reviewList, thumbLink} from '../data_issues.js';
import {
  confirmDialog, emptyState, errorState, fmtNumber, h, plural, replaceChildren, spinner, toast, toastError,
} from '../ui.js';

let cleanups = [];

export function dispose() {
  cleanups.forEach((f) => f());
  cleanups = [];
}

const groupKey = (ids) => [...ids].sort((a, b) => a - b).join(',');

export async function render(root, {project, role}) {
  dispose();
  const p = (rest) => projectPath(project, rest);
  const admin = roleAllows(role, 'admin');
  const reviewer = roleAllows(role, 'reviewer');
  const status = h('p', {class: 'di-summary muted', 'data-testid': 'dup-summary'});
  const listEl = h('div', {class: 'dup-list', 'data-testid': 'dup-list'});
  const job = jobPanel(project, role, {kind: 'embed', label: 'Update embeddings', path: 'embeddings',
    note: 'Embeds the images that have no embedding yet.'}, () => load());
  cleanups.push(job.stop);
  const digits = Object.fromEntries([...'123456789'].map((d) => [d, (g) => keep(g, Number(d) - 1)]));
  const list = reviewList({n: notDuplicates, ...digits});
  cleanups.push(list.unbind);
  root.replaceChildren(h('div', {class: 'page di-page dup-page', 'data-testid': 'duplicates-page'},
    listPageHead(project, {title: 'Duplicates', subtitle: 'Images that are the same or nearly the same: keep one '
      + 'of each group, or say they are not duplicates.', status, job,
    keys: [['1–9', 'keep that image, delete the others'], ['N', 'not duplicates'], ['J / K', 'next / previous']]}),
    listEl));

  async function load() {
    replaceChildren(listEl, spinner('Looking for duplicates…'));
    let found;
    let dismissed;
    try {
      [found, dismissed] = await Promise.all([api.get(p('duplicates')), api.get(p('dismissals'), {params: {kind: 'duplicates'}})]);
    } catch (e) {
      if (e.status === 409) {
        status.textContent = 'No embeddings yet.';
        replaceChildren(listEl, embeddingsNeeded(role, 'Duplicates'));
        list.set([]);
        return;
      }
      replaceChildren(listEl, errorState(e, 'The duplicates'));
      return;
    }
    stale();
    const aside = new Set(dismissed.map((d) => groupKey(d.image_ids)));
    const groups = [...found.exact.map((g) => ({...g, exact: true})), ...found.near.map((g) => ({...g, exact: false}))]
      .filter((g) => !aside.has(groupKey(g.ids)));
    status.textContent = `${plural(found.exact.length, 'exact group')}, ${plural(found.near.length, 'near group')}`
      + `${dismissed.length ? ` · ${plural(dismissed.length, 'group')} set aside` : ''}.`;
    if (!groups.length) {
      replaceChildren(listEl, emptyState('No duplicates', 'No two images look the same.'));
      list.set([]);
      return;
    }
    const items = groups.map(card);
    replaceChildren(listEl, items.map((it) => it.el));
    list.set(items);
  }

  async function stale() {
    try {
      const [sets, count] = await Promise.all([api.get(p('embeddings')), api.get(p('images/count'))]);
      const images = sets.find((s) => s.kind === 'images');
      const missing = count.total - (images ? images.count : 0);
      if (missing > 0) status.append(` ${plural(missing, 'image')} not embedded yet: update the embeddings to include them.`);
    } catch (e) { /* the list is shown anyway */ }
  }

  function card(group) {
    const item = {group};
    const pictures = group.images.map((im, i) => h('figure', {class: 'dup-item'},
      thumbLink(project, im, {caption: im.name}),
      h('figcaption', {},
        admin ? h('button', {class: 'small', 'data-action': 'keep', 'data-id': im.id,
          title: `Keep this one, delete the others (${i + 1})`, onclick: () => keep(item, i)},
        'Keep this one', i < 9 ? h('kbd', {}, String(i + 1)) : null) : null)));
    item.el = h('article', {class: 'card dup-group', 'data-ids': groupKey(group.ids), onclick: () => list.focus(item)},
      h('div', {class: 'row dup-head'},
        h('span', {class: `badge ${group.exact ? 'bad' : 'warn'}`}, group.exact ? 'Exact duplicates' : 'Near duplicates'),
        h('span', {class: 'muted'}, group.exact ? `${group.size} images with the same bytes`
          : `${group.size} images · similarity ${group.min_score.toFixed(3)}${group.max_score > group.min_score
            ? `–${group.max_score.toFixed(3)}` : ''}`),
        h('span', {class: 'spacer'}),
        reviewer ? h('button', {class: 'small', 'data-action': 'not-duplicates', title: 'Not duplicates (N)',
          onclick: () => notDuplicates(item)}, 'Not duplicates ', h('kbd', {}, 'N')) : null),
      h('div', {class: 'dup-images'}, pictures));
    return item;
  }

  async function keep(item, index) {
    if (!admin) return;
    const kept = item.group.images[index];
    if (!kept) return;
    const others = item.group.images.filter((_, i) => i !== index);
    const ok = await confirmDialog(`Keep ${kept.name} and delete ${others.map((o) => o.name).join(', ')}? `
      + 'Dataset versions keep what they hold.', {confirm: `Delete ${plural(others.length, 'image')}`, danger: true,
      title: 'Delete the duplicates'});
    if (!ok) return;
    try {
      const answer = await api.post(p('images/bulk'), {ids: others.map((o) => o.id), action: 'delete'});
      toast(`Deleted ${plural(answer.changed, 'image')}; kept ${kept.name}`, 'success');
      await load();
    } catch (e) {
      toastError(e, 'Not deleted');
    }
  }

  async function notDuplicates(item) {
    if (!reviewer) return;
    try {
      await api.post(p('dismissals'), {kind: 'duplicates', image_ids: item.group.ids});
      toast(`Set aside: ${fmtNumber(item.group.size)} images are not duplicates`, 'success');
      const at = list.items.indexOf(item);
      item.el.remove();
      list.set(list.items.filter((it) => it !== item), at);
      if (!list.items.length) replaceChildren(listEl, emptyState('No duplicates left', 'Every group is handled.'));
    } catch (e) {
      toastError(e);
    }
  }

  load();
}
