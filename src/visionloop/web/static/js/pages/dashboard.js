// A project at a glance: image and annotation counts, objects per class (a bar chart), dataset versions,
// training runs with their main metrics, model packages, and the way to every other page.
import { ApiError, api, apiUrl, projectPath, roleAllows } from '../api.js';
import {
  colorOf, emptyState, errorState, fmtDate, fmtNumber, h, modal, pageHeader, plural, projectHref, replaceChildren,
  spinner, taskLabel, toast,
} from '../ui.js';
import { headline, fmt } from '../metrics_view.js';
import { classEditor } from '../class_editor.js';
import { metricLabel } from '../charts.js';

const BAR_HEIGHT = 22;
const BAR_GAP = 8;

/** Horizontal bars, one per class, longest first: an SVG drawn at the width of its box (redrawn when the box
 * changes size), so its text keeps the page's size. */
export function barChart(rows, { label = 'Objects per class' } = {}) {
  const box = h('div', { class: 'bar-chart-box' });
  let drawn = 0;
  const draw = (width) => {
    if (width <= 0 || Math.abs(width - drawn) < 1) return;
    drawn = width;
    box.replaceChildren(barSvg(rows, width, label));
  };
  draw(640);
  new ResizeObserver((entries) => draw(Math.floor(entries[0].contentRect.width))).observe(box);
  return box;
}

function barSvg(rows, width, label) {
  const max = Math.max(1, ...rows.map((r) => r.value));
  const labelWidth = Math.min(200, Math.max(60, ...rows.map((r) => r.name.length * 7.5 + 12)));
  const valueWidth = 64;
  const barSpace = Math.max(40, width - labelWidth - valueWidth);
  const height = rows.length * (BAR_HEIGHT + BAR_GAP);
  const svg = h('svg:svg', { class: 'bar-chart', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img',
    'aria-label': label });
  rows.forEach((r, i) => {
    const y = i * (BAR_HEIGHT + BAR_GAP);
    const w = r.value > 0 ? Math.max(2, (r.value / max) * barSpace) : 0;
    svg.append(h('svg:g', { class: 'bar', 'data-class': r.name },
      h('svg:title', {}, `${r.name}: ${fmtNumber(r.value)}`),
      h('svg:text', { x: labelWidth - 10, y: y + BAR_HEIGHT / 2, 'text-anchor': 'end', 'dominant-baseline': 'central' },
        r.name.length > 26 ? `${r.name.slice(0, 25)}…` : r.name),
      h('svg:rect', { x: labelWidth, y, width: barSpace, height: BAR_HEIGHT, rx: 4, fill: '#f1f3f6' }),
      h('svg:rect', { x: labelWidth, y, width: w, height: BAR_HEIGHT, rx: 4, fill: r.colour }),
      h('svg:text', { class: 'value', x: labelWidth + w + 8, y: y + BAR_HEIGHT / 2, 'dominant-baseline': 'central' },
        fmtNumber(r.value))));
  });
  return svg;
}

function section(title, action, ...body) {
  return h('section', { class: 'card section' }, h('div', { class: 'section-head' }, h('h2', {}, title), action), body);
}

function statTile(value, label, href, testid) {
  const inner = [h('div', { class: 'stat-value', 'data-testid': testid }, value), h('div', { class: 'stat-label' }, label)];
  return h('div', { class: 'stat' }, href ? h('a', { href }, inner) : inner);
}

