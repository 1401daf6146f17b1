// #/p/:project/runs/:run — a training run: its metrics (headline big, per class in a table), curves, config, the
// HTML report, "compare with…", and "export package" (int8 optional, with the guard's verdict).
import {api, projectPath, roleAllows, session} from '../api.js';
import {
  errorState, fmtDate, fmtMetric, h, pageHeader, plural, projectHref, replaceChildren, toast, toastError,
} from '../ui.js';
import {historyCharts, historyRecords} from '../charts.js';
import {FINAL_STATES, jobProgress, watchJob} from '../job_watch.js';
import {int8Change, kvTable, metricCards, newestFirst, perClassTable, points} from '../metrics_view.js';

let cleanups = [];

export function dispose() {
  cleanups.forEach((f) => f());
  cleanups = [];
}

const runHref = (project, id) => projectHref(project, `runs/${encodeURIComponent(id)}`);

export async function render(root, {project, run}) {
  dispose();
  const p = (rest) => projectPath(project, rest);
  const runPath = (rest = '') => p(`runs/${encodeURIComponent(run)}${rest ? `/${rest}` : ''}`);
  let info;
  try {
    info = await api.get(runPath());
  } catch (e) {
    root.replaceChildren(errorState(e, `Run ${run}`));
    return;
  }
  const [role, history, runs] = await Promise.all([
    session.role(project), api.get(runPath('history')).catch(() => null), api.get(p('runs')).catch(() => []),
  ]);
  const admin = roleAllows(role, 'admin');
  const config = info.config || {};
  const metricsCard = h('section', {class: 'card'}, metricsBody(info));
  const reportSlot = h('div', {class: 'report-slot'});
  // once the report is made, its link and the evaluation's metrics replace what was shown (nothing else is redrawn:
  // an export started meanwhile keeps its progress)
  const refresh = async () => {
    const fresh = await api.get(runPath());
    replaceChildren(metricsCard, metricsBody(fresh));
    reportAction(reportSlot, project, fresh, admin, refresh);
  };
  reportAction(reportSlot, project, info, admin, refresh);

  const curves = h('div', {class: 'charts'});
  const records = historyRecords(history);
  root.replaceChildren(h('div', {class: 'run-page'},
    pageHeader(`Run ${run}`, [info.model, info.version && `on ${info.version}`, plural(info.epochs, 'epoch'), info.state,
      fmtDate(info.created_at)].filter(Boolean).join(' · '),
    reportSlot),
    info.state === 'running' ? h('p', {class: 'notice'}, 'This run is training now: ',
      h('a', {href: projectHref(project, 'train')}, 'follow it live on the Train page'), '.') : null,
    metricsCard,
    h('section', {class: 'card'}, h('h2', {}, 'Training curves'),
      records.length ? curves : h('p', {class: 'muted'}, 'No curves: the run logged no epoch.')),
    h('div', {class: 'two-cols'},
      compareCard(project, run, runs),
      admin && info.state === 'done' ? exportCard(project, run) : null),
    h('section', {class: 'card'}, h('h2', {}, 'Configuration'), configView(config))));
  if (records.length) {
    const chart = historyCharts(curves);
    chart.update(records, {epochs: config.hparams?.epochs || 0});
    cleanups.push(() => chart.destroy());
  }
}

/** The headline metrics, per class ones from the evaluation, the last int8 check. */
function metricsBody(info) {
  const perClass = info.evaluation?.per_class;
  return [h('h2', {}, 'Metrics'), metricCards(info.metrics || {}, 4),
    perClass ? h('h3', {}, `Per class (${info.evaluation.split || 'test'} split)`) : null,
    perClass ? perClassTable(perClass) : null,
    info.int8_guard ? h('h3', {}, 'Last int8 check') : null, info.int8_guard ? int8Verdict(info.int8_guard) : null];
}

/** The report link, or the job making it, or (admin) a button to make it; `onMade()` once it is made. */
async function reportAction(slot, project, info, admin, onMade) {
  const runPath = (rest) => projectPath(project, `runs/${encodeURIComponent(info.id)}/${rest}`);
  if (info.report) {
    slot.replaceChildren(h('a', {class: 'button primary', href: api.url(runPath('report')), target: '_blank',
      rel: 'noopener', id: 'run-report'}, 'Open the report ↗'));
    return;
  }
  const follow = (job) => {
    const progress = jobProgress();
    slot.replaceChildren(h('span', {class: 'muted'}, 'Making the report…'), progress.el);
    const watch = watchJob(project, job.id, (j) => {
      progress.set(j);
      if (j.state === 'done') onMade();
    });
    cleanups.push(() => watch.stop());
  };
  const jobs = await api.get(projectPath(project, 'jobs'), {params: {kind: 'evaluate', limit: 20}}).catch(() => []);
  const making = jobs.find((j) => j.params?.run === info.id && !FINAL_STATES.has(j.state));
  if (making) {
    follow(making);
  } else if (admin && info.state === 'done') {
    const make = h('button', {type: 'button', id: 'run-evaluate'}, 'Make the report');
    make.addEventListener('click', async () => {
      make.disabled = true;
      try {
        follow(await api.post(runPath('evaluate'), {split: 'test'}));
      } catch (e) {
        toastError(e);
        make.disabled = false;
      }
    });
    slot.replaceChildren(make);
  } else {
    slot.replaceChildren(h('span', {class: 'muted'}, 'No report yet'));
  }
}

