// How metrics read on the pages: names people know, three decimals, the headline ones first.
import {fmtMetric as fmt, fmtNumber, h} from './ui.js';
import {metricLabel} from './charts.js';

export {fmt};

// Headline metrics by task, best known first (the keys of evaluation/keys.py and the evaluation results).
const HEADLINE = ['map', 'map50', 'map75', 'miou', 'pixel_accuracy', 'balanced_accuracy', 'accuracy', 'mAP',
  'macro_f1', 'top1', 'top5', 'image_jaccard'];

/** A signed difference, '+0.012' / '−0.034', with a class for colour (better/worse; losses are lower-better). */
export function diffCell(a, b, key = '') {
  if (typeof a !== 'number' || typeof b !== 'number') return h('td', {class: 'num muted'}, '–');
  const d = b - a;
  const lowerBetter = /loss|ece|error|seconds/.test(key);
  const good = lowerBetter ? d < 0 : d > 0;
  const cls = Math.abs(d) < 1e-9 ? 'same' : good ? 'better' : 'worse';
  const text = `${d > 0 ? '+' : d < 0 ? '−' : '±'}${Math.abs(d).toFixed(3)}`;
  return h('td', {class: `num diff ${cls}`}, text);
}

/** The headline entries of a flat metrics object, [[key, value]...]: `test_map` and `map` both count. */
export function headline(metrics, limit = 4) {
  const flat = flatMetrics(metrics);
  const out = [];
  for (const key of HEADLINE) {
    for (const k of [key, `test_${key}`, `val_${key}`]) {
      if (typeof flat[k] === 'number' && !out.some(([o]) => o === k)) { out.push([k, flat[k]]); break; }
    }
    if (out.length >= limit) break;
  }
  return out;
}

/** The numeric entries of `metrics` (nested `per_class` and curves left out). */
export function flatMetrics(metrics) {
  const out = {};
  for (const [k, v] of Object.entries(metrics || {})) if (typeof v === 'number') out[k] = v;
  return out;
}

/** Big numbers for the headline metrics. */
export function metricCards(metrics, limit = 4) {
  const items = headline(metrics, limit);
  if (!items.length) return h('p', {class: 'muted'}, 'No metrics yet.');
  return h('div', {class: 'stat-row'}, ...items.map(([k, v]) => h('div', {class: 'stat'},
    h('div', {class: 'stat-value'}, fmt(v)),
    h('div', {class: 'stat-label'}, `${splitPrefix(k)}${metricLabel(k)}`))));
}

/** Counts (n, n_gt, images, ...) as whole numbers, metrics with three decimals. */
export function fmtValue(key, v) {
  return /^(n|n_.*|.*_count|images|support)$/.test(key) && typeof v === 'number' ? fmtNumber(v) : fmt(v);
}

/** A table of per-class metrics: {class: {metric: value}}. */
export function perClassTable(perClass) {
  const names = Object.keys(perClass || {});
  if (!names.length) return h('p', {class: 'muted'}, 'No per-class metrics.');
  const keys = [...new Set(names.flatMap((n) => Object.keys(perClass[n] || {})))];
  return h('table', {class: 'table per-class'},
    h('thead', {}, h('tr', {}, h('th', {}, 'class'), ...keys.map((k) => h('th', {class: 'num'}, metricLabel(k))))),
    h('tbody', {}, ...names.map((n) => h('tr', {}, h('td', {}, n),
      ...keys.map((k) => h('td', {class: 'num'}, fmtValue(k, perClass[n]?.[k])))))));
}

/** A key/value table (objects shown as JSON). */
export function kvTable(obj, {short = false} = {}) {
  const rows = Object.entries(obj || {}).filter(([, v]) => v !== null && v !== undefined && v !== '');
  return h('table', {class: `table kv${short ? ' short' : ''}`}, h('tbody', {}, ...rows.map(([k, v]) => h('tr', {},
    h('th', {}, k.replaceAll('_', ' ')),
    h('td', {}, typeof v === 'object' ? JSON.stringify(v) : String(v))))));
}

/** Runs (or anything with `created_at`), newest first. */
export const newestFirst = (runs) => [...runs].sort((x, y) => String(y.created_at).localeCompare(String(x.created_at)));

/** 'validation mAP 0.412 · validation mAP50 0.731': the headline metrics in one line ('' when none). */
export function headlineText(metrics, limit = 2) {
  return headline(metrics, limit).map(([k, v]) => `${splitPrefix(k)}${metricLabel(k)} ${fmt(v)}`).join(' · ');
}

/** 'validation ' for val_ keys, 'test ' for test_ keys. */
export const splitPrefix = (key) => (key.startsWith('val_') ? 'validation ' : key.startsWith('test_') ? 'test ' : '');

/** 0.0123 -> '1.2 points' (a metric in 0..1 moves by points of 0.01). */
export const points = (v) => (typeof v === 'number' ? `${(v * 100).toFixed(1)} points` : '–');

/** What int8 changed (the guard's record or a manifest's int8): 'mAP 0.412 (fp32) → 0.409 (int8), a drop of 0.3 points'. */
export function int8Change(rec) {
  return `${metricLabel(rec.metric || 'main metric')} ${fmt(rec.fp32)} (fp32) → ${fmt(rec.int8)} (int8), `
    + `a drop of ${points(rec.drop)}`;
}