function overview(project, stats, waiting) {
  const annotated = stats.annotated_images;
  const rest = stats.images - annotated;
  const share = stats.images ? Math.round((annotated / stats.images) * 100) : 0;
  const images = projectHref(project, 'images');
  return h('div', {},
    h('div', { class: 'stat-row' },
      statTile(fmtNumber(stats.images), 'images', images, 'stat-images'),
      statTile(fmtNumber(annotated), `annotated (${share}%)`, `${images}?annotated=true`, 'stat-annotated'),
      statTile(fmtNumber(rest), 'not annotated yet', `${images}?annotated=false`, 'stat-unannotated'),
      statTile(fmtNumber(stats.annotations), 'objects and labels', null, 'stat-annotations'),
      waiting !== null ? statTile(fmtNumber(waiting), 'waiting for review', `${images}?review=submitted`, 'stat-review')
        : null),
    stats.images ? h('div', { class: 'card section' },
      h('div', { class: 'section-head' }, h('h2', {}, 'Annotated vs not'),
        h('span', { class: 'muted' }, `${share}% done`)),
      h('div', { class: 'split-bar', role: 'img', 'aria-label': `${annotated} annotated, ${rest} not` },
        h('span', { style: { width: `${share}%`, background: 'var(--success)' } }),
        h('span', { style: { width: `${100 - share}%`, background: 'var(--border-strong)' } })),
      h('div', { class: 'legend' },
        h('span', {}, h('i', { class: 'swatch', style: { background: 'var(--success)' } }), `${fmtNumber(annotated)} annotated`),
        h('span', {}, h('i', { class: 'swatch', style: { background: 'var(--border-strong)' } }), `${fmtNumber(rest)} not annotated`))) : null);
}

const FIELDS = ['name', 'colour', 'orientation_sensitive', 'colour_sensitive'];

/** The edits of `edited` against `before` as PATCH bodies, POST bodies and retirements. */
export function classChanges(before, edited) {
  const byId = new Map(before.map((c) => [c.id, c]));
  const patches = [];
  const created = [];
  for (const c of edited.classes) {
    if (c.id === undefined) {
      created.push(c);
      continue;
    }
    const old = byId.get(c.id);
    const body = {};
    for (const f of FIELDS) if (c[f] !== old[f] && !(f === 'colour' && c[f].toLowerCase() === (old[f] || '').toLowerCase())) body[f] = c[f];
    if ((c.key || '') !== (old.key || '')) body.key = c.key || ''; // '' goes back to the default key
    if (Object.keys(body).length) patches.push([c.id, body]);
  }
  return { patches, created, retired: edited.removed };
}

function editClassesDialog(project, classes, onSaved) {
  const active = classes.filter((c) => c.active !== false);
  const editor = classEditor(active);
  const error = h('div', { class: 'error-box', role: 'alert', hidden: true });
  const save = h('button', { class: 'primary', type: 'submit', form: 'classes-form' }, 'Save classes');
  const form = h('form', { id: 'classes-form', onsubmit: submit }, error, editor.el);
  const dlg = modal('Classes', form, { wide: true, actions: [h('button', { type: 'button', onclick: () => dlg.close() }, 'Cancel'), save] });
  async function submit(event) {
    event.preventDefault();
    error.hidden = true;
    const read = editor.read();
    if (read.error) {
      error.textContent = read.error;
      error.hidden = false;
      return;
    }
    const { patches, created, retired } = classChanges(active, read);
    const p = (rest) => projectPath(project, rest);
    const problems = [];
    save.disabled = true;
    // retire first (a retired class frees its name and key), then rename and edit, then add
    for (const id of retired) {
      const name = active.find((c) => c.id === id).name;
      await api.patch(p(`classes/${id}`), { active: false }).catch((e) => problems.push(`${name}: ${e.detail}`));
    }
    for (const [id, body] of patches) {
      const name = active.find((c) => c.id === id).name;
      await api.patch(p(`classes/${id}`), body).catch((e) => problems.push(`${name}: ${e.detail}`));
    }
    for (const body of created) {
      await api.post(p('classes'), body).catch((e) => problems.push(`${body.name}: ${e.detail}`));
    }
    save.disabled = false;
    if (problems.length) {
      error.replaceChildren(h('strong', {}, 'Some changes were not saved:'), h('ul', {}, problems.map((t) => h('li', {}, t))));
      error.hidden = false;
      onSaved(false);
      return;
    }
    dlg.close();
    toast('Classes saved.', 'success');
    onSaved(true);
  }
}

