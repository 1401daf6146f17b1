// Dataset health: class balance, box sizes and aspect ratios, images per folder, the unlabelled share, review states,
// label-error candidates and duplicates, from GET /projects/{p}/health. Every bar links to the images behind it (the
// browse page with the matching filters), every list to its own page (label errors, duplicates, outliers).
import { api, projectPath, roleAllows } from '../api.js';
import {
  colorOf, emptyState, errorState, fmtDate, fmtNumber, h, keymap, pageHeader, plural, projectHref, replaceChildren,
  spinner, toast, toastError,
} from '../ui.js';
import { hbars, histogram } from '../stat_charts.js';

const REVIEW_LABELS = [['todo', 'To do'], ['in_progress', 'In progress'], ['submitted', 'Waiting for review'],
  ['approved', 'Approved'], ['rejected', 'Rejected']];
const REVIEW_COLOURS = { todo: 'var(--border-strong)', in_progress: 'var(--warning)', submitted: 'var(--primary)',
  approved: 'var(--success)', rejected: 'var(--danger)' };
const KIND_LABELS = { wrong_label: 'wrong label', wrong_tag: 'wrong tag', wrong_class: 'wrong class',
  missing_box: 'missing box', loose_box: 'loose box' };
// keys of the page: each jumps to a page behind it
const KEYS = [['l', 'label-errors', 'Label errors'], ['d', 'duplicates', 'Duplicates'], ['o', 'outliers', 'Outliers'],
  ['i', 'images', 'All images']];

let unbind = null;

export function dispose() {
  if (unbind) unbind();
  unbind = null;
}

/** '#/p/x/images?...' with the filters (values left out when null). */
function imagesHref(project, filters) {
  const q = new URLSearchParams(Object.entries(filters).filter(([, v]) => v !== null && v !== undefined && v !== ''))
    .toString();
  return `${projectHref(project, 'images')}${q ? `?${q}` : ''}`;
}

const num = (v) => String(Number(v.toFixed(2)));

function binLabel(b, unit = '') {
  return b.max === null ? `≥ ${num(b.min)}${unit}` : `${num(b.min)}–${num(b.max)}${unit}`;
}

function card(title, testid, aside, ...body) {
  return h('section', { class: 'card section health-card', 'data-testid': testid },
    h('div', { class: 'section-head' }, h('h2', {}, title), aside), body);
}

function statTile(value, label, href, testid) {
  const inner = [h('div', { class: 'stat-value', 'data-testid': testid }, value), h('div', { class: 'stat-label' }, label)];
  return h('div', { class: 'stat' }, href ? h('a', { href }, inner) : inner);
}

function overview(project, d) {
  const share = d.images ? Math.round((d.unlabelled / d.images) * 100) : 0;
  const open = d.label_errors ? d.label_errors.states.open : null;
  return h('div', { class: 'stat-row' },
    statTile(fmtNumber(d.images), 'images', imagesHref(project, {}), 'health-images'),
    statTile(fmtNumber(d.unlabelled), `not annotated (${share}%)`, imagesHref(project, { annotated: 'false' }),
      'health-unlabelled'),
    statTile(fmtNumber(d.boxes), 'boxes', null, 'health-boxes'),
    statTile(fmtNumber(d.reviews.submitted), 'waiting for review', imagesHref(project, { review: 'submitted' }),
      'health-submitted'),
    statTile(open === null ? '–' : fmtNumber(open), 'label-error candidates open',
      projectHref(project, 'health/label-errors'), 'health-label-errors'),
    statTile(fmtNumber(d.duplicates.exact_groups), 'exact duplicate groups', projectHref(project, 'health/duplicates'),
      'health-exact-duplicates'));
}

function classCard(project, d) {
  const rows = d.classes.map((c) => ({ name: c.name, value: c.objects, colour: c.colour || colorOf(c),
    href: imagesHref(project, { class: c.name }),
    title: `${c.name}: ${fmtNumber(c.objects)} objects in ${plural(c.images, 'image')}` }));
  const total = rows.reduce((n, r) => n + r.value, 0);
  const most = rows.length ? rows[0].value : 0;
  const least = rows.length ? rows[rows.length - 1].value : 0;
  const aside = rows.length > 1 && least > 0
    ? h('span', { class: 'muted' }, `most / least: ${num(most / least)}×`) : null;
  return card('Class balance', 'health-classes', aside,
    total ? hbars(rows, { label: 'Objects per class', testid: 'class-bars' })
      : emptyState('Nothing annotated yet', 'Objects per class appear here once images are annotated.'));
}

