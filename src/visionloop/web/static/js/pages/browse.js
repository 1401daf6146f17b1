// Browse a project's images: a grid of thumbnails that stays fast at 100,000 images, filters, the count of
// matches, and actions on many images at once.
//
// Fast at any size: pages come by keyset (GET images?after=<last id>), so the 500th page costs what the first does;
// a page is fetched only when the end of what is loaded nears the screen; the grid is windowed (only the rows on
// screen and a few around them are in the page, the rest is empty space of the right height), so the page holds the
// same few dozen cards after scrolling through 100,000 images; thumbnails are <img loading=lazy> fetched with the
// session cookie and cached forever by the browser. Filters live in the URL (#/p/x/images?class=RBC&annotated=false),
// so a filtered view can be bookmarked and the editor's next/previous follow the same filters.
import { ApiError, api, projectPath, roleAllows } from '../api.js';
import {
  confirmDialog, debounce, emptyState, errorState, fmtNumber, h, keymap, pageHeader, plural, projectHref,
  replaceChildren, spinner, toast, toastError,
} from '../ui.js';
import { openSimilar } from '../similar_strip.js';

const FIRST_PAGE = 60; // a screenful and more
const NEXT_PAGE = 240;
const ID_PAGE = 500; // the API's largest page: used to collect the ids of "all matching"
const BULK_CHUNK = 5000; // the API takes up to 10,000 ids a request
const THUMB_SIZE = 256;
const MIN_CARD = 150; // px: the narrowest card; the columns fill the width
const GAP = 12;
const META_H = 31; // px under the picture: the name line
const BUFFER_ROWS = 4; // rows kept above and below the screen
const CARD_CACHE = 1500; // cards kept built for scrolling back
const POSITION_KEY = 'vl_browse_position';
const RESTORE_MAX = 20000; // back from the editor, the grid reloads up to this many images to return to its place
// the health page's links: a box size (sqrt of its area, px) or aspect (width / height) bin, a folder; shown as chips
const BOX_FILTERS = ['box_min', 'box_max', 'aspect_min', 'aspect_max'];
const FILTER_KEYS = ['q', 'class', 'annotated', 'split', 'review', 'annotator', ...BOX_FILTERS, 'folder'];
const REVIEW_STATES = [['todo', 'To do'], ['in_progress', 'In progress'], ['submitted', 'Waiting for review'],
  ['approved', 'Approved'], ['rejected', 'Rejected']];
const SPLITS = [['train', 'Train'], ['val', 'Validation'], ['test', 'Test'], ['none', 'In no split']];

function boxFilterText(f) {
  const range = (lo, hi, unit) => (lo && hi ? `${lo}–${hi}${unit}` : lo ? `≥ ${lo}${unit}` : `< ${hi}${unit}`);
  const parts = [];
  if (f.box_min || f.box_max) parts.push(`size ${range(f.box_min, f.box_max, ' px')}`);
  if (f.aspect_min || f.aspect_max) parts.push(`aspect ${range(f.aspect_min, f.aspect_max, '')}`);
  return parts.length ? `Box ${parts.join(', ')}` : '';
}

let state = null;

export function dispose() {
  if (!state) return;
  state.disposed = true;
  if (state.observer) state.observer.disconnect();
  if (state.onScroll) window.removeEventListener('scroll', state.onScroll);
  if (state.unbind) state.unbind();
  if (state.abort) state.abort.abort();
  state = null;
}

function filtersFrom(query) {
  const filters = {};
  for (const key of FILTER_KEYS) if (query[key]) filters[key] = query[key];
  return filters;
}

function hashFor(project, filters) {
  const q = new URLSearchParams(filters).toString();
  return `${projectHref(project, 'images')}${q ? `?${q}` : ''}`;
}

// ---- the filter panel -------------------------------------------------------------------------------------------

function select(id, label, options, value, onChange, { disabled = false, hint = null } = {}) {
  const el = h('select', { id, disabled, onchange: () => onChange(el.value) },
    h('option', { value: '' }, 'Any'),
    options.map(([v, text]) => h('option', { value: v }, text)));
  el.value = value || '';
  return h('div', { class: 'field' }, h('label', { for: id }, label), el, hint ? h('span', { class: 'hint' }, hint) : null);
}

