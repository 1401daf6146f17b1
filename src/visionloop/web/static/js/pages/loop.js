// #/p/:project/loop — the retrain-and-compare loop's history (GET .../loop): the deployed model, every cycle with its
// versions, runs and decision, the main metric of champion and challenger and the bootstrap CI of their difference
// as charts over time (uPlot), a link to each cycle's comparison report; admins start a cycle (the loop job), follow
// its progress and may cancel it.
import uPlot from '../../vendor/uplot/uPlot.esm.js';
import { api, projectPath, roleAllows } from '../api.js';
import { ensureCss } from '../charts.js';
import { FINAL_STATES, jobProgress, watchJob } from '../job_watch.js';
import {
  confirmDialog, emptyState, errorState, fmtDate, fmtMetric, h, pageHeader, plural, projectHref, replaceChildren,
  spinner, toast, toastError,
} from '../ui.js';

const COLOURS = { champion: '#6b7280', challenger: '#2563eb', diff: '#2563eb', ci: '#93c5fd', margin: '#dc2626',
  promoted: '#16a34a' };
const STATE_BADGE = { promoted: 'ok', kept: 'info', failed: 'bad', running: 'info', rolled_back: 'warn' };

let state = null;

export function dispose() {
  if (!state) return;
  state.charts.forEach((c) => c.destroy());
  state.observer.disconnect();
  if (state.watcher) state.watcher.stop();
  state = null;
}

const seconds = (iso) => Date.parse(iso) / 1000;
const signed = (v) => (v === null || v === undefined ? '–' : `${v >= 0 ? '+' : ''}${v.toFixed(4)}`);

function chart(box, opts, data) {
  ensureCss();
  const c = new uPlot({ width: Math.max(280, box.clientWidth || 520), height: 240, legend: { live: false }, ...opts },
    data, box);
  state.charts.push(c);
  state.observer.observe(box);
  box.chart = c;
  return c;
}

function timeRange(u, min, max) {
  return min === max ? [min - 3600, max + 3600] : [min, max];
}

/** The decided cycles, oldest first (uPlot wants x ascending). */
function decided(cycles) {
  return cycles.filter((c) => c.ci_low !== null && c.champion_value !== null)
    .sort((a, b) => seconds(a.started_at) - seconds(b.started_at));
}

function metricChart(box, cycles) {
  const xs = cycles.map((c) => seconds(c.finished_at || c.started_at));
  const metric = cycles[cycles.length - 1].metric || 'metric';
  return chart(box, {
    title: `${metric} on the frozen test set`,
    scales: { x: { time: true, range: timeRange } },
    axes: [{}, { label: metric }],
    series: [{ label: 'time' },
      { label: 'champion', stroke: COLOURS.champion, width: 2, points: { show: true, size: 6 } },
      { label: 'challenger', stroke: COLOURS.challenger, width: 2, points: { show: true, size: 6 } },
      { label: 'promoted', stroke: COLOURS.promoted, fill: COLOURS.promoted, width: 0, paths: () => null,
        points: { show: true, size: 11, fill: COLOURS.promoted, stroke: COLOURS.promoted } }],
  }, [xs, cycles.map((c) => c.champion_value), cycles.map((c) => c.challenger_value),
    cycles.map((c) => (c.state === 'promoted' ? c.challenger_value : null))]);
}

function differenceChart(box, cycles, margin) {
  const xs = cycles.map((c) => seconds(c.finished_at || c.started_at));
  const pct = Math.round(100 * (cycles[cycles.length - 1].details.confidence || 0.95));
  return chart(box, {
    title: `Challenger − champion with its ${pct}% bootstrap CI`,
    scales: { x: { time: true, range: timeRange } },
    axes: [{}, { label: 'difference' }],
    series: [{ label: 'time' },
      { label: 'difference', stroke: COLOURS.diff, width: 2, points: { show: true, size: 7 } },
      { label: 'CI low', stroke: COLOURS.ci, width: 1.5, dash: [4, 3], points: { show: true, size: 5 } },
      { label: 'CI high', stroke: COLOURS.ci, width: 1.5, dash: [4, 3], points: { show: true, size: 5 } },
      { label: `margin ${margin}`, stroke: COLOURS.margin, width: 1.5, dash: [6, 4], points: { show: false } }],
  }, [xs, cycles.map((c) => c.challenger_value - c.champion_value), cycles.map((c) => c.ci_low),
    cycles.map((c) => c.ci_high), xs.map(() => margin)]);
}

