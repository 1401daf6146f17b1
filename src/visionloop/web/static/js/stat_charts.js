// Small charts of counts for the health and annotators pages: horizontal bars and histograms drawn with HTML and
// CSS (no canvas: every bar is a link to the images behind it, reachable with Tab), and uPlot lines for trends.
import uPlot from '../vendor/uplot/uPlot.esm.js';
import { ensureCss } from './charts.js';
import { fmtNumber, h } from './ui.js';

export const LINE_COLOURS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#be185d', '#4d7c0f'];

/** Horizontal bars: rows of {name, value, colour?, href?, title?, text?} (text: the value as shown), longest
 * first as given; `max` fixes the scale (e.g. 1 for rates). */
export function hbars(rows, { label, max = null, testid = null } = {}) {
  const top = max ?? Math.max(1, ...rows.map((r) => r.value || 0));
  return h('div', { class: 'hbars', role: 'list', 'aria-label': label, 'data-testid': testid },
    rows.map((r) => {
      const pct = r.value > 0 ? Math.max(1, Math.min(100, (r.value / top) * 100)) : 0;
      const inner = [
        h('span', { class: 'hbar-name', title: r.name }, r.name),
        h('span', { class: 'hbar-track' }, h('span', { class: 'hbar-fill',
          style: { width: `${pct}%`, background: r.colour || 'var(--primary)' } })),
        h('span', { class: 'hbar-value num' }, r.text ?? fmtNumber(r.value)),
      ];
      const attrs = { class: 'hbar', role: 'listitem', title: r.title || `${r.name}: ${r.text ?? fmtNumber(r.value)}`,
        'data-name': r.name, 'data-value': r.value ?? '' };
      return r.href ? h('a', { ...attrs, href: r.href }, inner) : h('div', attrs, inner);
    }));
}

/** Vertical bars over bins: [{label, value, href?, title?}]; the labels sit under the bars. */
export function histogram(bins, { label, testid = null } = {}) {
  const top = Math.max(1, ...bins.map((b) => b.value));
  return h('div', { class: 'histo', role: 'list', 'aria-label': label, 'data-testid': testid },
    bins.map((b) => {
      const pct = b.value > 0 ? Math.max(2, (b.value / top) * 100) : 0;
      const inner = [
        h('span', { class: 'histo-count num' }, b.value ? fmtNumber(b.value) : ''),
        h('span', { class: 'histo-col' }, h('span', { class: 'histo-bar', style: { height: `${pct}%` } })),
        h('span', { class: 'histo-label' }, b.label),
      ];
      const attrs = { class: `histo-bin${b.value ? '' : ' empty-bin'}`, role: 'listitem', title: b.title || b.label,
        'data-label': b.label, 'data-value': b.value };
      return b.href && b.value ? h('a', { ...attrs, href: b.href }, inner) : h('div', attrs, inner);
    }));
}

const DAY = 86400;
const DAY_STEPS = [DAY, 2 * DAY, 7 * DAY, 14 * DAY, 28 * DAY, 91 * DAY, 182 * DAY, 364 * DAY];
const dayLabel = (ts) => new Date(ts * 1000).toLocaleDateString(undefined, { month: 'short', day: 'numeric',
  timeZone: 'UTC' });

/** A line per series over days: `days` are 'YYYY-MM-DD' (UTC), `series` [{label, values (null: none)}].
 * Returns {destroy()}; the chart follows its box's width. */
export function trendChart(parent, days, series, { title = '', height = 240, yLabel = '', yRange = null } = {}) {
  ensureCss();
  const xs = days.map((d) => Date.parse(`${d}T00:00:00Z`) / 1000);
  const opts = {
    title, height, width: Math.max(280, parent.clientWidth || 560),
    legend: { live: false },
    // a day on either side: one day (or week) alone still reads as a date, not as a span of years
    scales: { x: { time: true, auto: false, range: [xs[0] - DAY, xs[xs.length - 1] + DAY] }, y: yRange ? { range: () => yRange } : { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC'), // the days are UTC days
    axes: [{ incrs: DAY_STEPS, values: (u, splits) => splits.map(dayLabel) }, { label: yLabel }],
    series: [{ label: 'day' }, ...series.map((s, i) => ({
      label: s.label, stroke: LINE_COLOURS[i % LINE_COLOURS.length], width: 2, points: { show: true, size: 6 },
      spanGaps: true,
    }))],
  };
  const chart = new uPlot(opts, [xs, ...series.map((s) => s.values)], parent);
  const observer = new ResizeObserver(() => chart.setSize({ width: Math.max(280, parent.clientWidth), height }));
  observer.observe(parent);
  return { destroy() { observer.disconnect(); chart.destroy(); } };
}
