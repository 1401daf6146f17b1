// The project's background jobs (imports, exports, training, packages): live progress, cancel, details and log.
import { ApiError, api, apiUrl, projectPath, roleAllows } from '../api.js';
import {
  confirmDialog, emptyState, errorState, fmtDate, fmtDuration, h, modal, pageHeader, progressBar, projectHref,
  replaceChildren, spinner, toast, toastError, JOB_KINDS,
} from '../ui.js';

const ACTIVE = new Set(['queued', 'running']);
const FAST_MS = 1500;
const SLOW_MS = 8000;

let timer = null;
let alive = false;

export function dispose() {
  alive = false;
  clearTimeout(timer);
}

const kindLabel = (kind) => JOB_KINDS[kind] || kind;

function seconds(a, b) {
  if (!a) return null;
  const end = b ? new Date(b) : new Date();
  return (end - new Date(a)) / 1000;
}

/** Where a finished job's outcome is: the run's page, the export's zip, the import's report. */
function outcome(project, job) {
  const result = job.result || {};
  const run = result.run || (job.progress || {}).run;
  if (job.kind === 'train' && run) {
    return h('a', { href: projectHref(project, `runs/${encodeURIComponent(run)}`) }, `Run ${run}`);
  }
  if (job.kind === 'export' && job.state === 'done') {
    return h('a', { href: apiUrl(projectPath(project, `exports/${job.id}/download`)), download: '' }, 'Download zip');
  }
  if (job.kind === 'import' && job.state === 'done') {
    const added = result.images_added ?? result.added;
    const problems = Array.isArray(result.problems) ? result.problems.length : result.problems;
    return h('span', {}, added !== undefined ? `${added} images added` : 'done',
      problems ? h('span', { class: 'error' }, ` · ${problems} problems`) : null);
  }
  if (job.kind === 'package' && result.name) return h('a', { href: projectHref(project, 'models') }, result.name);
  if (job.kind === 'preannotate' && result.stored !== undefined) {
    return h('span', {}, `${result.stored} images pre-annotated by ${result.model}`);
  }
  if (job.kind === 'label_errors' && result.total !== undefined) {
    return h('a', { href: projectHref(project, 'health/label-errors') }, `${result.total} label-error candidates`);
  }
  const params = job.params || {};
  if (job.kind === 'evaluate' && params.run) {
    return h('a', { href: projectHref(project, `runs/${encodeURIComponent(params.run)}`) }, `Run ${params.run}`);
  }
  return null;
}

function stateBadge(state) {
  return h('span', { class: `badge state-${state}` }, state);
}

function progressCell(job) {
  const p = job.progress || {};
  if (job.state === 'running') {
    const pct = typeof p.fraction === 'number' ? `${Math.round(p.fraction * 100)}%` : '';
    return h('div', { class: 'stack', style: { gap: '4px' } },
      h('div', { class: 'row', style: { gap: '8px' } }, progressBar(p.fraction ?? null, `${kindLabel(job.kind)} progress`),
        h('span', { class: 'num muted' }, pct)),
      p.message ? h('span', { class: 'job-message', title: p.message }, p.message) : null);
  }
  if (job.state === 'queued') return h('span', { class: 'muted' }, 'waits for the job before it');
  if (job.state === 'failed' || job.state === 'interrupted') {
    const text = job.error || (job.state === 'interrupted' ? 'the server stopped while it ran' : 'failed');
    return h('span', { class: 'job-error', title: text }, text.length > 160 ? `${text.slice(0, 160)}…` : text);
  }
  if (job.state === 'cancelled') return h('span', { class: 'muted' }, job.error || 'cancelled');
  return null;
}

async function showDetails(project, id) {
  const body = h('div', {}, spinner());
  modal(`Job ${id}`, body, { wide: true });
  try {
    const job = await api.get(projectPath(project, `jobs/${id}`));
    const rows = [['Kind', kindLabel(job.kind)], ['State', job.state], ['Started by', job.created_by],
      ['Queued', fmtDate(job.created_at)], ['Started', fmtDate(job.started_at)], ['Finished', fmtDate(job.finished_at)],
      ['Took', fmtDuration(seconds(job.started_at, job.finished_at))]];
    replaceChildren(body,
      h('table', { class: 'table kv' }, h('tbody', {}, rows.map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, v || '–'))))),
      job.error ? h('div', { class: 'error-box', style: { marginTop: '12px' } }, job.error) : null,
      Object.keys(job.params || {}).length ? [h('h3', { style: { marginTop: '16px' } }, 'Parameters'),
        h('pre', { class: 'log' }, JSON.stringify(job.params, null, 2))] : null,
      job.result ? [h('h3', { style: { marginTop: '16px' } }, 'Result'),
        h('pre', { class: 'log' }, JSON.stringify(job.result, null, 2))] : null,
      job.log ? [h('h3', { style: { marginTop: '16px' } }, 'Log (the end)'), h('pre', { class: 'log' }, job.log)] : null);
  } catch (e) {
    replaceChildren(body, errorState(e, 'The job'));
  }
}

