// #/p/:project/drift — is production still like the training data? The drift reports over time (GET .../drift,
// placed at the end of their production window):
// p-values of the embeddings' MMD and of the confidences, the PSI of the predicted classes and of the image
// statistics, each with its threshold line and the reports that alerted marked; the latest report's image-statistic
// histograms (reference vs production) and class histogram; admins run a check (the drift job) and follow it.
import uPlot from '../../vendor/uplot/uPlot.esm.js';
import { api, projectPath, roleAllows } from '../api.js';
import { chartSet, timeRange } from '../charts.js';
import { jobPanel } from '../data_issues.js';
import {
  emptyState, errorState, fmtDate, fmtMetric, fmtNumber, h, pageHeader, plural, replaceChildren, spinner,
} from '../ui.js';

const WINDOWS = [['1h', 'last hour'], ['6h', 'last 6 hours'], ['24h', 'last 24 hours'], ['7d', 'last 7 days'],
  ['30d', 'last 30 days']];
const STATS = [['size', 'Size', 'px (side of a square of the same area)'], ['brightness', 'Brightness', 'grey level 0-255'],
  ['blur', 'Sharpness', 'variance of the Laplacian (low: blurred)']];
const ALERT_NAMES = { mmd: 'embeddings (MMD)', confidence: 'confidences', classes: 'predicted classes', size: 'size',
  brightness: 'brightness', blur: 'sharpness' };
const COLOURS = { mmd_p: '#2563eb', confidence_p: '#9333ea', psi: '#ea580c', size: '#0891b2', brightness: '#ca8a04',
  blur: '#4d7c0f', threshold: '#6b7280', alert: '#dc2626', reference: '#2563eb', production: '#dc2626' };
const P_FLOOR = 1e-6; // p-values on a log axis: 0 would have no place

let state = null;

export function dispose() {
  if (!state) return;
  state.charts.destroy();
  state.stops.forEach((f) => f());
  state = null;
}

const seconds = (iso) => Date.parse(iso) / 1000;
const fmtP = (p) => (p === null || p === undefined ? '–' : p < 0.001 ? p.toExponential(1) : p.toFixed(3));

/** A log axis's ticks at powers of ten only (uPlot adds the ones between, a grid too dense to read). */
function decades(u, splits) {
  return splits.map((s) => (Math.abs(Math.log10(s) - Math.round(Math.log10(s))) < 1e-9 ? s : null));
}

/** Lines of `series` [{key, label, values}] over the reports' times, a dashed threshold, and red points where a
 * report alerted (drawn at `alertAt`). */
function overTime(box, { title, xs, series, threshold, thresholdLabel, alerts, alertAt, log }) {
  const lines = series.map((s) => ({ label: s.label, stroke: COLOURS[s.key], width: 2, spanGaps: true,
    points: { show: true, size: 6 } }));
  const extra = [
    { label: thresholdLabel, stroke: COLOURS.threshold, width: 1.5, dash: [6, 4], points: { show: false } },
    { label: 'alert', stroke: COLOURS.alert, fill: COLOURS.alert, width: 0, paths: () => null,
      points: { show: true, size: 11, fill: COLOURS.alert, stroke: COLOURS.alert } },
  ];
  const y = log ? { distr: 3, log: 10, range: (u, min) => [Math.min(min ?? 1, threshold / 10, 0.1), 1] }
    : { range: (u, min, max) => [0, Math.max(threshold * 1.5, (max ?? 0) * 1.1)] };
  return state.charts.add(box, {
    title, scales: { x: { time: true, range: timeRange }, y },
    axes: [{}, log ? { label: 'p-value', size: 64, filter: decades, grid: { filter: decades }, ticks: { filter: decades },
      values: (u, ticks) => ticks.map((t) => (t ? fmtP(t) : '')) } : { label: 'PSI' }],
    series: [{ label: 'time' }, ...lines, ...extra],
  }, [xs, ...series.map((s) => s.values), xs.map(() => threshold), alerts.map((a) => (a ? alertAt : null))]);
}

/** Reference vs production fractions per bin of one image statistic, as two filled step lines. */
function histogramChart(box, name, label, unit, stat) {
  const close = (v) => [...v, v[v.length - 1]];
  return state.charts.add(box, {
    title: `${label}: ${fmtMetric(stat.reference_mean, 1)} → ${fmtMetric(stat.production_mean, 1)} (PSI ${fmtMetric(stat.psi, 2)})`,
    scales: { x: { time: false }, y: { range: (u, min, max) => [0, Math.max(0.05, (max ?? 0) * 1.1)] } },
    axes: [{ label: unit }, { label: 'share of images' }],
    series: [{ label }, ...['reference', 'production'].map((k) => ({
      label: k === 'reference' ? `reference (${stat.n_reference})` : `production (${stat.n_production})`,
      stroke: COLOURS[k], fill: `${COLOURS[k]}33`, width: 1.5, paths: uPlot.paths.stepped({ align: 1 }),
      points: { show: false } }))],
  }, [stat.edges, close(stat.reference), close(stat.production)]);
}

