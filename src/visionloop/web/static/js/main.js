// The app shell: a hash router that loads each page module on demand, and the top bar.
//
// A page is an ES module exporting `async function render(root, params)` and, optionally, `dispose()` (called when
// the page is left). `root` is a fresh <div class="page"> in <main id="main"> (a page may add classes to it, e.g.
// 'wide'); `params` = {project, id, run, a, b, query, session, role, hash}:
// the parts of the route, the hash's query string as an object, the signed-in session ({user, projects}) and the
// user's role in the route's project ('' outside a project).

import { ApiError, api, session, token, roleAllows, projectPath } from './api.js';
import { h, replaceChildren, errorState, spinner, projectHref, taskLabel, progressBar, JOB_KINDS } from './ui.js';

const ROUTES = [
  ['signin', 'pages/signin.js', { public: true }],
  ['', 'pages/projects.js'],
  ['p/:project', 'pages/dashboard.js'],
  ['p/:project/images', 'pages/browse.js'],
  ['p/:project/annotate/:id', 'editor/editor.js'],
  ['p/:project/train', 'pages/train.js'],
  ['p/:project/runs/:run', 'pages/run.js'],
  ['p/:project/compare/:a/:b', 'pages/compare.js'],
  ['p/:project/models', 'pages/models.js'],
  ['p/:project/import', 'pages/import.js'],
  ['p/:project/jobs', 'pages/jobs.js'],
  ['p/:project/queue', 'pages/queue.js'],
  ['p/:project/review', 'pages/review.js'],
  ['p/:project/work', 'pages/work.js'],
  ['p/:project/webhooks', 'pages/webhooks.js'],
  ['p/:project/annotators', 'pages/annotators.js'],
  ['p/:project/health', 'pages/health.js'],
  ['p/:project/health/label-errors', 'pages/label_errors.js'],
  ['p/:project/health/duplicates', 'pages/duplicates.js'],
  ['p/:project/health/outliers', 'pages/outliers.js'],
  ['p/:project/drift', 'pages/drift.js'],
  ['p/:project/loop', 'pages/loop.js'],
];

// The project pages in the top bar, with the role each needs to be shown; a [label, [...pages]] entry is a menu (one
// that leaves a single page for the user's role is that page's link).
const NAV = [
  ['', 'Dashboard', 'viewer'],
  ['images', 'Images', 'viewer'],
  ['health', 'Health', 'viewer'],
  ['Label', [
    ['queue', 'Queue', 'annotator'],
    ['review', 'Review', 'reviewer'],
    ['work', 'Work', 'admin'],
    ['annotators', 'Annotators', 'reviewer'],
  ]],
  ['Models', [
    ['train', 'Train', 'admin'],
    ['models', 'Models', 'viewer'],
    ['loop', 'Loop', 'viewer'],
    ['drift', 'Drift', 'viewer'],
  ]],
  ['jobs', 'Jobs', 'viewer'],
  ['Admin', [
    ['import', 'Import', 'admin'],
    ['webhooks', 'Webhooks', 'admin'],
  ]],
];

/** The route of a hash: {module, params, options} or null. '#/p/x/images?split=train' -> browse with query. */
export function matchRoute(hash) {
  const raw = hash.replace(/^#\/?/, '');
  const [path, queryText = ''] = raw.split('?');
  const parts = path.split('/').filter(Boolean);
  for (const [pattern, module, options = {}] of ROUTES) {
    const want = pattern.split('/').filter(Boolean);
    if (want.length !== parts.length) continue;
    const params = {};
    const ok = want.every((w, i) => {
      if (w.startsWith(':')) {
        params[w.slice(1)] = decodeURIComponent(parts[i]);
        return true;
      }
      return w === parts[i];
    });
    if (ok) {
      params.query = Object.fromEntries(new URLSearchParams(queryText));
      return { module, params, options };
    }
  }
  return null;
}

const shell = {
  topbar: null,
  main: null,
  page: null,
  renderId: 0,
  jobTimer: null,
  project: '',
};

function isActive(rest, current) {
  return current === rest || (rest === 'images' && current === 'annotate')
    || (rest === 'train' && (current === 'runs' || current === 'compare'));
}

function navLink(project, [rest, label], current, cls = 'nav-link') {
  const active = isActive(rest, current);
  return h('a', { href: projectHref(project, rest), class: active ? `${cls} active` : cls,
    'aria-current': active ? 'page' : null }, label);
}

// A menu is a <details>: it opens with a click, Enter or Space, and closes on Escape, a click elsewhere or a choice.
function navMenu(project, label, pages, current) {
  const active = pages.some(([rest]) => isActive(rest, current));
  return h('details', { class: 'nav-group', 'data-menu': label },
    h('summary', { class: active ? 'nav-link active' : 'nav-link' }, label),
    h('div', { class: 'nav-menu', role: 'menu' }, pages.map((p) => navLink(project, p, current, 'nav-menu-link'))));
}

function navLinks(project, role, current) {
  return NAV.map(([first, second, need]) => {
    if (!Array.isArray(second)) return roleAllows(role, need) ? navLink(project, [first, second], current) : null;
    const pages = second.filter(([, , want]) => roleAllows(role, want));
    if (pages.length <= 1) return pages.length ? navLink(project, pages[0], current) : null;
    return navMenu(project, first, pages, current);
  }).filter(Boolean);
}

function closeMenus(except = null) {
  for (const d of document.querySelectorAll('.topbar details.nav-group[open]')) if (d !== except) d.open = false;
}

document.addEventListener('click', (e) => {
  const menu = e.target instanceof Element ? e.target.closest('details.nav-group') : null;
  closeMenus(menu);
  if (menu && e.target.closest('a')) menu.open = false;
});
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && document.querySelector('.topbar details.nav-group[open]')) closeMenus();
});

