// Annotators (reviewers and admins): each person's speed, acceptance rate, honeypot score and agreement with the
// others, as a table and bar charts, and the trend over days or weeks (uPlot), from GET /projects/{p}/annotators.
// Choosing an annotator (a click, or J/K and Enter) shows their honeypot answers (GET .../annotators/{name}/honeypots)
// and links to the images they annotated (the browse page filtered by annotator).
import { api, projectPath, roleAllows } from '../api.js';
import {
  emptyState, errorState, fmtDate, fmtDuration, fmtNumber, h, keymap, pageHeader, plural, projectHref,
  replaceChildren, spinner,
} from '../ui.js';
import { LINE_COLOURS, hbars, trendChart } from '../stat_charts.js';

const HONEYPOT_PAGE = 20;
// what the trend chart can show, per day or week: [key, label, value of a period's counts, y range]
const TREND_METRICS = [
  ['images', 'Images annotated', (p) => p.images, null],
  ['objects', 'Objects annotated', (p) => p.objects, null],
  ['hours', 'Hours worked', (p) => p.hours, null],
  ['images_per_hour', 'Images per hour', (p) => (p.hours > 0 ? p.images / p.hours : null), null],
  ['acceptance', 'Acceptance rate', (p) => (p.approved + p.rejected ? p.approved / (p.approved + p.rejected) : null), [0, 1]],
  ['honeypot', 'Honeypot score', (p) => (p.honeypots.length ? p.honeypots.reduce((a, b) => a + b, 0) / p.honeypots.length : null), [0, 1]],
];

let state = null;

export function dispose() {
  if (!state) return;
  if (state.unbind) state.unbind();
  if (state.chart) state.chart.destroy();
  state = null;
}

const pct = (v) => (v === null || v === undefined ? '–' : `${Math.round(v * 100)}%`);
const rate = (v) => (v === null || v === undefined ? '–' : v >= 10 ? fmtNumber(Math.round(v)) : v.toFixed(1));

/** Monday (UTC) of the week of 'YYYY-MM-DD'. */
export function weekOf(day) {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() - ((d.getUTCDay() + 6) % 7));
  return d.toISOString().slice(0, 10);
}

/** Per annotator, the days (or weeks) with summed counts: Map name -> Map period -> counts. */
export function periods(items, byWeek) {
  const out = new Map();
  for (const a of items) {
    const m = new Map();
    for (const d of a.days) {
      const key = byWeek ? weekOf(d.day) : d.day;
      const p = m.get(key) || { images: 0, objects: 0, hours: 0, approved: 0, rejected: 0, honeypots: [] };
      p.images += d.images; p.objects += d.objects; p.hours += d.hours; p.approved += d.approved; p.rejected += d.rejected;
      if (d.honeypot_score !== null && d.honeypot_score !== undefined) p.honeypots.push(d.honeypot_score);
      m.set(key, p);
    }
    out.set(a.name, m);
  }
  return out;
}

function section(title, aside, ...body) {
  return h('section', { class: 'card section' }, h('div', { class: 'section-head' }, h('h2', {}, title), aside), body);
}

function table(st) {
  const rows = st.items.map((a, i) => h('tr', {
    class: `annotator-row${st.selected === a.name ? ' selected' : ''}`, 'data-name': a.name, tabindex: 0,
    onclick: () => st.select(a.name), onkeydown: (e) => { if (e.key === 'Enter') st.select(a.name); },
  },
  h('td', {}, h('i', { class: 'swatch', style: { background: LINE_COLOURS[i % LINE_COLOURS.length] } }), ' ',
    h('strong', {}, a.name), ' ', h('span', { class: 'muted' }, a.role)),
  h('td', { class: 'num', 'data-col': 'images' }, fmtNumber(a.images)),
  h('td', { class: 'num', 'data-col': 'objects' }, fmtNumber(a.objects)),
  h('td', { class: 'num', 'data-col': 'hours' }, a.hours ? fmtDuration(a.hours * 3600) : '–'),
  h('td', { class: 'num', 'data-col': 'images_per_hour' }, rate(a.images_per_hour)),
  h('td', { class: 'num', 'data-col': 'objects_per_hour' }, rate(a.objects_per_hour)),
  h('td', { class: 'num', 'data-col': 'seconds_per_image' },
    a.median_seconds_per_image === null ? '–' : fmtDuration(a.median_seconds_per_image)),
  h('td', { class: 'num', 'data-col': 'acceptance', title: `${a.approved} approved, ${a.rejected} rejected` },
    pct(a.acceptance_rate)),
  h('td', { class: 'num', 'data-col': 'honeypot', title: `${plural(a.honeypots || 0, 'honeypot')}` },
    pct(a.honeypot_score), a.honeypots ? h('span', { class: 'muted' }, ` (${a.honeypots})`) : null),
  h('td', { class: 'num', 'data-col': 'agreement', title: `${plural(a.consensus_answers, 'consensus answer')}` },
    pct(a.agreement))));
  return h('div', { class: 'table-wrap' }, h('table', { class: 'table annotators-table', 'data-testid': 'annotators-table' },
    h('thead', {}, h('tr', {}, ['Annotator', 'Images', 'Objects', 'Time', 'Images / h', 'Objects / h',
      'Time / image', 'Accepted', 'Honeypots', 'Agreement'].map((t, i) => h('th', { class: i ? 'num' : null }, t)))),
    h('tbody', {}, rows)));
}