function statCard(label, value, { bad = false, testid = null, title = null } = {}) {
  return h('div', { class: 'card stat', 'data-testid': testid, title },
    h('div', { class: `stat-value${bad ? ' drift-bad' : ''}` }, value), h('div', { class: 'stat-label' }, label));
}

function summary(report, thresholds) {
  const alerts = report.details.alerts || [];
  const badge = report.alert
    ? h('span', { class: 'badge bad', 'data-testid': 'drift-alert' }, `Drift: ${alerts.map((a) => ALERT_NAMES[a] || a).join(', ')}`)
    : h('span', { class: 'badge ok', 'data-testid': 'drift-alert' }, 'No drift');
  const row = h('div', { class: 'stat-row' },
    statCard('Embeddings: MMD p-value', fmtP(report.mmd_p), { bad: alerts.includes('mmd'), testid: 'stat-mmd-p',
      title: `alert below ${thresholds.mmd_p}; MMD² ${fmtMetric(report.mmd, 4)}` }),
    statCard('Confidences: p-value', fmtP(report.confidence_p), { bad: alerts.includes('confidence'),
      title: `alert below ${thresholds.confidence_p}` }),
    statCard('Predicted classes: PSI', report.psi === null ? '–' : fmtMetric(report.psi, 3),
      { bad: alerts.includes('classes'), title: `alert above ${thresholds.psi}` }),
    statCard('Production samples', fmtNumber(report.n_production), { testid: 'stat-production' }),
    statCard('Reference images', fmtNumber(report.n_reference)));
  return [h('p', {}, badge, ' ', h('span', { class: 'muted' },
    `Latest check ${fmtDate(report.created_at)}: ${report.model || 'model'} against version ${report.reference || '–'}, `
    + `production samples from ${fmtDate(report.window_start)} to ${fmtDate(report.window_end)}`
    + `${report.details.random_only === false ? ' (all samplers)' : ' (random slice)'}.`)),
  report.details.note ? h('p', { class: 'warn-text', 'data-testid': 'drift-note' }, report.details.note) : null, row];
}

function classTable(classes) {
  if (!classes || !classes.names) return null;
  const total = (v) => v.reduce((a, b) => a + b, 0) || 1;
  const [rt, pt] = [total(classes.reference), total(classes.production)];
  const pct = (v, t) => `${((100 * v) / t).toFixed(1)}%`;
  return h('div', { class: 'table-wrap' }, h('table', { class: 'table', 'data-testid': 'drift-classes' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Predicted class'), h('th', { class: 'num' }, 'Reference'),
      h('th', { class: 'num' }, 'Production'))),
    h('tbody', {}, classes.names.map((name, i) => h('tr', {}, h('td', {}, name),
      h('td', { class: 'num' }, pct(classes.reference[i], rt)), h('td', { class: 'num' }, pct(classes.production[i], pt)))))));
}

function reportsTable(reports) {
  return h('div', { class: 'table-wrap' }, h('table', { class: 'table', 'data-testid': 'drift-reports' },
    h('thead', {}, h('tr', {}, ['Production window', 'Model', 'Samples', 'MMD p', 'Confidence p', 'Class PSI', 'Result']
      .map((t, i) => h('th', { class: i >= 2 && i <= 5 ? 'num' : null }, t)))),
    h('tbody', {}, reports.map((r) => h('tr', { 'data-id': r.id },
      h('td', { title: `checked ${fmtDate(r.created_at)}` }, `${fmtDate(r.window_start)} – ${fmtDate(r.window_end)}`),
      h('td', {}, r.model || '–'),
      h('td', { class: 'num' }, fmtNumber(r.n_production)), h('td', { class: 'num' }, fmtP(r.mmd_p)),
      h('td', { class: 'num' }, fmtP(r.confidence_p)), h('td', { class: 'num' }, r.psi === null ? '–' : fmtMetric(r.psi, 3)),
      h('td', {}, r.alert ? h('span', { class: 'badge bad' }, (r.details.alerts || []).join(', '))
        : h('span', { class: 'badge ok' }, r.details.note ? 'too few samples' : 'no drift')))))));
}