function projectSwitcher(s, project) {
  if (!s || s.projects.length < 2) return h('span', { class: 'topbar-project', title: 'Project' }, project);
  const select = h('select', { class: 'topbar-select', 'aria-label': 'Project',
    onchange: () => { location.hash = projectHref(select.value); } },
  s.projects.map((p) => h('option', { value: p.name, selected: p.name === project ? true : null }, p.name)));
  select.value = project;
  return select;
}

function userMenu(s, role) {
  if (!s) return null;
  const signOut = async () => {
    await api.signOut();
    location.hash = '#/signin';
  };
  return h('div', { class: 'topbar-user' },
    h('span', { class: 'user-name', title: 'Signed in as' }, s.user),
    role ? h('span', { class: `role-badge role-${role}`, title: 'Your role in this project' }, role) : null,
    h('button', { class: 'link-button', onclick: signOut }, 'Sign out'));
}

function renderTopbar(params, s, route) {
  const project = params.project || '';
  const info = s && project ? s.projects.find((p) => p.name === project) : null;
  const current = route ? route.module.split('/').pop().replace('.js', '') : '';
  const editing = params.query && params.query.item ? 'queue' : 'annotate';  // the editor in work mode: the queue's
  const section = { dashboard: '', browse: 'images', editor: editing, run: 'runs', compare: 'compare',
    label_errors: 'health', duplicates: 'health', outliers: 'health' }[current]
    ?? current;
  const left = [h('a', { class: 'brand', href: '#/' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }), 'visionloop')];
  if (project) {
    left.push(h('span', { class: 'crumb-sep', 'aria-hidden': 'true' }, '/'), projectSwitcher(s, project));
    if (info) left.push(h('span', { class: 'task-pill' }, taskLabel(info.task)));
  }
  replaceChildren(shell.topbar,
    h('div', { class: 'topbar-left' }, left),
    project ? h('nav', { class: 'topbar-nav', 'aria-label': 'Project pages' }, navLinks(project, params.role, section))
      : h('nav', { class: 'topbar-nav' }),
    h('div', { class: 'topbar-right' },
      h('a', { id: 'job-indicator', class: 'job-indicator', hidden: true, href: project ? projectHref(project, 'jobs') : '#/' }),
      h('span', { id: 'pending-edits', class: 'pending-edits', hidden: true, title: 'Edits saved in this browser, waiting for the server' }),
      userMenu(s, params.role)));
  watchJobs(project);
  refreshPending();
}

// ---- the running job of the project, in the top bar ------------------------------------------------------------

function showJob(job) {
  const el = document.getElementById('job-indicator');
  if (!el) return;
  if (!job) {
    el.hidden = true;
    return;
  }
  const p = job.progress || {};
  const kind = JOB_KINDS[job.kind] || job.kind;
  const pct = typeof p.fraction === 'number' ? ` ${Math.round(p.fraction * 100)}%` : '';
  el.hidden = false;
  el.title = `${kind} ${job.state}${p.message ? `: ${p.message}` : ''} (open the jobs page)`;
  replaceChildren(el, h('span', { class: 'job-kind' }, job.state === 'queued' ? `${kind} queued` : `${kind}${pct}`),
    progressBar(job.state === 'running' ? p.fraction : null, `${kind} progress`));
}

function activeJob(jobs) {
  return jobs.find((j) => j.state === 'running') || jobs.find((j) => j.state === 'queued') || null;
}

// a page that lists the jobs anyway (the jobs page) passes them on, so the top bar is as fresh as the page
window.addEventListener('vl-jobs', (e) => {
  if (e.detail && e.detail.project === shell.project) showJob(activeJob(e.detail.jobs || []));
});