function filterPanel(st, classes, versions) {
  const f = st.filters;
  const set = (key) => (value) => st.setFilter(key, value);
  const q = h('input', { type: 'search', id: 'filter-q', placeholder: 'part of a file name', value: f.q || '',
    oninput: debounce(() => st.setFilter('q', q.value.trim()), 300) });
  const annotator = h('input', { type: 'text', id: 'filter-annotator', placeholder: 'user name', value: f.annotator || '',
    list: 'annotator-names', autocomplete: 'off',
    oninput: debounce(() => st.setFilter('annotator', annotator.value.trim()), 400) });
  const names = h('datalist', { id: 'annotator-names' }, ['import', ...st.users].map((u) => h('option', { value: u })));
  const active = classes.filter((c) => c.active !== false);
  const latest = versions.length ? versions[versions.length - 1].name : null;
  return h('aside', { class: 'filters', 'aria-label': 'Filters' },
    h('div', { class: 'field' }, h('label', { for: 'filter-q' }, 'File name ',
      h('kbd', { class: 'faint', title: 'Press / to type here' }, '/')), q),
    select('filter-class', 'Class', active.map((c) => [c.name, c.name]), f.class, set('class')),
    select('filter-annotated', 'Annotated', [['true', 'Annotated'], ['false', 'Not annotated']], f.annotated, set('annotated')),
    select('filter-split', 'Split', SPLITS, f.split, set('split'), latest
      ? { hint: `Of version ${latest}, the latest.` } : { disabled: true, hint: 'Splits come with a dataset version.' }),
    select('filter-review', 'Review', REVIEW_STATES, f.review, set('review')),
    h('div', { class: 'field' }, h('label', { for: 'filter-annotator' }, 'Annotated by'), annotator, names),
    extraFilterChips(st),
    h('button', { class: 'link-button', id: 'clear-filters', hidden: !Object.keys(f).length,
      onclick: () => st.setFilters({}) }, 'Clear all filters'));
}

function extraFilterChips(st) {
  const f = st.filters;
  const chip = (testid, text, keys) => h('span', { class: 'chip', 'data-testid': testid }, text,
    h('button', { class: 'icon-button', title: 'Remove this filter', 'aria-label': `Remove the filter ${text}`,
      onclick: () => st.setFilters(Object.fromEntries(Object.entries(f).filter(([k]) => !keys.includes(k)))) }, '×'));
  const boxes = boxFilterText(f);
  const chips = [
    boxes ? chip('filter-boxes', boxes, BOX_FILTERS) : null,
    f.folder ? chip('filter-folder', f.folder === '/' ? 'No folder' : `Folder ${f.folder}`, ['folder']) : null,
  ].filter(Boolean);
  return chips.length ? h('div', { class: 'field' }, h('label', {}, 'Also'), h('div', { class: 'chips' }, chips)) : null;
}

// ---- the grid ---------------------------------------------------------------------------------------------------

function reviewBadge(stateName) {
  if (!stateName || stateName === 'todo') return null;
  const kind = { approved: 'ok', rejected: 'bad', submitted: 'info', in_progress: 'warn' }[stateName] || '';
  const label = Object.fromEntries(REVIEW_STATES)[stateName] || stateName;
  return h('span', { class: `badge thumb-flag ${kind}` }, label);
}

/** The file name without folders and extension, its middle left out when long (the end tells similar names
 * apart); the card's title has the whole name. */
export function shortName(name, max = 18) {
  const base = name.split('/').pop().replace(/\.[A-Za-z0-9]{2,5}$/, '');
  if (base.length <= max) return base;
  const tail = Math.ceil((max - 1) * 0.6);
  return `${base.slice(0, max - 1 - tail)}…${base.slice(-tail)}`;
}

function thumbCard(st, item) {
  const selected = st.isSelected(item.id);
  const check = h('input', { type: 'checkbox', class: 'thumb-check', checked: selected, tabindex: -1,
    'aria-label': `Select ${item.name}` });
  const card = h('a', {
    class: `thumb${selected ? ' selected' : ''}`, href: st.editorHref(item.id), 'data-id': item.id,
    title: item.name, onclick: (e) => st.onCardClick(e, item),
  },
  h('div', { class: 'thumb-img' }, h('img', { src: `${item.thumbnail_url}?size=${THUMB_SIZE}`, loading: 'lazy',
    decoding: 'async', alt: item.name, width: THUMB_SIZE, height: THUMB_SIZE })),
  check, reviewBadge(item.review_state),
  h('div', { class: 'thumb-meta' },
    h('span', { class: `dot${item.annotated ? ' on' : ''}`, title: item.annotated ? 'Annotated' : 'Not annotated' }),
    h('span', { class: 'thumb-name' }, shortName(item.name))));
  return card;
}