function classChart(project, stats, classes, role, reload) {
  const byName = new Map(classes.map((c) => [c.name, c]));
  const rows = Object.entries(stats.classes || {})
    .map(([name, value]) => ({ name, value, colour: colorOf(byName.get(name) || { id: 0 }) }))
    .sort((a, b) => b.value - a.value || a.name.localeCompare(b.name));
  const total = rows.reduce((n, r) => n + r.value, 0);
  let body;
  if (!rows.length) {
    body = emptyState('No classes yet', roleAllows(role, 'admin')
      ? 'Import a dataset with its labels, or create the classes when you make a project.'
      : 'An admin adds the classes; then images can be annotated.');
  } else if (!total) {
    body = emptyState('Nothing annotated yet', 'Open the images and start annotating: the counts per class appear here.',
      h('a', { class: 'button primary', href: projectHref(project, 'images?annotated=false') }, 'Annotate images'));
  } else {
    body = h('div', { 'data-testid': 'class-chart' }, barChart(rows));
  }
  const edit = roleAllows(role, 'admin') ? h('button', { class: 'small', id: 'edit-classes',
    onclick: () => editClassesDialog(project, classes, reload) }, 'Edit classes') : null;
  return section('Objects per class', h('div', { class: 'row' },
    h('span', { class: 'muted' }, rows.length ? plural(rows.length, 'class', 'classes') : ''), edit), body);
}

function classList(project, classes, role, reload) {
  const active = classes.filter((c) => c.active !== false);
  const edit = roleAllows(role, 'admin') ? h('button', { class: 'small', id: 'edit-classes',
    onclick: () => editClassesDialog(project, classes, reload) }, active.length ? 'Edit classes' : 'Add classes') : null;
  return section('Classes', h('div', { class: 'row' },
    h('span', { class: 'muted' }, active.length ? plural(active.length, 'class', 'classes') : ''), edit),
    active.length ? h('div', { class: 'chips', id: 'class-list' }, active.map((c) => h('span', { class: 'chip' },
      h('i', { class: 'swatch', style: { background: colorOf(c) } }), c.name,
      c.key ? h('span', { class: 'key-cap', title: 'Its key while annotating' }, c.key) : null)))
      : h('p', { class: 'muted' }, 'None yet: importing annotated images brings their classes.'));
}

function createVersionDialog(project, onCreated) {
  const name = h('input', { type: 'text', id: 'version-name', placeholder: 'automatic (v1, v2, …)' });
  const seed = h('input', { type: 'number', id: 'version-seed', value: '0', min: '0' });
  const approved = h('input', { type: 'checkbox', id: 'version-approved' });
  const error = h('div', { class: 'error-box', hidden: true, role: 'alert' });
  const go = h('button', { class: 'primary', type: 'submit', form: 'version-form' }, 'Create version');
  const form = h('form', { id: 'version-form', onsubmit: submit },
    h('p', { class: 'muted' }, 'A version freezes the annotated images and their labels as they are now, split into train, validation and test, so a model can be trained and compared on it.'),
    error,
    h('div', { class: 'field' }, h('label', { for: 'version-name' }, 'Name'), name),
    h('div', { class: 'field' }, h('label', { for: 'version-seed' }, 'Split seed'), seed,
      h('span', { class: 'hint' }, 'The same seed gives the same split of the same images.')),
    h('label', { class: 'check' }, approved, 'Only images whose annotation a reviewer approved'));
  const dlg = modal('New dataset version', form, { actions: [h('button', { type: 'button', onclick: () => dlg.close() }, 'Cancel'), go] });
  async function submit(event) {
    event.preventDefault();
    go.disabled = true;
    error.hidden = true;
    const body = { seed: Number(seed.value || 0), approved_only: approved.checked };
    if (name.value.trim()) body.name = name.value.trim();
    try {
      const made = await api.post(projectPath(project, 'versions'), body);
      dlg.close();
      toast(`Version ${made.name} created: ${splitsText(made.summary) || 'no images'}.`, 'success');
      for (const warning of made.warnings || []) toast(`Version ${made.name}: ${warning}`, 'info', { timeout: 12000 });
      onCreated(made);
    } catch (e) {
      error.textContent = e.detail || String(e);
      error.hidden = false;
    } finally {
      go.disabled = false;
    }
  }
}

