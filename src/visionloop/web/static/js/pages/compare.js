// #/p/:project/compare/:a/:b — two runs side by side: metrics with their differences, per class, config changes.
import {api, projectPath} from '../api.js';
import {errorState, fmtDate, fmtMetric, h, pageHeader, projectHref} from '../ui.js';
import {metricLabel} from '../charts.js';
import {diffCell, splitPrefix} from '../metrics_view.js';

const runLink = (project, id) => h('a', {href: projectHref(project, `runs/${encodeURIComponent(id)}`)}, id);

export async function render(root, {project, a, b}) {
  let cmp;
  try {
    cmp = await api.get(projectPath(project, 'runs/compare'), {params: {a, b}});
  } catch (e) {
    root.replaceChildren(errorState(e, 'The comparison'));
    return;
  }
  root.replaceChildren(h('div', {class: 'compare-page'},
    pageHeader('Compare runs', 'Differences are B − A: green is better, red is worse.'),
    h('section', {class: 'card'}, runsTable(project, cmp.a, cmp.b)),
    h('section', {class: 'card'}, h('h2', {}, 'Metrics'), metricsTable(cmp.metrics)),
    h('section', {class: 'card'}, h('h2', {}, `Per class${cmp.split ? ` (${cmp.split} split)` : ''}`),
      perClassTable(cmp.per_class)),
    h('section', {class: 'card'}, h('h2', {}, 'Configuration differences'), configDiff(cmp.config))));
}

function runsTable(project, ra, rb) {
  return h('table', {class: 'table compare', id: 'compare-runs'},
    h('thead', {}, h('tr', {}, ...['', 'run', 'model', 'version', 'epochs', 'state', 'created'].map((t) => h('th', {}, t)))),
    h('tbody', {}, ...[['A', ra], ['B', rb]].map(([tag, r]) => h('tr', {}, h('td', {}, h('strong', {}, tag)),
      h('td', {}, runLink(project, r.id)), h('td', {}, r.model), h('td', {}, r.version || '–'),
      h('td', {class: 'num'}, r.epochs), h('td', {}, r.state), h('td', {}, fmtDate(r.created_at))))));
}

function metricsTable(metrics) {
  const keys = Object.keys(metrics || {}).filter((k) => !k.endsWith('seconds')
    && (typeof metrics[k].a === 'number' || typeof metrics[k].b === 'number')).sort(byImportance);
  if (!keys.length) return h('p', {class: 'muted'}, 'Neither run has metrics yet.');
  return h('table', {class: 'table compare', id: 'compare-metrics'},
    h('thead', {}, h('tr', {}, h('th', {}, 'metric'), h('th', {class: 'num'}, 'A'), h('th', {class: 'num'}, 'B'),
      h('th', {class: 'num'}, 'B − A'))),
    h('tbody', {}, ...keys.map((k) => h('tr', {}, h('td', {}, labelOf(k)), h('td', {class: 'num'}, fmtMetric(metrics[k].a)),
      h('td', {class: 'num'}, fmtMetric(metrics[k].b)), diffCell(metrics[k].a, metrics[k].b, k)))));
}

const ORDER = ['map', 'map50', 'map75', 'miou', 'balanced_accuracy', 'accuracy', 'mAP', 'macro_f1'];
function byImportance(x, y) {
  const rank = (k) => {
    const i = ORDER.indexOf(k.replace(/^(val|test)_/, ''));
    return (i < 0 ? 100 : i) + (k.startsWith('val_') ? 0.5 : 0);
  };
  return rank(x) - rank(y) || x.localeCompare(y);
}

const labelOf = (key) => `${splitPrefix(key)}${metricLabel(key)}`;

function perClassTable(perClass) {
  const names = Object.keys(perClass || {});
  if (!names.length) {
    return h('p', {class: 'muted'}, 'Not yet: per class metrics come with the report of each run (on the same split).');
  }
  const keys = [...new Set(names.flatMap((n) => Object.keys(perClass[n])))]
    .filter((k) => names.some((n) => typeof perClass[n][k]?.a === 'number')).sort(byImportance).slice(0, 3);
  const cell = (v) => h('td', {class: 'num'}, fmtMetric(v));
  return h('table', {class: 'table compare per-class', id: 'compare-per-class'},
    h('thead', {}, h('tr', {}, h('th', {}, 'class'),
      ...keys.flatMap((k) => [h('th', {class: 'num'}, `${metricLabel(k)} A`), h('th', {class: 'num'}, 'B'),
        h('th', {class: 'num'}, 'B − A')]))),
    h('tbody', {}, ...names.map((n) => h('tr', {}, h('td', {}, n), ...keys.flatMap((k) => {
      const m = perClass[n][k] || {};
      return [cell(m.a), cell(m.b), diffCell(m.a, m.b, k)];
    })))));
}

function configDiff(diff) {
  const rows = Object.entries(diff || {}).filter(([k]) => !['run_id', 'created_at'].includes(k));
  if (!rows.length) return h('p', {class: 'muted'}, 'Same configuration (apart from the run id and date).');
  const show = (v) => (v === undefined || v === null ? '–' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  return h('table', {class: 'table compare', id: 'compare-config'},
    h('thead', {}, h('tr', {}, h('th', {}, 'setting'), h('th', {}, 'A'), h('th', {}, 'B'))),
    h('tbody', {}, ...rows.map(([k, v]) => h('tr', {}, h('td', {}, k), h('td', {}, show(v.a)), h('td', {}, show(v.b))))));
}