function runLink(project, run) {
  return run ? h('a', { href: projectHref(project, `runs/${encodeURIComponent(run)}`), title: run }, run) : '–';
}

function cyclesTable(project, cycles) {
  const metric = cycles.find((c) => c.metric)?.metric || 'metric';
  const heads = ['#', 'Started', 'Trigger', 'Decision', 'New', 'Version', 'Champion run', 'Challenger run',
    `Champion ${metric}`, `Challenger ${metric}`, 'CI of the difference', 'Report'];
  const num = new Set([4, 8, 9]);
  return h('div', { class: 'table-wrap' }, h('table', { class: 'table loop-cycles', 'data-testid': 'loop-cycles' },
    h('thead', {}, h('tr', {}, heads.map((t, i) => h('th', { class: num.has(i) ? 'num' : null }, t)))),
    cycles.map((c) => h('tbody', { 'data-id': c.id, 'data-state': c.state, class: 'loop-cycle' },
      h('tr', {},
        h('td', {}, String(c.id)),
        h('td', {}, fmtDate(c.started_at)),
        h('td', {}, c.trigger),
        h('td', {}, h('span', { class: `badge ${STATE_BADGE[c.state] || ''}` }, c.state)),
        h('td', { class: 'num' }, String(c.new_annotations)),
        h('td', {}, c.version || '–'),
        h('td', { class: 'run' }, runLink(project, c.champion_run)),
        h('td', { class: 'run' }, runLink(project, c.challenger_run)),
        h('td', { class: 'num' }, fmtMetric(c.champion_value, 4)),
        h('td', { class: 'num' }, fmtMetric(c.challenger_value, 4)),
        h('td', {}, c.ci_low === null ? '–' : `[${signed(c.ci_low)}, ${signed(c.ci_high)}]`),
        h('td', {}, c.report ? h('a', { href: api.url(projectPath(project, `loop/cycles/${c.id}/report`)),
          target: '_blank', rel: 'noopener', 'data-testid': `loop-report-${c.id}` }, 'report') : '–')),
      c.reason ? h('tr', { class: 'loop-reason' }, h('td', {}), h('td', { colspan: heads.length - 1 }, c.reason))
        : null))));
}

function deploymentLine(d) {
  if (!d) return h('p', { class: 'muted', 'data-testid': 'loop-deployed' }, 'Nothing is deployed: deploy a model on '
    + 'the Models page; it becomes the champion the loop tries to beat.');
  return h('p', { 'data-testid': 'loop-deployed' }, 'Deployed: ', h('strong', {}, d.package),
    h('span', { class: 'muted' }, ` (${d.action || 'deploy'} by ${d.deployed_by || '–'}, ${fmtDate(d.deployed_at)})`));
}