function splitsText(summary) {
  const splits = (summary && summary.splits) || {};
  const order = ['train', 'val', 'test'];
  const keys = [...order.filter((k) => k in splits), ...Object.keys(splits).filter((k) => !order.includes(k))];
  return keys.map((k) => `${k} ${fmtNumber(splits[k])}`).join(' · ');
}

function versionsSection(project, versions, role, reload) {
  const admin = roleAllows(role, 'admin');
  const button = admin ? h('button', { class: 'small', id: 'create-version', onclick: () => createVersionDialog(project, reload) },
    'Create version') : null;
  if (!versions.length) {
    return section('Dataset versions', button, emptyState('No version yet',
      admin ? 'When enough images are annotated, create a version: it is what a model trains on.'
        : 'An admin creates versions when enough images are annotated.'));
  }
  return section('Dataset versions', button, h('div', { class: 'table-wrap' }, h('table', { class: 'table', id: 'versions' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Version'), h('th', { class: 'num' }, 'Images'), h('th', {}, 'Splits'))),
    h('tbody', {}, [...versions].reverse().map((v) => h('tr', {},
      h('td', { title: `Created ${fmtDate(v.created_at)}` }, h('strong', {}, v.name)),
      h('td', { class: 'num' }, fmtNumber((v.summary || {}).images)),
      h('td', { class: 'muted nowrap' }, splitsText(v.summary))))))));
}

function runMetrics(run) {
  const metrics = run.metrics || {};
  const items = headline(metrics, 2);
  const main = run.main_metric && typeof metrics[run.main_metric] === 'number' ? [[run.main_metric, metrics[run.main_metric]]] : [];
  const shown = [...main, ...items.filter(([k]) => k !== run.main_metric)].slice(0, 2);
  return shown.length ? shown.map(([k, v]) => `${metricLabel(k)} ${fmt(v)}`).join(' · ') : '–';
}

function runsSection(project, runs, role) {
  const admin = roleAllows(role, 'admin');
  const train = admin ? h('a', { class: 'button small', href: projectHref(project, 'train') }, 'Train a model') : null;
  if (runs === null) return section('Training runs', null, h('p', { class: 'muted' }, 'Training runs cannot be listed on this server.'));
  if (!runs.length) {
    return section('Training runs', train, emptyState('No training run yet',
      admin ? 'Create a dataset version, then train a model on it from the Train page.' : 'An admin starts training runs.'));
  }
  return section('Training runs', train, h('div', { class: 'table-wrap' }, h('table', { class: 'table', id: 'runs' },
    // no model column: the run id names the model, and the metrics must fit a half-width card
    h('thead', {}, h('tr', {}, h('th', {}, 'Run'), h('th', {}, 'Version'), h('th', {}, 'State'),
      h('th', {}, 'Main metrics'), h('th', {}, ''))),
    h('tbody', {}, runs.slice(0, 8).map((r) => {
      const id = r.id || r.run || r.name;
      return h('tr', {},
        h('td', {}, h('a', { href: projectHref(project, `runs/${encodeURIComponent(id)}`) }, id)),
        h('td', {}, r.version || '–'),
        h('td', {}, r.state ? h('span', { class: `badge state-${r.state}` }, r.state) : '–'),
        h('td', { class: 'muted' }, runMetrics(r)),
        h('td', {}, r.state === 'running' ? null : h('a', { href: apiUrl(projectPath(project,
          `runs/${encodeURIComponent(id)}/report`)), target: '_blank', rel: 'noopener',
        title: 'The HTML report of the run (made now if it is missing)' }, 'Report')));
    })))), runs.length > 8 && admin ? h('p', {}, h('a', { href: projectHref(project, 'train') }, `All ${runs.length} runs`)) : null);
}

function packagesSection(project, packages) {
  const link = h('a', { class: 'button small', href: projectHref(project, 'models') }, 'Models');
  if (packages === null) return section('Model packages', null, h('p', { class: 'muted' }, 'Packages cannot be listed on this server.'));
  if (!packages.length) {
    return section('Model packages', link, emptyState('No package yet',
      'A package is a trained model ready to deploy: make one from a training run\u2019s page.'));
  }
  return section('Model packages', link, h('div', { class: 'table-wrap' }, h('table', { class: 'table', id: 'packages' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Package'), h('th', {}, 'Run'), h('th', {}, 'Precision'), h('th', {}, 'Made'))),
    h('tbody', {}, packages.slice(0, 8).map((p) => h('tr', {},
      h('td', {}, p.name, p.deployed ? [' ', h('span', { class: 'badge ok' }, 'deployed')] : null),
      h('td', {}, p.run ? h('a', { href: projectHref(project, `runs/${encodeURIComponent(p.run)}`) }, p.run) : '–'),
      h('td', {}, p.precision || '–'),
      h('td', { class: 'muted nowrap' }, fmtDate(p.created_at))))))));
}

/** A list the server may not offer yet (404): null then, so the page says so instead of failing. */
async function optionalList(path) {
  try {
    const answer = await api.get(path);
    return Array.isArray(answer) ? answer : (answer && answer.items) || [];
  } catch (e) {
    if (e instanceof ApiError && (e.status === 404 || e.status === 405)) return null;
    throw e;
  }
}

export async function render(root, params) {
  const { project, role } = params;
  const p = (rest) => projectPath(project, rest);
  const admin = roleAllows(role, 'admin');
  const info = params.session.projects.find((x) => x.name === project);
  const browse = h('a', { class: 'button primary', href: projectHref(project, 'images') }, 'Browse images');
  const next = h('span', { class: 'page-actions' });
  const actions = [
    next,
    browse,
    admin ? h('a', { class: 'button', href: projectHref(project, 'import') }, 'Import') : null,
    admin ? h('a', { class: 'button', href: projectHref(project, 'train') }, 'Train') : null,
    h('a', { class: 'button', href: projectHref(project, 'jobs') }, 'Jobs'),
  ].filter(Boolean);
  const body = h('div', {}, spinner());
  replaceChildren(root, h('div', { 'data-testid': 'dashboard-page' },
    pageHeader(project, `${taskLabel(info.task)} project · you are ${role}`, ...actions), body));

  async function load() {
    const [stats, classes, versions, runs, packages, waiting] = await Promise.all([
      api.get(p('stats')), api.get(p('classes')), api.get(p('versions')), optionalList(p('runs')),
      optionalList(p('packages')),
      api.get(p('images/count'), { params: { review: 'submitted' } }).then((c) => c.total).catch(() => null),
    ]);
    if (stats.images === 0) {
      // a new project: what to do first, and the classes it was made with
      browse.classList.remove('primary');
      replaceChildren(body,
        h('div', { class: 'section' }, emptyState('No images yet', admin
          ? 'Import images (and their annotations, in any common format) from your computer to start.'
          : 'An admin imports the images; come back then.',
        admin ? h('a', { class: 'button primary', href: projectHref(project, 'import') }, 'Import images') : null)),
        classList(project, classes, role, load));
      return;
    }
    // the next thing to do, for whoever may do it: annotate what is not yet, review what waits
    const rest = stats.images - stats.annotated_images;
    const todo = [
      roleAllows(role, 'annotator') && rest > 0
        ? h('a', { class: 'button', href: projectHref(project, 'images?annotated=false') }, 'Annotate images') : null,
      roleAllows(role, 'reviewer') && waiting > 0
        ? h('a', { class: 'button', href: projectHref(project, 'images?review=submitted') }, `Review ${plural(waiting, 'image')}`) : null,
    ].filter(Boolean);
    replaceChildren(next, todo);
    if (todo.length) {
      todo[0].classList.add('primary');
      browse.classList.remove('primary');
    }
    replaceChildren(body,
      overview(project, stats, waiting),
      h('div', { class: 'grid-2' },
        h('div', {}, classChart(project, stats, classes, role, load), runsSection(project, runs, role)),
        h('div', {}, versionsSection(project, versions, role, load), packagesSection(project, packages))));
  }
  try {
    await load();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return;
    replaceChildren(body, errorState(e, 'The project\u2019s summary'));
  }
}