/** The people with any work to show (the table lists every user of the project). */
const active = (items) => items.filter((a) => a.images || a.approved || a.rejected || a.honeypots || a.consensus_answers);

function barCharts(st) {
  const href = (name) => `${projectHref(st.project, 'annotators')}?name=${encodeURIComponent(name)}`;
  const colour = (i) => LINE_COLOURS[i % LINE_COLOURS.length];
  const chart = (title, testid, key, fmt, max) => h('div', { class: 'card section annotator-chart' },
    h('h3', {}, title),
    hbars(st.items.map((a, i) => [a, i]).filter(([a]) => active([a]).length).map(([a, i]) => ({ name: a.name,
      value: a[key] ?? 0, text: fmt(a[key]), colour: colour(i), href: href(a.name) })), { label: title, max, testid }));
  return h('div', { class: 'annotator-charts' },
    chart('Images per hour', 'chart-images-per-hour', 'images_per_hour', rate, null),
    chart('Acceptance rate', 'chart-acceptance', 'acceptance_rate', pct, 1),
    chart('Honeypot score', 'chart-honeypot', 'honeypot_score', pct, 1),
    chart('Agreement with others', 'chart-agreement', 'agreement', pct, 1));
}

function trendSection(st) {
  const box = h('div', { class: 'trend-chart', 'data-testid': 'trend-chart' });
  const metric = h('select', { id: 'trend-metric', 'aria-label': 'What the trend shows',
    onchange: () => { st.metric = metric.value; draw(); } },
  TREND_METRICS.map(([k, label]) => h('option', { value: k }, label)));
  metric.value = st.metric;
  const unit = h('select', { id: 'trend-unit', 'aria-label': 'Per day or per week',
    onchange: () => { st.byWeek = unit.value === 'week'; draw(); } },
  h('option', { value: 'day' }, 'per day'), h('option', { value: 'week' }, 'per week'));
  unit.value = st.byWeek ? 'week' : 'day';
  function draw() {
    if (st.chart) st.chart.destroy();
    st.chart = null;
    box.replaceChildren();
    const per = periods(st.items, st.byWeek);
    const keys = [...new Set([...per.values()].flatMap((m) => [...m.keys()]))].sort();
    if (!keys.length) {
      box.append(emptyState('No activity yet', 'Saves, reviews and honeypot answers appear here by day.'));
      return;
    }
    const [, label, value, range] = TREND_METRICS.find(([k]) => k === st.metric);
    const series = st.items.filter((a) => a.days.length).map((a) => ({ label: a.name,
      values: keys.map((k) => (per.get(a.name).has(k) ? value(per.get(a.name).get(k)) : null)) }));
    st.chart = trendChart(box, keys, series, { yLabel: label, yRange: range });
  }
  st.drawTrend = draw;
  return section('Trend', h('div', { class: 'row' }, metric, unit), box);
}