/** Start button (admins), or the running loop job's progress with a cancel button. */
function jobControl(project, role, onEnd) {
  const el = h('div', { class: 'row loop-job', 'data-testid': 'loop-job' });
  const admin = roleAllows(role, 'admin');
  function idle(last) {
    const said = last && last.state === 'failed' ? h('span', { class: 'error' }, `The last cycle's job failed: ${last.error || ''}`)
      : last && last.state === 'cancelled' ? h('span', { class: 'muted' }, 'The last cycle was cancelled.') : null;
    replaceChildren(el, admin ? h('button', { class: 'primary', 'data-testid': 'start-loop', onclick: start },
      'Start a cycle') : h('span', { class: 'muted' }, 'An admin can start a cycle.'), said);
  }
  function follow(job) {
    const bar = jobProgress();
    bar.set(job);
    const cancel = admin ? h('button', { class: 'small danger-outline', 'data-testid': 'cancel-loop', onclick: async () => {
      if (!(await confirmDialog('Stop this cycle? The champion stays deployed; the cycle is recorded as interrupted.',
        { confirm: 'Stop cycle', cancel: 'Keep it', danger: true, title: 'Cancel the cycle' }))) return;
      try {
        await api.post(projectPath(project, `jobs/${job.id}/cancel`));
        toast('Cycle cancelled.', 'success');
      } catch (e) { toastError(e, 'Not cancelled'); }
    } }, 'Cancel') : null;
    replaceChildren(el, bar.el, cancel);
    if (state.watcher) state.watcher.stop();
    state.watcher = watchJob(project, job.id, (j) => bar.set(j), { interval: 1000 });
    state.watcher.done.then((j) => {
      if (!state || !j || !FINAL_STATES.has(j.state)) return;
      state.watcher = null;
      idle(j);
      onEnd(j);
    });
  }
  async function start(e) {
    e.currentTarget.disabled = true;
    try {
      follow(await api.post(projectPath(project, 'loop'), { force: true }));
    } catch (err) {
      toastError(err);
      idle(null);
    }
  }
  return { el, idle, follow };
}

export async function render(root, { project, role }) {
  dispose();
  state = { charts: [], watcher: null, observer: new ResizeObserver((entries) => {
    for (const e of entries) if (e.target.chart) e.target.chart.setSize({ width: Math.max(280, e.target.clientWidth), height: 240 });
  }) };
  const control = jobControl(project, role, () => load());
  const top = h('div', { 'data-testid': 'loop-top' });
  const content = h('div', { 'data-testid': 'loop-content' }, spinner('Loading the loop\u2019s history…'));
  root.replaceChildren(h('div', { class: 'page loop-page', 'data-testid': 'loop-page' },
    pageHeader('Loop', 'Retrain and compare: a challenger trained on the new reviewed data replaces the deployed '
      + 'model only when it is better on the frozen test set by a statistically meaningful margin.'),
    h('div', { class: 'card' }, top, control.el), content));
  control.idle(null);

  async function load() {
    let found;
    try {
      found = await api.get(projectPath(project, 'loop'), { params: { limit: 200 } });
    } catch (e) {
      replaceChildren(content, errorState(e, 'The loop\u2019s history'));
      return;
    }
    if (!state) return;
    const s = found.settings;
    replaceChildren(top, deploymentLine(found.deployment), h('p', { class: 'muted' },
      `A cycle starts when ${plural(s.min_new, 'new approved annotation')} arrived since the champion's version`
      + `${s.every_hours ? `, or every ${s.every_hours} h` : ''}; it promotes when the lower bound of the `
      + `${Math.round(100 * s.confidence)}% CI is above ${s.margin}.`));
    if (found.job !== null && !state.watcher) control.follow(await api.get(projectPath(project, `jobs/${found.job}`)));
    state.charts.forEach((c) => c.destroy());
    state.charts = [];
    const { cycles } = found;
    if (!cycles.length) {
      replaceChildren(content, emptyState('No cycle yet', roleAllows(role, 'admin')
        ? 'Start a cycle above, or run visionloop loop PROJECT; reviewers\u2019 approvals start one by themselves.'
        : 'Cycles appear here when reviewed annotations arrive or an admin starts one.'));
      return;
    }
    const done = decided(cycles);
    const metricBox = h('div', { class: 'chart', 'data-testid': 'loop-metric-chart' });
    const diffBox = h('div', { class: 'chart', 'data-testid': 'loop-diff-chart' });
    const promoted = cycles.filter((c) => c.state === 'promoted').length;
    replaceChildren(content,
      done.length ? h('div', { class: 'card' }, h('h2', {}, 'Over time'),
        h('p', { class: 'muted' }, `${plural(done.length, 'decided cycle')}, ${plural(promoted, 'promotion')}; green `
          + 'points mark the promotions.'),
        h('div', { class: 'charts' }, metricBox, diffBox)) : null,
      h('div', { class: 'card' }, h('h2', {}, 'Cycles'), cyclesTable(project, cycles)));
    if (done.length) {
      metricChart(metricBox, done);
      differenceChart(diffBox, done, s.margin);
    }
  }
  await load();
}