function watchJobs(project) {
  clearTimeout(shell.jobTimer);
  shell.project = project;
  if (!project) return;
  const tick = async () => {
    if (shell.project !== project || !token.get()) return;
    let delay = 3000;
    try {
      const jobs = await api.get(projectPath(project, 'jobs'), { params: { limit: 20 } });
      const list = Array.isArray(jobs) ? jobs : (jobs && jobs.items) || [];
      const active = activeJob(list);
      showJob(active);
      if (!active) delay = 10000;
    } catch (e) {
      showJob(null);
      if (e instanceof ApiError && (e.status === 404 || e.status === 403)) return; // no jobs here
      delay = 15000;
    }
    if (shell.project === project) shell.jobTimer = setTimeout(tick, delay);
  };
  tick();
}

// ---- edits waiting in this browser (offline.js, when present) --------------------------------------------------

let offline = null;
let offlineLoading = null;

function loadOffline() {
  if (!offlineLoading) {
    offlineLoading = import('./offline.js').then((m) => {
      offline = m;
      const onChange = () => refreshPending();
      for (const name of ['onChange', 'onPendingChange', 'subscribe']) {
        if (typeof m[name] === 'function') {
          m[name](onChange);
          break;
        }
      }
      if (m.events && typeof m.events.addEventListener === 'function') m.events.addEventListener('change', onChange);
      return m;
    }).catch(() => null);
  }
  return offlineLoading;
}

async function refreshPending() {
  const m = offline || await loadOffline();
  const el = document.getElementById('pending-edits');
  if (!el || !m || typeof m.pendingCount !== 'function') return;
  let n = 0;
  try {
    n = await m.pendingCount();
  } catch {
    return;
  }
  el.hidden = !n;
  el.textContent = n === 1 ? '1 edit waiting to be sent' : `${n} edits waiting to be sent`;
}

window.addEventListener('vl-pending-change', () => refreshPending());
window.addEventListener('online', () => refreshPending());
setInterval(() => refreshPending(), 5000);

// ---- routing ----------------------------------------------------------------------------------------------------

async function disposePage() {
  const page = shell.page;
  shell.page = null;
  if (page && typeof page.dispose === 'function') {
    try {
      await page.dispose();
    } catch (e) {
      console.error('dispose failed', e);
    }
  }
}

function notFound(root, what) {
  replaceChildren(root, h('div', { class: 'empty' }, h('h3', {}, 'Page not found'),
    h('p', {}, what), h('a', { class: 'button primary', href: '#/' }, 'Go to your projects')));
}

async function route() {
  const renderId = ++shell.renderId;
  const hash = location.hash || '#/';
  const found = matchRoute(hash);
  await disposePage();
  if (renderId !== shell.renderId) return;
  // each page gets its own element: a page left while it still loads writes into a detached one, never the next page
  const root = h('div', { class: 'page' }, spinner());
  replaceChildren(shell.main, root);
  if (!found) {
    renderTopbar({}, await session.get().catch(() => null), null);
    notFound(root, `Nothing lives at ${hash}.`);
    return;
  }
  const { module, params, options } = found;
  params.hash = hash;
  let s = null;
  if (!options.public) {
    if (!token.get()) {
      sessionStorage.setItem('vl_next', hash);
      location.hash = '#/signin';
      return;
    }
    try {
      s = await session.get();
    } catch (e) {
      if (renderId !== shell.renderId) return;
      if (e instanceof ApiError && e.status === 401) return; // api.js went to #/signin
      renderTopbar({}, null, null);
      replaceChildren(root, errorState(e, 'Your session'));
      return;
    }
  }
  if (renderId !== shell.renderId) return;
  params.session = s;
  params.role = '';
  if (params.project && s) {
    const info = s.projects.find((p) => p.name === params.project);
    if (!info) {
      renderTopbar({}, s, null);
      notFound(root, `There is no project named "${params.project}" that you can open.`);
      return;
    }
    params.role = info.role;
  }
  document.body.dataset.page = module.split('/').pop().replace('.js', '');
  if (!options.public) renderTopbar(params, s, found);
  else replaceChildren(shell.topbar);
  shell.topbar.hidden = Boolean(options.public);
  let page;
  try {
    page = await import(`./${module}`);
  } catch (e) {
    console.error(e);
    if (renderId === shell.renderId) {
      replaceChildren(root, errorState({ detail: `${module} is not available (${e.message}).` }, 'This page'));
    }
    return;
  }
  if (renderId !== shell.renderId) return;
  shell.page = page;
  document.title = params.project ? `${params.project} · visionloop` : 'visionloop';
  try {
    await page.render(root, params);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return;
    console.error(e);
    if (renderId === shell.renderId) replaceChildren(root, errorState(e, 'This page'));
  }
}

export function start() {
  shell.topbar = document.getElementById('topbar');
  shell.main = document.getElementById('main');
  shell.main.className = '';
  window.addEventListener('hashchange', route);
  route();
}

start();