const MAIN_HPARAMS = ['epochs', 'batch_size', 'lr', 'eval_size', 'image_size', 'optimizer'];

/** What was trained on what, in a few lines; everything else the run recorded under a fold. */
function configView(config) {
  const hp = config.hparams || {};
  const shown = {
    model: config.model?.name,
    strategy: config.strategy ? `${config.strategy}${config.strategy_reason ? `: ${config.strategy_reason}` : ''}` : null,
    'dataset version': config.version?.name ? `${config.version.name} (${(config.version.hash || '').slice(0, 12)})` : null,
    classes: Array.isArray(config.classes) ? config.classes.map((c) => c.name ?? c).join(', ') : null,
    seed: config.seed,
    ...Object.fromEntries(MAIN_HPARAMS.filter((k) => k in hp).map((k) => [k, hp[k]])),
  };
  return h('div', {}, kvTable(shown, {short: true}), h('details', {}, h('summary', {}, 'Everything the run recorded'),
    h('pre', {class: 'json'}, JSON.stringify(config, null, 2))));
}

function compareCard(project, run, runs) {
  const others = newestFirst(runs).map((r) => r.id).filter((id) => id !== run);
  const select = h('select', {id: 'compare-with'}, h('option', {value: ''}, 'choose a run…'),
    ...others.map((id) => h('option', {value: id}, id)));
  const go = h('button', {type: 'button', id: 'compare-go', disabled: true}, 'Compare');
  select.addEventListener('change', () => { go.disabled = !select.value; });
  go.addEventListener('click', () => {
    location.hash = projectHref(project, `compare/${encodeURIComponent(run)}/${encodeURIComponent(select.value)}`);
  });
  return h('section', {class: 'card'}, h('h2', {}, 'Compare with…'),
    others.length ? h('div', {class: 'row'}, select, go) : h('p', {class: 'muted'}, 'No other run to compare with yet.'));
}

function exportCard(project, run) {
  const int8 = h('input', {type: 'checkbox', id: 'export-int8'});
  const start = h('button', {class: 'primary', type: 'button', id: 'export-start'}, 'Export package');
  const out = h('div', {class: 'export-out'});
  start.addEventListener('click', async () => {
    start.disabled = true;
    try {
      const job = await api.post(projectPath(project, 'packages'), {run, int8: int8.checked});
      const progress = jobProgress();
      out.replaceChildren(progress.el);
      const watch = watchJob(project, job.id, (j) => progress.set(j));
      cleanups.push(() => watch.stop());
      const last = await watch.done;
      if (last) out.replaceChildren(packageVerdict(project, last, int8.checked));
    } catch (e) {
      toastError(e);
    } finally {
      start.disabled = false;
    }
  });
  return h('section', {class: 'card'}, h('h2', {}, 'Export a model package'),
    h('p', {class: 'muted'}, 'An ONNX model with its manifest, ready to deploy and to run without PyTorch.'),
    h('label', {class: 'check wrap'}, int8, ' int8 (smaller and faster; kept only if the validation metric drops by at '
      + 'most one point)'),
    h('div', {class: 'actions'}, start), out);
}

/** What the package job gave: the package, and for int8 the guard's verdict (kept or refused, with the drop). */
export function packageVerdict(project, job, askedInt8) {
  const r = job.result || {};
  const guard = r.int8_guard;
  const parts = [];
  if (job.state === 'done') {
    toast(`Package ${r.name || ''} exported`, 'success');
    parts.push(h('p', {}, 'Package ', h('strong', {}, r.name || r.package || ''), ` (${r.precision || 'fp32'}) is ready. `,
      h('a', {href: projectHref(project, 'models')}, 'Deploy it and try it on an image →')));
  } else {
    parts.push(h('p', {class: 'error'}, `The export ${job.state}${job.error ? `: ${job.error}` : ''}`));
  }
  if (askedInt8 && guard) parts.push(int8Verdict(guard, 'int8-verdict'));
  else if (askedInt8) parts.push(h('p', {class: 'muted'}, 'The int8 guard left no verdict.'));
  return h('div', {class: 'package-result'}, parts);
}

/** 'int8 kept: mAP 0.412 -> 0.409 (drop 0.003, at most 0.010)' or refused, as a coloured line. */
export function int8Verdict(guard, id = null) {
  const kept = guard.outcome === 'written';
  return h('p', {class: `verdict ${kept ? 'kept' : 'refused'}`, id},
    h('strong', {}, kept ? (guard.forced ? 'int8 kept (forced)' : 'int8 kept') : 'int8 refused'), ': ',
    `${int8Change(guard)} on ${guard.validation_images ?? '?'} validation images (at most ${points(guard.max_drop)} `
    + `allowed)${kept ? '.' : '. The int8 model was not written; export without int8 to keep the fp32 accuracy.'}`);
}