export async function render(root, params) {
  dispose();
  alive = true;
  const { project, role } = params;
  const admin = roleAllows(role, 'admin');
  const list = h('div', { id: 'job-list' }, spinner());
  replaceChildren(root, h('div', { 'data-testid': 'jobs-page' },
    pageHeader('Jobs', 'Imports, exports, training runs and packages run here one at a time, in the background, so the pages stay fast.',
      admin ? h('a', { class: 'button', href: projectHref(project, 'import') }, 'Import') : null,
      admin ? h('a', { class: 'button', href: projectHref(project, 'train') }, 'Train') : null),
    list));

  async function cancel(job) {
    const ok = await confirmDialog(job.state === 'running'
      ? `Stop the running ${kindLabel(job.kind).toLowerCase()} job ${job.id}? What it has done so far may be lost.`
      : `Cancel the queued ${kindLabel(job.kind).toLowerCase()} job ${job.id}?`,
    { confirm: job.state === 'running' ? 'Stop job' : 'Cancel job', cancel: 'Keep it', danger: true, title: 'Cancel job' });
    if (!ok) return;
    try {
      await api.post(projectPath(project, `jobs/${job.id}/cancel`));
      toast(`Job ${job.id} cancelled.`, 'success');
    } catch (e) {
      toastError(e, 'Not cancelled');
    }
    refresh();
  }

  async function resume(job) {
    try {
      const made = await api.post(projectPath(project, `jobs/${job.id}/resume`));
      toast(`Training resumes as job ${made.id}.`, 'success');
    } catch (e) {
      toastError(e, 'Not resumed');
    }
    refresh();
  }

  function table(jobs) {
    return h('div', { class: 'table-wrap' }, h('table', { class: 'table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Job'), h('th', {}, 'State'), h('th', {}, 'Progress'),
        h('th', {}, 'Outcome'), h('th', {}, 'By'), h('th', {}, 'Queued'), h('th', {}, 'Took'), h('th', {}, ''))),
      h('tbody', {}, jobs.map((job) => h('tr', { class: 'job-row', 'data-job': job.id, 'data-state': job.state },
        h('td', {}, h('button', { class: 'link-button', title: 'Details and log', onclick: () => showDetails(project, job.id) },
          `${kindLabel(job.kind)} #${job.id}`)),
        h('td', {}, stateBadge(job.state)),
        h('td', {}, progressCell(job)),
        h('td', {}, outcome(project, job) || h('span', { class: 'faint' }, '–')),
        h('td', {}, job.created_by || '–'),
        h('td', { class: 'muted nowrap' }, fmtDate(job.created_at)),
        h('td', { class: 'muted nowrap' }, job.started_at ? fmtDuration(seconds(job.started_at, job.finished_at)) : '–'),
        h('td', { class: 'nowrap' },
          admin && ACTIVE.has(job.state) ? h('button', { class: 'small danger-outline', onclick: () => cancel(job) },
            job.state === 'running' ? 'Stop' : 'Cancel') : null,
          admin && job.kind === 'train' && ['interrupted', 'cancelled', 'failed'].includes(job.state)
            && ((job.result || {}).run || (job.progress || {}).run)
            ? h('button', { class: 'small', onclick: () => resume(job) }, 'Resume') : null))))));
  }

  let last = '';
  async function refresh() {
    clearTimeout(timer);
    if (!alive) return;
    let delay = SLOW_MS;
    try {
      const jobs = await api.get(projectPath(project, 'jobs'), { params: { limit: 100 } });
      if (!alive) return;
      const seen = JSON.stringify(jobs);
      if (seen !== last) replaceChildren(list, jobs.length ? table(jobs) : emptyState('No jobs yet',
        admin ? 'Importing images, exporting, training a model or making a package starts a job; it shows here with its progress.'
          : 'When an admin imports, exports or trains, the job shows here with its progress.'));
      last = seen;
      window.dispatchEvent(new CustomEvent('vl-jobs', { detail: { project, jobs } })); // the top bar follows
      if (jobs.some((j) => ACTIVE.has(j.state))) delay = FAST_MS;
    } catch (e) {
      if (!alive || (e instanceof ApiError && e.status === 401)) return;
      replaceChildren(list, errorState(e, 'The job list'));
      last = '';
    }
    if (alive) timer = setTimeout(refresh, delay);
  }
  await refresh();
}
