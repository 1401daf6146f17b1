// #/p/:project/import — bring images and annotations in (files, a folder or a zip: the importer of the CLI, with
// progress and its per-file report), and take them out (export in a format other tools read, as a zip download).
import {api, projectPath, roleAllows, session} from '../api.js';
import {emptyState, fmtNumber, h, pageHeader, plural, progressBar, projectHref, toast, toastError} from '../ui.js';
import {FINAL_STATES, jobProgress, watchJob} from '../job_watch.js';

let cleanups = [];

export function dispose() {
  cleanups.forEach((f) => f());
  cleanups = [];
}

// The formats `visionloop export --format` writes (formats/__init__.py FORMATS), with the tasks each can hold.
export async function render(root, {project}) {
  dispose();
  const p = (rest) => projectPath(project, rest);
  const [role, versions, info, formats] = await Promise.all([session.role(project),
    api.get(p('versions')).catch(() => []), api.get(p('')).catch(() => null), api.get('formats').catch(() => [])]);
  const admin = roleAllows(role, 'admin');
  const task = info?.task || '';
  root.replaceChildren(h('div', {class: 'import-page'},
    pageHeader('Import and export', 'Bring images and annotations in from any folder, zip or tool; take them out in '
      + 'the format another tool reads.'),
    admin ? importCard(project) : h('section', {class: 'card'}, h('h2', {}, 'Import'),
      h('p', {class: 'muted'}, 'Only an admin of this project can import images.')),
    admin ? exportCard(project, task, versions, formats) : null));
}

// ---- import -----------------------------------------------------------------------------------------------------

/** The files under a dropped folder entry, each with its path relative to the dropped item's parent. */
async function entryFiles(entry, prefix = '') {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    return [{file, path: `${prefix}${file.name}`}];
  }
  const reader = entry.createReader();
  const out = [];
  for (;;) {
    const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
    if (!batch.length) break;
    for (const child of batch) out.push(...await entryFiles(child, `${prefix}${entry.name}/`));
  }
  return out;
}

/** Every file of a drop (folders walked), with relative paths. */
async function droppedFiles(dataTransfer) {
  const entries = [...(dataTransfer.items || [])].map((i) => i.webkitGetAsEntry && i.webkitGetAsEntry()).filter(Boolean);
  if (!entries.length) return [...dataTransfer.files].map((file) => ({file, path: file.name}));
  const lists = await Promise.all(entries.map((e) => entryFiles(e)));
  return lists.flat();
}

const chosen = (fileList) => [...fileList].map((file) => ({file, path: file.webkitRelativePath || file.name}));

/** Paths relative to the one folder chosen or dropped ('cells/a/x.jpg' -> 'a/x.jpg'), as the CLI reads that folder;
 * left as they are when the files come from several places. */
export function insideFolder(list) {
  const top = new Set(list.map(({path}) => (path.includes('/') ? path.split('/')[0] : '')));
  if (top.size !== 1 || top.has('')) return list;
  const cut = [...top][0].length + 1;
  return list.map(({file, path}) => ({file, path: path.slice(cut)}));
}