function unlabelledCard(project, d) {
  const done = d.images ? (d.annotated_images / d.images) * 100 : 0;
  return card('Annotated vs not', 'health-unlabelled-card',
    h('span', { class: 'muted' }, `${Math.round(done)}% annotated`),
    h('div', { class: 'split-bar', role: 'img', 'aria-label': `${d.annotated_images} annotated, ${d.unlabelled} not` },
      h('span', { style: { width: `${done}%`, background: 'var(--success)' } }),
      h('span', { style: { width: `${100 - done}%`, background: 'var(--border-strong)' } })),
    h('div', { class: 'legend' },
      h('a', { href: imagesHref(project, { annotated: 'true' }) },
        h('i', { class: 'swatch', style: { background: 'var(--success)' } }), `${fmtNumber(d.annotated_images)} annotated`),
      h('a', { href: imagesHref(project, { annotated: 'false' }), 'data-testid': 'unlabelled-link' },
        h('i', { class: 'swatch', style: { background: 'var(--border-strong)' } }), `${fmtNumber(d.unlabelled)} not annotated`)));
}

function binsCard(project, title, testid, bins, keys, unit, note) {
  const [lo, hi] = keys;
  const rows = bins.map((b) => ({
    label: binLabel(b, unit), value: b.count,
    href: imagesHref(project, { [lo]: b.min > 0 ? num(b.min) : null, [hi]: b.max === null ? null : num(b.max) }),
    title: `${fmtNumber(b.count)} boxes of ${binLabel(b, unit)}: open the images that have one`,
  }));
  const total = bins.reduce((n, b) => n + b.count, 0);
  return card(title, testid, h('span', { class: 'muted' }, note),
    total ? histogram(rows, { label: title, testid: `${testid}-bins` })
      : emptyState('No boxes', 'This histogram counts the boxes of detection and instance annotations.'));
}

function foldersCard(project, d) {
  const rows = d.folders.map((f) => ({ name: f.folder === '/' ? '(no folder)' : f.folder, value: f.images,
    href: imagesHref(project, { folder: f.folder }) }));
  const more = d.other_folders.folders
    ? h('p', { class: 'muted' }, `and ${plural(d.other_folders.folders, 'more folder')} with ${plural(d.other_folders.images, 'image')}`)
    : null;
  return card('Images per folder', 'health-folders', h('span', { class: 'muted' }, 'first folder of the file names'),
    rows.length ? hbars(rows, { label: 'Images per folder', testid: 'folder-bars' }) : emptyState('No images', ''), more);
}

function reviewCard(project, d) {
  const rows = REVIEW_LABELS.map(([k, label]) => ({ name: label, value: d.reviews[k] || 0, colour: REVIEW_COLOURS[k],
    href: imagesHref(project, { review: k }) }));
  const open = (d.reviews.submitted || 0) + (d.reviews.rejected || 0) + (d.reviews.in_progress || 0);
  return card('Review states', 'health-reviews', h('span', { class: 'muted' }, `${plural(open, 'image')} in review`),
    hbars(rows, { label: 'Images per review state', testid: 'review-bars' }));
}

function labelErrorsCard(project, d) {
  const page = projectHref(project, 'health/label-errors');
  const link = h('a', { class: 'button small', href: page, 'data-testid': 'label-errors-link' }, 'Review label errors');
  const le = d.label_errors;
  if (!le) {
    return card('Label-error candidates', 'health-label-errors-card', link,
      emptyState('Not searched yet', 'The finder ranks the labels a model disagrees with: run it with '
        + `visionloop label-errors ${project}, then review its candidates here.`));
  }
  const rows = [['open', 'Open', 'var(--warning)'], ['fixed', 'Fixed', 'var(--success)'],
    ['dismissed', 'Dismissed', 'var(--border-strong)']].map(([k, name, colour]) => ({ name, value: le.states[k] || 0, colour,
    href: page }));
  return card('Label-error candidates', 'health-label-errors-card', link,
    h('p', { class: 'muted' }, `${plural(le.total, 'candidate')} from the run of ${fmtDate(le.created_at)} (${le.method})`),
    hbars(rows, { label: 'Candidates per state', testid: 'label-error-bars' }),
    le.top.length ? h('ol', { class: 'health-top', 'data-testid': 'label-error-top' }, le.top.map((t) => h('li', {},
      h('a', { href: projectHref(project, `annotate/${t.image_id}`) }, t.image_name), ' ',
      h('span', { class: 'muted' }, `${KIND_LABELS[t.kind] || t.kind}${t.given ? `: ${t.given}` : ''}`
        + `${t.suggested ? ` → ${t.suggested}` : ''}`)))) : null);
}