export async function render(root, { project, role }) {
  dispose();
  state = { charts: chartSet(), stops: [] };
  const body = { window: '24h' };
  const select = h('select', { 'aria-label': 'Production window', 'data-testid': 'drift-window',
    onchange: () => { body.window = select.value; } },
  WINDOWS.map(([v, label]) => h('option', { value: v, selected: v === body.window ? true : null }, label)));
  const job = jobPanel(project, role, { kind: 'drift', label: 'Run a drift check', path: 'drift', body,
    note: 'Compares the production samples of the window with the deployed model\u2019s training data.' }, () => load());
  state.stops.push(job.stop);
  const content = h('div', { 'data-testid': 'drift-content' }, spinner('Loading the drift reports…'));
  root.replaceChildren(h('div', { class: 'page drift-page', 'data-testid': 'drift-page' },
    pageHeader('Drift', 'Recent production inputs compared with the images the deployed model was trained on.'),
    h('div', { class: 'card' }, h('div', { class: 'row' },
      roleAllows(role, 'admin') ? h('label', {}, 'Production samples of the ', select) : null,
      h('span', { class: 'spacer' }), job.el)),
    content));

  async function load() {
    let found;
    try {
      found = await api.get(projectPath(project, 'drift'), { params: { limit: 200 } });
    } catch (e) {
      replaceChildren(content, errorState(e, 'The drift reports'));
      return;
    }
    state.charts.clear();
    const { reports, thresholds } = found;
    if (!reports.length) {
      replaceChildren(content, emptyState('No drift check yet', roleAllows(role, 'admin')
        ? 'Run a check above once model servers send production samples back to the project.'
        : 'An admin runs checks once model servers send production samples back to the project.'));
      return;
    }
    const latest = reports[0];
    const tested = reports.filter((r) => !r.details.note)
      .sort((a, b) => seconds(a.window_end) - seconds(b.window_end)); // uPlot wants x ascending
    const xs = tested.map((r) => seconds(r.window_end)); // when production saw the images, not when checked
    const pBox = h('div', { class: 'chart', 'data-testid': 'drift-p-chart' });
    const psiBox = h('div', { class: 'chart', 'data-testid': 'drift-psi-chart' });
    const histBoxes = STATS.filter(([k]) => latest.image_stats[k]).map(([k]) => [k, h('div', { class: 'chart',
      'data-testid': `drift-hist-${k}` })]);
    replaceChildren(content,
      h('div', { class: 'card' }, summary(latest, thresholds)),
      tested.length ? h('div', { class: 'card' }, h('h2', {}, 'Over time'),
        h('p', { class: 'muted' }, `${plural(tested.length, 'check')}; the dashed lines are the thresholds, red points `
          + 'the checks that alerted.'),
        h('div', { class: 'charts' }, pBox, psiBox)) : null,
      histBoxes.length ? h('div', { class: 'card' }, h('h2', {}, 'Image statistics of the latest check'),
        h('div', { class: 'charts' }, histBoxes.map(([, b]) => b))) : null,
      latest.details.classes ? h('div', { class: 'card' }, h('h2', {}, 'Predicted classes of the latest check'),
        classTable(latest.details.classes)) : null,
      h('div', { class: 'card' }, h('h2', {}, 'Checks'), reportsTable(reports)));
    if (tested.length) {
      const alerts = tested.map((r) => r.alert);
      overTime(pBox, { title: 'Two-sample tests (p-value, log scale)', xs, threshold: thresholds.mmd_p,
        thresholdLabel: `threshold ${thresholds.mmd_p}`, alerts, alertAt: thresholds.mmd_p, log: true,
        series: [{ key: 'mmd_p', label: 'embeddings (MMD)', values: tested.map((r) => (r.mmd_p === null ? null : Math.max(P_FLOOR, r.mmd_p))) },
          { key: 'confidence_p', label: 'confidences', values: tested.map((r) => (r.confidence_p === null ? null : Math.max(P_FLOOR, r.confidence_p))) }] });
      overTime(psiBox, { title: 'Population stability index', xs, threshold: thresholds.psi,
        thresholdLabel: `threshold ${thresholds.psi}`, alerts, alertAt: thresholds.psi, log: false,
        series: [{ key: 'psi', label: 'predicted classes', values: tested.map((r) => r.psi) },
          ...STATS.map(([k, label]) => ({ key: k, label, values: tested.map((r) => r.image_stats[k]?.psi ?? null) }))] });
    }
    for (const [k, box] of histBoxes) {
      const [, label, unit] = STATS.find(([s]) => s === k);
      histogramChart(box, k, label, unit, latest.image_stats[k]);
    }
  }
  await load();
}