function importCard(project) {
  const files = h('input', {type: 'file', multiple: true, id: 'import-files', class: 'sr-only'});
  const folder = h('input', {type: 'file', id: 'import-folder', class: 'sr-only', webkitdirectory: true});
  const zone = h('div', {class: 'drop-zone big', id: 'import-drop', tabindex: 0},
    h('strong', {}, 'Drop images, a folder or a zip here'),
    h('p', {class: 'muted'}, 'Annotations come along in any format the importer knows (COCO, VOC, YOLO, CVAT, Label '
      + 'Studio, LabelMe, VIA, CSV, mask PNGs, a folder per class); the format is detected.'),
    h('div', {class: 'row'},
      h('label', {class: 'button', for: 'import-files'}, 'Choose files or a zip'),
      h('label', {class: 'button', for: 'import-folder'}, 'Choose a folder')));
  const status = h('div', {class: 'import-status', id: 'import-status'});
  const report = h('div', {class: 'import-report', id: 'import-report'});
  let busy = false;

  async function start(list) {
    if (busy || !list.length) return;
    busy = true;
    zone.classList.add('busy');
    const bytes = list.reduce((n, f) => n + f.file.size, 0);
    const form = new FormData();
    for (const {file, path} of insideFolder(list)) form.append('files', file, path);
    const text = h('span', {class: 'job-text'}, `Uploading ${plural(list.length, 'file')} (${mb(bytes)})…`);
    const bar = h('div', {class: 'job-progress'}, progressBar(0, 'upload'), text);
    status.replaceChildren(h('h3', {}, 'Upload'), bar);
    report.replaceChildren();
    try {
      const job = await api.upload(projectPath(project, 'imports'), form, (fraction) => {
        bar.firstChild.replaceWith(progressBar(fraction, 'upload'));
        if (fraction !== null) text.textContent = `Uploading ${plural(list.length, 'file')}: ${Math.round(fraction * 100)} %`;
      });
      text.textContent = `Uploaded ${plural(list.length, 'file')} (${mb(bytes)}).`;
      const progress = jobProgress();
      status.append(h('h3', {}, 'Import'), progress.el);
      const watch = watchJob(project, job.id, (j) => progress.set(j), {interval: 1000});
      cleanups.push(() => watch.stop());
      const last = await watch.done;
      if (last && FINAL_STATES.has(last.state)) showReport(report, project, last);
    } catch (e) {
      toastError(e, 'Import');
      text.textContent = `The upload failed: ${e.detail || e.message || e}`;
    } finally {
      busy = false;
      zone.classList.remove('busy');
      files.value = '';
      folder.value = '';
    }
  }
  files.addEventListener('change', () => start(chosen(files.files)));
  folder.addEventListener('change', () => start(chosen(folder.files)));
  zone.addEventListener('dragover', (e) => { e.preventDefault(); zone.classList.add('over'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', async (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    start(await droppedFiles(e.dataTransfer));
  });
  return h('section', {class: 'card'}, h('h2', {}, 'Import'), files, folder, zone, status, report);
}

const mb = (bytes) => (bytes < 1e6 ? `${Math.max(1, Math.round(bytes / 1e3))} kB` : `${(bytes / 1e6).toFixed(1)} MB`);

function showReport(el, project, job) {
  const r = job.result || {};
  if (job.state !== 'done') {
    el.replaceChildren(h('p', {class: 'error'}, `The import ${job.state}${job.error ? `: ${job.error}` : '.'}`));
    if (!r.problems) return;
  }
  const problems = r.problems || [];
  const conflicts = r.conflicts || [];
  const facts = [
    ['images added', r.images_added], ['already in the project', r.images_existing],
    ['annotations saved', r.annotations_saved], ['unchanged', r.annotations_unchanged],
    ['problems', problems.length],
  ];
  if (job.state === 'done') {
    toast(`Import done: ${plural(r.images_added ?? 0, 'image')} added`, problems.length ? 'info' : 'success');
  }
  el.append(h('div', {},
    h('h3', {}, `Report${r.format ? ` (read as ${r.format})` : ''}`),
    h('div', {class: 'stat-row'}, ...facts.map(([k, v]) => h('div', {class: `stat${k === 'problems' && v ? ' warn' : ''}`},
      h('div', {class: 'stat-value'}, fmtNumber(v ?? 0)), h('div', {class: 'stat-label'}, k)))),
    r.classes_added?.length ? h('p', {}, `New classes: ${r.classes_added.join(', ')}`) : null,
    r.instances && Object.keys(r.instances).length ? h('p', {class: 'muted'}, 'Objects per class: '
      + Object.entries(r.instances).map(([k, v]) => `${k} ${fmtNumber(v)}`).join(' · ')) : null,
    problems.length ? problemTable(problems) : h('p', {class: 'ok'}, 'Every file was read without a problem.'),
    conflicts.length ? h('p', {class: 'muted'}, `${plural(conflicts.length, 'image')} appeared twice with different `
      + 'annotations; the first was kept.') : null,
    job.state === 'done' ? h('p', {}, h('a', {class: 'button primary', href: projectHref(project, 'images')},
      'See the images →')) : null));
}

function problemTable(problems) {
  const shown = problems.slice(0, 500);
  return h('div', {}, h('h4', {}, `Problems (${fmtNumber(problems.length)})`),
    h('table', {class: 'table problems', id: 'import-problems'},
      h('thead', {}, h('tr', {}, h('th', {}, 'file'), h('th', {}, 'what happened'), h('th', {}, 'why'))),
      h('tbody', {}, ...shown.map((pr) => h('tr', {}, h('td', {class: 'path'}, pr.path), h('td', {}, pr.action),
        h('td', {}, pr.reason))))),
    problems.length > shown.length ? h('p', {class: 'muted'}, `… and ${problems.length - shown.length} more.`) : null);
}

// ---- export -----------------------------------------------------------------------------------------------------

function exportCard(project, task, versions, allFormats) {
  // the formats the server knows (GET /formats), those that hold this project's task
  const formats = allFormats.filter((f) => !task || f.tasks.includes(task));
  const format = h('select', {id: 'export-format'}, ...formats.map((f) => h('option', {value: f.name},
    `${f.title} (${f.name})`)));
  const version = h('select', {id: 'export-version'}, h('option', {value: ''}, 'the current annotations'),
    ...[...versions].reverse().map((v) => h('option', {value: v.name}, `version ${v.name}`)));
  const start = h('button', {class: 'primary', type: 'button', id: 'export-start'}, 'Export');
  const out = h('div', {class: 'export-status', id: 'export-status'});
  start.addEventListener('click', async () => {
    start.disabled = true;
    try {
      const body = {format: format.value};
      if (version.value) body.version = version.value;
      const job = await api.post(projectPath(project, 'exports'), body);
      const progress = jobProgress();
      out.replaceChildren(progress.el);
      const watch = watchJob(project, job.id, (j) => progress.set(j), {interval: 1000});
      cleanups.push(() => watch.stop());
      const last = await watch.done;
      if (last?.state === 'done') {
        const r = last.result || {};
        const href = api.url(projectPath(project, `exports/${last.id}/download`));
        const label = format.selectedOptions[0]?.textContent || format.value;
        out.append(h('p', {class: 'row'}, `${plural(r.images ?? 0, 'image')} (${fmtNumber(r.annotated ?? 0)} annotated) `
          + `exported as ${label}${r.version ? ` from version ${r.version}` : ''}.`,
          h('a', {class: 'button primary', href, download: `${project}-${format.value}.zip`, id: 'export-download'},
            'Download the zip')));
      }
    } catch (e) {
      toastError(e, 'Export');
    } finally {
      start.disabled = false;
    }
  });
  if (!formats.length) return emptyState('No export format', `No format writes ${task} annotations.`);
  return h('section', {class: 'card'}, h('h2', {}, 'Export'),
    h('div', {class: 'form-rows'}, h('label', {for: 'export-format'}, 'Format'), format,
      h('label', {for: 'export-version'}, 'Annotations'), version, h('span'), h('div', {class: 'actions'}, start)),
    out);
}