// ---- the page ---------------------------------------------------------------------------------------------------

export async function render(root, params) {
  dispose();
  const { project, role } = params;
  const st = {
    project, role, filters: filtersFrom(params.query), items: [], index: new Map(), nextAfter: null,
    done: false, loading: false, total: null, selected: new Set(), all: false, excluded: new Set(), anchor: null,
    observer: null, onScroll: null, unbind: null, abort: null, disposed: false, generation: 0, users: [], restore: null,
  };
  state = st;
  const p = (rest) => projectPath(project, rest);

  const grid = h('div', { class: 'thumb-grid', id: 'thumb-grid', role: 'list',
    // keyboard: Tab to an image, Space selects it (Shift+Space: the range from the last one), Enter opens it
    onkeydown: (e) => {
      const card = e.target.closest && e.target.closest('.thumb');
      if (!card || e.key !== ' ') return;
      e.preventDefault();
      const item = st.items[st.index.get(Number(card.dataset.id))];
      if (item) st.onCardClick({ target: card, shiftKey: e.shiftKey, ctrlKey: true, metaKey: false, preventDefault() {} }, item);
    } });
  const windowBox = h('div', { class: 'thumb-window' }, grid);
  const foot = h('div', { class: 'grid-foot' });
  const count = h('span', { class: 'count', id: 'match-count', 'aria-live': 'polite' }, '…');
  const selectionBar = h('div', { class: 'selection-bar', id: 'selection-bar', hidden: true });
  const bar = h('div', { class: 'browse-bar' }, count, h('span', { class: 'spacer' }), selectionBar);
  const panelHost = h('div', { class: 'filters-host' });
  const content = h('div', {}, bar, windowBox, foot);
  replaceChildren(root, h('div', { 'data-testid': 'browse-page' },
    pageHeader('Images', null,
      roleAllows(role, 'admin') ? h('a', { class: 'button', href: projectHref(project, 'import') }, 'Import images') : null),
    h('div', { class: 'browse-layout' }, panelHost, content)));

  st.editorHref = (id) => {
    const q = new URLSearchParams(st.filters).toString();
    return `${projectHref(project, `annotate/${id}`)}${q ? `?${q}` : ''}`;
  };
  st.isSelected = (id) => (st.all ? !st.excluded.has(id) : st.selected.has(id));
  st.selectedCount = () => (st.all ? Math.max(0, (st.total || 0) - st.excluded.size) : st.selected.size);

  function setSelected(id, on) {
    if (st.all) {
      if (on) st.excluded.delete(id); else st.excluded.add(id);
    } else if (on) st.selected.add(id); else st.selected.delete(id);
    const card = grid.querySelector(`.thumb[data-id="${id}"]`);
    if (card) {
      card.classList.toggle('selected', on);
      card.querySelector('.thumb-check').checked = on;
    }
  }

  function clearSelection() {
    st.all = false;
    st.selected.clear();
    st.excluded.clear();
    st.anchor = null;
    for (const card of grid.querySelectorAll('.thumb.selected')) {
      card.classList.remove('selected');
      card.querySelector('.thumb-check').checked = false;
    }
    renderSelectionBar();
  }

  st.onCardClick = (event, item) => {
    const onCheck = event.target.classList.contains('thumb-check');
    const selecting = st.selectedCount() > 0;
    if (!onCheck && !selecting && !event.shiftKey && !event.ctrlKey && !event.metaKey) {
      // open the editor; coming back, the grid returns to this place
      sessionStorage.setItem(POSITION_KEY, JSON.stringify({ hash: location.hash, index: st.index.get(item.id),
        scrollY: window.scrollY }));
      return;
    }
    event.preventDefault();
    if (event.shiftKey && st.anchor !== null && st.index.has(st.anchor)) {
      const [a, b] = [st.index.get(st.anchor), st.index.get(item.id)].sort((x, y) => x - y);
      for (let i = a; i <= b; i += 1) setSelected(st.items[i].id, true);
    } else {
      setSelected(item.id, !st.isSelected(item.id));
      st.anchor = item.id;
    }
    renderSelectionBar();
  };

  // ---- selection actions --------------------------------------------------------------------------------------
  async function selectedIds() {
    if (!st.all) return [...st.selected];
    const ids = [];
    let after = null;
    const note = toast('Collecting the matching images…', 'info', { timeout: 0 });
    try {
      for (;;) {
        const page = await api.get(p('images'), { params: { ...st.filters, after, limit: ID_PAGE } });
        for (const item of page.items) if (!st.excluded.has(item.id)) ids.push(item.id);
        note.update(`Collecting the matching images… ${fmtNumber(ids.length)} of ${fmtNumber(st.selectedCount())}`);
        if (page.next_after === null || page.next_after === undefined) break;
        after = page.next_after;
      }
    } finally {
      note.close();
    }
    return ids;
  }

  async function bulk(action, value, doneText) {
    const ids = await selectedIds();
    if (!ids.length) return;
    let changed = 0;
    try {
      for (let i = 0; i < ids.length; i += BULK_CHUNK) {
        const answer = await api.post(p('images/bulk'), { ids: ids.slice(i, i + BULK_CHUNK), action, value });
        changed += answer.changed;
      }
      toast(doneText(changed), 'success');
    } catch (e) {
      toastError(e, changed ? `Stopped after ${fmtNumber(changed)} images` : 'Not done');
    }
    clearSelection();
    reload();
  }

  async function assignSplit(value) {
    if (!value) return;
    if (value === 'auto') {
      await bulk('split', null, (n) => `${plural(n, 'image')} left to the versions to split.`);
      return;
    }
    const label = Object.fromEntries(SPLITS)[value] || value;
    await bulk('split', value, (n) => `${plural(n, 'image')} go to ${label.toLowerCase()} in the next dataset versions.`);
  }

  async function deleteSelected() {
    const n = st.selectedCount();
    const ok = await confirmDialog(
      `Delete ${plural(n, 'image')} and ${n === 1 ? 'its' : 'their'} annotations from ${project}? Dataset versions that hold them keep them; nothing else can bring them back.`,
      { confirm: `Delete ${plural(n, 'image')}`, danger: true, title: 'Delete images' });
    if (ok) await bulk('delete', null, (k) => `${plural(k, 'image')} deleted.`);
  }

  async function sendToReview() {
    await bulk('review', 'submitted', (n) => `${plural(n, 'image')} sent to review.`);
  }

  function renderSelectionBar() {
    const n = st.selectedCount();
    grid.classList.toggle('selecting', n > 0);
    selectionBar.hidden = n === 0 && !(st.total > 0);
    selectionBar.classList.toggle('idle', n === 0);
    const allButton = !st.all && st.total > 0 && n < st.total
      ? h('button', { class: 'small', id: 'select-all', onclick: () => {
        st.all = true;
        st.excluded.clear();
        st.selected.clear();
        for (const card of grid.querySelectorAll('.thumb')) {
          card.classList.add('selected');
          card.querySelector('.thumb-check').checked = true;
        }
        renderSelectionBar();
      } }, `Select all ${fmtNumber(st.total)} matching`) : null;
    if (n === 0) {
      replaceChildren(selectionBar, h('span', { class: 'muted' }, 'Tick an image\u2019s box to select it; shift-click selects a range.'), allButton);
      return;
    }
    const admin = roleAllows(role, 'admin');
    const split = admin ? h('select', { id: 'bulk-split', 'aria-label': 'Assign to a split',
      onchange: () => { const v = split.value; split.value = ''; assignSplit(v); } },
    h('option', { value: '' }, 'Assign to split…'), SPLITS.filter(([v]) => v !== 'none').map(([v, t]) => h('option', { value: v }, t)),
    h('option', { value: 'auto' }, 'Let versions choose'))
      : null;
    replaceChildren(selectionBar,
      h('strong', { id: 'selected-count' }, `${fmtNumber(n)} selected`),
      allButton, split,
      n === 1 && !st.all ? h('button', { class: 'small', id: 'bulk-similar', title: 'The images most like this one',
        onclick: () => { const id = [...st.selected][0]; openSimilar(project, st.items[st.index.get(id)] || { id }, role); } },
      'More like this') : null,
      roleAllows(role, 'reviewer') ? h('button', { class: 'small', id: 'bulk-review', onclick: sendToReview }, 'Send to review') : null,
      admin ? h('button', { class: 'small danger-outline', id: 'bulk-delete', onclick: deleteSelected }, 'Delete…') : null,
      h('button', { class: 'small', onclick: clearSelection, title: 'Esc' }, 'Clear'));
  }

  // ---- loading pages ------------------------------------------------------------------------------------------
  async function loadMore() {
    if (st.loading || st.done || st.disposed) return;
    st.loading = true;
    const generation = st.generation;
    replaceChildren(foot, spinner('Loading images…'));
    try {
      const restoring = st.restore && st.items.length <= st.restore.index;
      const limit = restoring ? ID_PAGE : st.items.length ? NEXT_PAGE : FIRST_PAGE;
      const page = await api.get(p('images'), { params: { ...st.filters, after: st.nextAfter, limit } });
      if (generation !== st.generation || st.disposed) return;
      for (const item of page.items) {
        st.index.set(item.id, st.items.length);
        st.items.push(item);
      }
      st.nextAfter = page.next_after ?? null;
      st.done = st.nextAfter === null;
      if (st.total === null && typeof page.total === 'number') setTotal(page.total);
      replaceChildren(foot, st.done && st.items.length ? h('span', {}, `All ${plural(st.items.length, 'image')} shown.`) : null);
      if (!st.items.length) showEmpty();
    } catch (e) {
      if (generation !== st.generation || st.disposed) return;
      if (e instanceof ApiError && e.status === 401) return;
      replaceChildren(foot, errorState(e, 'The images'),
        h('button', { onclick: () => { st.loading = false; loadMore(); } }, 'Try again'));
      st.loading = false;
      return;
    }
    st.loading = false;
    if (st.restore) {
      if (st.items.length <= st.restore.index && !st.done) {
        loadMore(); // on to the image the editor was opened from
        return;
      }
      const { scrollY } = st.restore;
      st.restore = null;
      layout(true);
      window.scrollTo(0, scrollY);
    }
    layout(true); // draws the new rows on screen, and asks for the next page when the screen is not full yet
  }

  // ---- the window of cards on screen ---------------------------------------------------------------------------
  const view = { cols: 0, rowH: 0, first: -1, last: -1, cards: new Map(), frame: 0 };

  function cardFor(item) {
    let card = view.cards.get(item.id);
    if (!card) {
      card = thumbCard(st, item);
      view.cards.set(item.id, card);
    } else {
      const on = st.isSelected(item.id);
      card.classList.toggle('selected', on);
      card.querySelector('.thumb-check').checked = on;
    }
    return card;
  }

  /** Place the rows that are on screen (and BUFFER_ROWS around them); `force` redraws the same range. */
  function layout(force = false) {
    if (st.disposed) return;
    const width = windowBox.clientWidth;
    if (!width) return;
    const cols = Math.max(1, Math.floor((width + GAP) / (MIN_CARD + GAP)));
    const cardW = (width - GAP * (cols - 1)) / cols;
    const cardH = Math.round((cardW * 3) / 4) + META_H;
    const rowH = cardH + GAP;
    const rows = Math.ceil(st.items.length / cols);
    if (cols !== view.cols || rowH !== view.rowH) {
      view.cols = cols;
      view.rowH = rowH;
      grid.style.gridTemplateColumns = `repeat(${cols}, minmax(0, 1fr))`;
      grid.style.gridAutoRows = `${cardH}px`;
      force = true;
    }
    windowBox.style.height = rows ? `${rows * rowH - GAP}px` : '0px';
    const top = -windowBox.getBoundingClientRect().top;
    const firstRow = Math.max(0, Math.floor(top / rowH) - BUFFER_ROWS);
    const lastRow = Math.min(rows, Math.ceil((top + window.innerHeight) / rowH) + BUFFER_ROWS);
    const first = firstRow * cols;
    const last = Math.min(st.items.length, lastRow * cols);
    if (force || first !== view.first || last !== view.last) {
      view.first = first;
      view.last = last;
      grid.style.transform = `translateY(${firstRow * rowH}px)`;
      grid.replaceChildren(...st.items.slice(first, last).map(cardFor));
      if (view.cards.size > CARD_CACHE) {
        for (const id of view.cards.keys()) {
          const i = st.index.get(id);
          if (i === undefined || i < first - CARD_CACHE / 2 || i > last + CARD_CACHE / 2) view.cards.delete(id);
        }
      }
    }
    // what is loaded ends within two screens: the next page
    if (!st.done && !st.loading && last >= st.items.length - cols * Math.ceil((2 * window.innerHeight) / rowH)) loadMore();
  }

  function scheduleLayout() {
    if (view.frame) return;
    view.frame = requestAnimationFrame(() => {
      view.frame = 0;
      layout();
    });
  }

  function setTotal(total) {
    st.total = total;
    count.textContent = Object.keys(st.filters).length
      ? `${plural(total, 'image')} match` : `${plural(total, 'image')}`;
    renderSelectionBar();
  }

  function showEmpty() {
    const filtered = Object.keys(st.filters).length > 0;
    replaceChildren(foot, filtered
      ? emptyState('No image matches these filters', 'Change or clear the filters on the left.',
        h('button', { onclick: () => st.setFilters({}) }, 'Clear all filters'))
      : emptyState('No images yet', roleAllows(role, 'admin')
        ? 'Import images from your computer (a folder, files or a zip, with annotations in any common format).'
        : 'An admin imports the images; come back then.',
      roleAllows(role, 'admin') ? h('a', { class: 'button primary', href: projectHref(project, 'import') }, 'Import images') : null));
  }

  async function loadCount() {
    const generation = st.generation;
    try {
      const answer = await api.get(p('images/count'), { params: st.filters });
      if (generation === st.generation && !st.disposed) setTotal(answer.total);
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 404) count.textContent = '';
    }
  }

  function reload() {
    st.generation += 1;
    st.items = [];
    st.index = new Map();
    st.nextAfter = null;
    st.done = false;
    st.loading = false;
    st.total = null;
    st.restore = null;
    view.cards.clear();
    view.first = -1;
    grid.replaceChildren();
    windowBox.style.height = '0px';
    window.scrollTo(0, 0);
    count.textContent = '…';
    loadCount();
    loadMore();
  }

  st.setFilters = (filters) => {
    st.filters = filters;
    history.replaceState(null, '', hashFor(project, filters));
    clearSelection();
    replaceChildren(panelHost, filterPanel(st, classes, versions));
    reload();
  };
  st.setFilter = (key, value) => {
    const next = { ...st.filters };
    if (value) next[key] = value; else delete next[key];
    if (JSON.stringify(next) === JSON.stringify(st.filters)) return;
    st.filters = next;
    history.replaceState(null, '', hashFor(project, next));
    clearSelection();
    // the fields stay as they are (the one being typed in keeps its focus)
    panelHost.querySelector('#clear-filters').hidden = !Object.keys(next).length;
    reload();
  };

  // back from the editor: return to the image it was opened from (the same filters, not too deep)
  try {
    const saved = JSON.parse(sessionStorage.getItem(POSITION_KEY) || 'null');
    sessionStorage.removeItem(POSITION_KEY);
    if (saved && saved.hash === location.hash && saved.index < RESTORE_MAX) st.restore = saved;
  } catch {
    sessionStorage.removeItem(POSITION_KEY);
  }
  // the first page and the count are asked for at once; the filter panel follows when the classes are in
  let classes = [];
  let versions = [];
  st.observer = new ResizeObserver(() => scheduleLayout());
  st.observer.observe(windowBox);
  st.onScroll = scheduleLayout;
  window.addEventListener('scroll', st.onScroll, { passive: true });
  st.unbind = keymap.bind({
    escape: () => { if (st.selectedCount()) clearSelection(); else return false; },
    '/': () => { const q = panelHost.querySelector('#filter-q'); if (q) q.focus(); else return false; },
  });
  loadCount();
  loadMore();
  try {
    // the user names (admins may list them) help the "annotated by" filter
    const users = roleAllows(role, 'admin') ? api.get(p('users')).catch(() => []) : Promise.resolve([]);
    [classes, versions, st.users] = await Promise.all([api.get(p('classes')), api.get(p('versions')),
      users.then((list) => list.map((u) => u.name))]);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return;
    replaceChildren(panelHost, errorState(e, 'The filters'));
    return;
  }
  if (!st.disposed) replaceChildren(panelHost, filterPanel(st, classes, versions));
}