function duplicatesCard(project, d, role, reload) {
  const dup = d.duplicates;
  const images = dup.embeddings.filter((e) => e.kind === 'images');
  const embedded = images.reduce((n, e) => Math.max(n, e.count), 0);
  const links = h('div', { class: 'row' },
    h('a', { class: 'button small', href: projectHref(project, 'health/duplicates'), 'data-testid': 'duplicates-link' },
      'Duplicates'),
    h('a', { class: 'button small', href: projectHref(project, 'health/outliers'), 'data-testid': 'outliers-link' },
      'Outliers'));
  const start = async (button) => {
    button.disabled = true;
    try {
      await api.post(projectPath(project, 'embeddings'), {});
      toast('Embedding the images: follow it on the Jobs page.', 'success');
      reload();
    } catch (e) {
      toastError(e, 'Could not start the embed job');
      button.disabled = false;
    }
  };
  let embeddings;
  if (!images.length) {
    const button = roleAllows(role, 'admin') ? h('button', { class: 'primary small', id: 'start-embed',
      onclick: () => start(button) }, 'Compute embeddings') : null;
    embeddings = h('div', { class: 'notice', 'data-testid': 'no-embeddings' },
      h('p', {}, 'Near-duplicates and outliers are found from image embeddings, and none are stored yet.'),
      button || h('p', { class: 'muted' }, 'An admin starts the embed job.'));
  } else {
    embeddings = h('p', { class: 'muted', 'data-testid': 'embeddings-count' },
      `${plural(embedded, 'image')} of ${fmtNumber(d.images)} embedded (${images.map((e) => e.backbone).join(', ')}): `
      + 'near-duplicate groups and outliers are on their pages.');
  }
  const bars = hbars([
    { name: 'Exact duplicate groups', value: dup.exact_groups, href: projectHref(project, 'health/duplicates') },
    { name: 'Images in them', value: dup.exact_images, href: projectHref(project, 'health/duplicates') },
    { name: 'Images embedded', value: embedded, colour: 'var(--success)' },
  ], { label: 'Duplicates', max: Math.max(1, d.images), testid: 'duplicate-bars' });
  return card('Duplicates and outliers', 'health-duplicates', links, bars, embeddings);
}

function keysHelp() {
  return h('p', { class: 'muted health-keys' }, 'Keys: ', KEYS.map(([k, , label]) => h('span', { class: 'nowrap' },
    h('kbd', {}, k.toUpperCase()), ` ${label}  `)));
}

export async function render(root, params) {
  dispose();
  const { project, role } = params;
  const body = h('div', {}, spinner());
  replaceChildren(root, h('div', { 'data-testid': 'health-page' },
    pageHeader('Dataset health', 'What the data holds, and what needs attention. Every bar opens the images behind it.',
      h('a', { class: 'button', href: projectHref(project, 'health/label-errors') }, 'Label errors'),
      h('a', { class: 'button', href: projectHref(project, 'health/duplicates') }, 'Duplicates'),
      h('a', { class: 'button', href: projectHref(project, 'health/outliers') }, 'Outliers')),
    body));
  unbind = keymap.bind(Object.fromEntries(KEYS.map(([k, rest]) => [k, () => {
    location.hash = projectHref(project, rest === 'images' ? 'images' : `health/${rest}`);
  }])));
  const load = async () => {
    let d;
    try {
      d = await api.get(projectPath(project, 'health'));
    } catch (e) {
      replaceChildren(body, errorState(e, 'The health figures'));
      return;
    }
    const sizes = binsCard(project, 'Box sizes', 'health-box-sizes', d.box_sizes, ['box_min', 'box_max'], '',
      'pixels: the side of a square of the same area');
    const aspects = binsCard(project, 'Box aspect ratios', 'health-box-aspects', d.box_aspects,
      ['aspect_min', 'aspect_max'], '', 'width / height');
    replaceChildren(body, overview(project, d),
      h('div', { class: 'health-grid' },
        classCard(project, d), unlabelledCard(project, d), d.boxes ? sizes : null,
        d.boxes ? aspects : null, reviewCard(project, d), foldersCard(project, d), labelErrorsCard(project, d),
        duplicatesCard(project, d, role, load)),
      keysHelp());
  };
  await load();
}
