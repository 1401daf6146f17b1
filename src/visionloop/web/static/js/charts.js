// Training curves with uPlot: one chart of the losses, one of the validation metrics, per epoch.
// `historyCharts(container)` -> {update(records), destroy()}; records are the lines of a run's metrics.jsonl,
// {epoch, train_loss, val_loss?, val_<metric>..., lr}: `historyRecords` makes them from GET runs/{id}/history.
import uPlot from '../vendor/uplot/uPlot.esm.js';

const COLOURS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#be185d', '#4d7c0f'];
const LOSS_KEYS = ['train_loss', 'val_loss'];
const NOT_CURVES = new Set(['epoch', 'step', 'lr', 'epoch_seconds', 'best', 'stopped_early']);

export function ensureCss() {
  if (document.querySelector('link[data-uplot]')) return;
  const link = document.createElement('link');
  link.rel = 'stylesheet';
  link.href = new URL('../vendor/uplot/uPlot.min.css', import.meta.url).href;
  link.dataset.uplot = '1';
  document.head.appendChild(link);
}

/** GET runs/{id}/history ({series: {epoch: [...], train_loss: [...], val_map: [...]}}) -> one record per epoch. */
export function historyRecords(history) {
  const series = history?.series || {};
  const epochs = series.epoch || [];
  return epochs.map((epoch, i) => Object.fromEntries(Object.entries(series).map(([k, values]) => [k, values[i]])));
}

/** The keys of `records` worth a curve: the losses, and the validation metrics (numbers only). */
export function curveKeys(records) {
  const seen = new Set();
  for (const r of records) {
    for (const [k, v] of Object.entries(r)) if (typeof v === 'number' && !NOT_CURVES.has(k) && !k.endsWith('seconds')) seen.add(k);
  }
  const losses = LOSS_KEYS.filter((k) => seen.has(k));
  const metrics = [...seen].filter((k) => !LOSS_KEYS.includes(k) && k.startsWith('val_')).sort();
  return {losses, metrics};
}

/** 'val_map50' -> 'mAP50', 'train_loss' -> 'train loss': what a person reads in a legend. */
export function metricLabel(key) {
  const k = key.replace(/^(val|test)_/, '');
  const names = {map: 'mAP', map50: 'mAP50', map75: 'mAP75', miou: 'mIoU', mAP: 'mAP', loss: 'loss',
    balanced_accuracy: 'balanced accuracy', pixel_accuracy: 'pixel accuracy', macro_f1: 'macro F1'};
  if (key === 'train_loss') return 'training loss';
  if (key === 'val_loss') return 'validation loss';
  return names[k] ?? k.replaceAll('_', ' ');
}

// Metrics live in 0..1: their axis starts at 0 and reaches 1 at least; losses start at 0.
const METRIC_RANGE = (u, min, max) => [0, Math.max(1, max ?? 1)];
const LOSS_RANGE = (u, min, max) => [0, max > 0 ? max * 1.1 : 1];

function lineChart(parent, title, keys, height, range, frame) {
  const width = Math.max(260, parent.clientWidth || 480);
  const opts = {
    title, width, height,
    legend: {live: false},
    // epochs 1..planned: the curves grow into a fixed frame while the run trains
    scales: {x: {time: false, range: (u, min, max) => [1, Math.max(2, frame.epochs || 0, max ?? 1)]}, y: {range}},
    axes: [{label: 'epoch', incrs: [1, 2, 5, 10, 20, 50, 100]}, {}],
    series: [{label: 'epoch'}, ...keys.map((k, i) => ({
      label: metricLabel(k), stroke: COLOURS[i % COLOURS.length], width: 2,
      points: {show: true, size: 6}, spanGaps: true,
    }))],
  };
  return new uPlot(opts, [[], ...keys.map(() => [])], parent);
}

function columns(records, keys) {
  return [records.map((r) => r.epoch), ...keys.map((k) => records.map((r) => (typeof r[k] === 'number' ? r[k] : null)))];
}

/** Two charts in `container` (losses, validation metrics), refreshed by `update(records, {epochs})`. */
export function historyCharts(container, {height = 220} = {}) {
  ensureCss();
  const boxes = [document.createElement('div'), document.createElement('div')];
  boxes.forEach((b) => { b.className = 'chart'; container.appendChild(b); });
  const charts = [null, null];
  const shown = [[], []];
  const frame = {epochs: 0};

  const observer = new ResizeObserver(() => {
    charts.forEach((c, i) => { if (c) c.setSize({width: Math.max(260, boxes[i].clientWidth), height}); });
  });
  boxes.forEach((b) => observer.observe(b));

  function draw(i, title, keys, records, range) {
    if (!keys.length) return;
    if (!charts[i] || shown[i].join() !== keys.join()) {
      charts[i]?.destroy();
      charts[i] = lineChart(boxes[i], title, keys, height, range, frame);
      shown[i] = keys;
    }
    charts[i].setData(columns(records, keys));
  }

  return {
    /** `epochs`: how many the run plans (the x axis spans them), when known. */
    update(records, {epochs = 0} = {}) {
      frame.epochs = epochs;
      const {losses, metrics} = curveKeys(records);
      draw(0, 'Loss', losses, records, LOSS_RANGE);
      draw(1, 'Validation', metrics, records, METRIC_RANGE);
    },
    destroy() {
      observer.disconnect();
      charts.forEach((c) => c?.destroy());
      container.replaceChildren();
    },
  };
}

/** The uPlot charts of one page, each following its box's width: `add(box, opts, data)` draws one (legend not live,
 * `height` unless `opts` says otherwise) and returns it; `clear()` removes them all, `destroy()` also stops
 * watching the boxes. */
export function chartSet({ height = 240 } = {}) {
  ensureCss();
  const charts = [];
  const observer = new ResizeObserver((entries) => {
    for (const e of entries) if (e.target.chart) e.target.chart.setSize({ width: Math.max(280, e.target.clientWidth), height: e.target.chart.height });
  });
  return {
    add(box, opts, data) {
      const c = new uPlot({ width: Math.max(280, box.clientWidth || 520), height, legend: { live: false }, ...opts }, data, box);
      charts.push(c);
      box.chart = c;
      observer.observe(box);
      return c;
    },
    clear() { charts.splice(0).forEach((c) => c.destroy()); },
    destroy() { this.clear(); observer.disconnect(); },
  };
}

/** A time axis's range (seconds) that spans an hour either side of a single point. */
export function timeRange(u, min, max) {
  return min === max ? [min - 3600, max + 3600] : [min, max];
}