async function detail(st, host) {
  const a = st.items.find((x) => x.name === st.selected);
  if (!a) {
    replaceChildren(host);
    return;
  }
  const images = `${projectHref(st.project, 'images')}?annotator=${encodeURIComponent(a.name)}`;
  const list = h('div', {}, spinner());
  replaceChildren(host, section(`${a.name}`, h('div', { class: 'row' },
    h('a', { class: 'button small', href: images, 'data-testid': 'annotator-images' }, 'Images they annotated')),
  h('p', { class: 'muted' }, `${plural(a.images, 'image')} and ${plural(a.objects, 'object')} saved in `
    + `${a.hours ? fmtDuration(a.hours * 3600) : 'no measured time'}; ${plural(a.approved, 'approval')}, `
    + `${plural(a.rejected, 'rejection')}; ${plural(a.consensus_answers, 'consensus answer')}.`),
  h('h3', {}, 'Honeypot answers'), list));
  try {
    const page = await api.get(projectPath(st.project, `annotators/${encodeURIComponent(a.name)}/honeypots`),
      { params: { limit: HONEYPOT_PAGE } });
    if (st.selected !== a.name) return;
    replaceChildren(list, page.items.length ? h('div', { class: 'table-wrap' },
      h('table', { class: 'table', 'data-testid': 'honeypot-answers' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Image'), h('th', { class: 'num' }, 'Score'), h('th', { class: 'num' }, 'Matched'),
          h('th', { class: 'num' }, 'Missed'), h('th', { class: 'num' }, 'Extra'), h('th', {}, 'When'))),
        h('tbody', {}, page.items.map((it) => {
          const s = it.score || {};
          return h('tr', {},
            h('td', {}, h('a', { href: projectHref(st.project, `annotate/${it.image_id}`) }, `Image ${it.image_id}`)),
            h('td', { class: 'num', 'data-col': 'score' }, pct(s.score)),
            h('td', { class: 'num' }, s.matched ?? '–'), h('td', { class: 'num' }, s.missed ?? '–'),
            h('td', { class: 'num' }, s.extra ?? '–'), h('td', {}, fmtDate(it.created_at)));
        }))),
      page.total > page.items.length ? h('p', { class: 'muted' }, `The newest ${page.items.length} of ${page.total}.`) : null)
      : emptyState('No honeypot answers yet', 'Gold images mixed into their queue are scored here when they submit them.'));
  } catch (e) {
    replaceChildren(list, errorState(e, 'The honeypot answers'));
  }
}

function keysHelp() {
  return h('p', { class: 'muted health-keys' }, 'Keys: ', h('kbd', {}, 'J'), ' / ', h('kbd', {}, 'K'),
    ' next / previous annotator  ', h('kbd', {}, 'Enter'), ' their images  ', h('kbd', {}, 'W'), ' days / weeks');
}

export async function render(root, params) {
  dispose();
  const { project, role } = params;
  if (!roleAllows(role, 'reviewer')) {
    replaceChildren(root, emptyState('Reviewers only', 'The annotators\u2019 statistics are for reviewers and admins.'));
    return;
  }
  const st = { project, items: [], selected: params.query.name || null, metric: 'images', byWeek: false, chart: null,
    unbind: null, drawTrend: null };
  state = st;
  const body = h('div', {}, spinner());
  replaceChildren(root, h('div', { 'data-testid': 'annotators-page' },
    pageHeader('Annotators', 'Speed, acceptance, honeypot scores and agreement of each person, and their trend.'),
    body));
  let answer;
  try {
    answer = await api.get(projectPath(project, 'annotators'));
  } catch (e) {
    replaceChildren(body, errorState(e, 'The annotator statistics'));
    return;
  }
  if (state !== st) return;
  // the people who worked first (by name), then the other users of the project
  st.items = [...active(answer.items), ...answer.items.filter((a) => !active([a]).length)];
  if (!st.items.length) {
    replaceChildren(body, emptyState('No annotators yet', 'Add users to the project and give them work.'));
    return;
  }
  const detailHost = h('div', { 'data-testid': 'annotator-detail' });
  const tableHost = h('div', {});
  st.select = (name) => {
    st.selected = name;
    history.replaceState(null, '', `${projectHref(project, 'annotators')}?name=${encodeURIComponent(name)}`);
    replaceChildren(tableHost, section('Per annotator', h('span', { class: 'muted' },
      `time counts gaps between saves up to ${fmtDuration(answer.gap_cap_s)}`), table(st)));
    detail(st, detailHost);
  };
  replaceChildren(tableHost, section('Per annotator', h('span', { class: 'muted' },
    `time counts gaps between saves up to ${fmtDuration(answer.gap_cap_s)}`), table(st)));
  replaceChildren(body, tableHost, detailHost, barCharts(st), trendSection(st), keysHelp());
  st.drawTrend();
  if (st.selected) detail(st, detailHost);
  const move = (step) => {
    const i = st.items.findIndex((a) => a.name === st.selected);
    const next = st.items[Math.max(0, Math.min(st.items.length - 1, i < 0 ? 0 : i + step))];
    st.select(next.name);
  };
  st.unbind = keymap.bind({
    j: () => move(1), k: () => move(-1),
    enter: (e) => {
      if (!st.selected || (e.target.closest && e.target.closest('a, button, tr'))) return false; // their own Enter
      location.hash = `${projectHref(project, 'images')}?annotator=${encodeURIComponent(st.selected)}`;
      return true;
    },
    w: () => { const u = document.getElementById('trend-unit'); u.value = u.value === 'week' ? 'day' : 'week'; u.dispatchEvent(new Event('change')); },
  });
}
