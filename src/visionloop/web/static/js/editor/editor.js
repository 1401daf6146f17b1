// The annotation editor page, #/p/:project/annotate/:id: every task type, keyboard first, saved on its own.
//
// One state per image: the annotation payload (core/annotations.py). Every edit records the new payload in the
// history (undo/redo) and schedules its save (save.js -> offline.js). The canvas (canvas.js, OpenLayers) shows
// the image and the shapes; tools.js edits them; keys.js maps keys to the actions below.

import { ApiError, api, projectPath, roleAllows } from '../api.js';
import { DEFAULT_KEYS, colorOf, h, toast } from '../ui.js';
import * as offline from '../offline.js';
import { Assist } from './assist.js';
import { Canvas, prefetchImage } from './canvas.js';
import { InstanceBrush, InstanceMasks, MaskEditor } from './masks.js';
import { conflictDialog } from './conflict.js';
import { History } from './history.js';
import { Keys } from './keys.js';
import { Panel } from './panel.js';
import { Predictions, prefetchPredictions } from './predictions.js';
import { AutoSave } from './save.js';
import { StyleBook, boxGeometry, featuresOf, makeFeature, payloadOf } from './shapes.js';
import { Tools } from './tools.js';
import { WorkMode, goldBinding, itemHref } from './work.js';

const details = new Map(); // `${project}/${id}?filters` -> Promise<detail>, the opened and prefetched images
const MAX_DETAILS = 12;
const FILTERS = ['q', 'class', 'annotated', 'split', 'review', 'annotator', 'box_min', 'box_max', 'aspect_min', 'aspect_max',
  'folder'];
let page = null;
let playing = false; // video frames playing as a sequence (kept across the page renders of each frame)
const FRAME_MS = 150;

/** The browse page's filters in the editor's query: prev/next follow the same list. */
function filtersOf(query) {
  return Object.fromEntries(FILTERS.filter((k) => query && query[k]).map((k) => [k, query[k]]));
}

function detailOf(project, id, query = {}) {
  const params = filtersOf(query);
  const key = `${project}/${id}?${new URLSearchParams(params)}`;
  let p = details.get(key);
  if (!p) {
    p = api.get(projectPath(project, `images/${id}`), { params });
    p.catch(() => details.delete(key));
    details.set(key, p);
    while (details.size > MAX_DETAILS) details.delete(details.keys().next().value);
  }
  return p;
}

/** Drop an image's cached detail (its annotation changed). */
function forget(project, id) {
  for (const key of [...details.keys()]) if (key.startsWith(`${project}/${id}?`)) details.delete(key);
}

// A saved edit makes the image's cached detail stale (a prefetch may have read it before the save landed).
offline.events.addEventListener('saved', (e) => forget(e.detail.project, e.detail.imageId));

/** Say so when a waiting edit of another image than the one open meets a conflict or is refused. */
function elsewhere(e, text) {
  const { project, imageId } = e.detail;
  if (page && page.project === project && page.id === imageId) return; // the open image's editor says it
  const href = `#/p/${encodeURIComponent(project)}/annotate/${imageId}`;
  toast(h('span', {}, text, ' ', h('a', { href }, `Open image ${imageId}`)), 'error');
}
offline.events.addEventListener('conflict', (e) => elsewhere(e,
  'Someone else saved an image while your edits of it waited to be sent: choose which version to keep.'));
offline.events.addEventListener('rejected', (e) => elsewhere(e,
  `An edit was refused by the server: ${e.detail.error.detail || e.detail.error.message}.`));

/** The editing mode of a project's task and the image's head payload. */
function modeOf(task, payload, project) {
  if (task === 'classification') return 'label';
  if (task === 'tagging') return 'tags';
  if (task === 'detection') return 'boxes';
  if (payload && (payload.type === 'instances' || payload.type === 'semantic')) return payload.type;
  return localStorage.getItem(`vl_seg_mode:${project}`) || 'instances';
}

/** Keys of the classes: their own `key`, else 1..9, 0 in class order (only for classes without one). */
function classKeys(classes) {
  const used = new Set(classes.map((c) => c.key).filter(Boolean));
  const free = DEFAULT_KEYS.filter((k) => !used.has(k));
  const keys = new Map();
  for (const c of classes) {
    const k = c.key || free.shift();
    if (k) keys.set(c.id, String(k).toLowerCase());
  }
  return keys;
}

class Editor {
  constructor(root, params) {
    this.root = root;
    this.params = params;
    this.project = params.project;
    this.id = Number(params.id);
    this.query = params.query || {};
    this.readOnly = !roleAllows(params.role || 'viewer', 'annotator');
    this.timings = { start: performance.now() };
    this.disposed = false;
  }

  async open() {
    const p = this.project;
    await offline.ready; // edits a closed page left are queued first
    if (this.disposed) return;
    let [info, classes, detail, pending, item] = await Promise.all([
      api.get(projectPath(p)), api.get(projectPath(p, 'classes')), detailOf(p, this.id, this.query),
      offline.pendingFor(p, this.id).catch(() => null),
      this.query.item ? WorkMode.load(p, this.query.item) : null]); // ?item=N: opened from My queue
    if (this.disposed) return; // left while loading (keys held, a fast play): build nothing
    if (item && item.image.id !== this.id) {
      location.hash = itemHref(p, item); // the item's own image
      return;
    }
    const saved = offline.savedRevisionOf(p, this.id);
    if (!pending && saved !== undefined && (detail.head_revision ?? -1) < saved) {
      // an edit landed between the prefetch and now (its queue entry is gone, the cached detail predates it)
      forget(p, this.id);
      detail = await detailOf(p, this.id, this.query);
      if (this.disposed) return;
    }
    this.timings.fetched = performance.now();
    this.detail = detail;
    this.info = info;
    this.classes = classes.filter((c) => c.active !== false);
    this.allClasses = classes;
    this.keysOf = classKeys(this.classes);
    const head = detail.annotation || null;
    this.work = item ? new WorkMode(this, item) : null; // its answer goes to POST .../work/N/submit, not to the image
    const waiting = this.work ? null : pending;
    // edits kept in this browser are newer than the server's head
    const start = this.work ? this.work.start() : waiting ? waiting.payload : head;
    this.mode = modeOf(info.task, start, p);
    this.currentClass = this.classes.length ? this.classes[0].id : 0;
    this.styles = new StyleBook(this.allClasses);
    this.panel = new Panel(this.root, { mode: this.mode, classes: this.classes, readOnly: this.readOnly, actions: {
      prev: () => this.go(this.prevId), next: () => this.go(this.nextId), help: () => this.keys.showHelp(),
      setTool: (t) => this.setTool(t), pickClass: (id) => this.pickClass(id),
      switchMode: (m) => this.switchMode(m),
      resolveConflict: () => { if (this.autosave.conflict) this.showConflict(this.lastConflictBody); },
    } });
    this.panel.setImage(detail, '');
    this.canvas = new Canvas(this.panel.canvasEl, this.styles);
    this.canvas.setImage(detail);
    this.shapes = this.mode === 'boxes' || this.mode === 'instances';
    if (this.shapes) {
      this.tools = new Tools(this.canvas, {
        onChange: () => this.edited(), onSelect: () => this.showSelection(),
        currentClass: () => this.currentClass, newProps: () => this.newShapeProps(),
      });
      this.tools.setEditable(!this.readOnly);
      const feats = featuresOf(start, detail.height);
      this.timings.features = performance.now();
      this.tools.load(feats);
      this.timings.loaded = performance.now();
      if (this.mode === 'instances') {
        this.instanceMasks = new InstanceMasks(this.canvas, this.allClasses);
        this.brush = new InstanceBrush(this.canvas, this.tools, this.instanceMasks);
        this.assist = new Assist(this); // I: a click or a box asks the server for a mask
      }
      this.setTool(this.mode === 'boxes' ? 'box' : 'polygon');
    } else if (this.mode === 'semantic') {
      this.masks = new MaskEditor(this.canvas, { classes: this.allClasses, onChange: () => this.edited(),
        currentClass: () => this.currentClass, readOnly: this.readOnly });
      this.masks.load(start, detail);
      this.setTool('brush');
    }
    this.state = this.shapes || this.masks ? null : start;
    this.predictions = new Predictions(this.canvas, { project: p, detail, classes: this.allClasses,
      panelEl: this.panel.predictionsEl, canAccept: () => this.mode === 'boxes' && !this.readOnly,
      annotated: () => this.annotatedBoxes(), shapeAt: (c) => (this.tools ? this.tools.featureAt(c) : null),
      actions: { toggle: () => this.predictions.toggle(), accept: () => this.acceptPredictions(),
        acceptOne: () => this.acceptSuggestion() } });
    this.predictions.start(); // in the background: the image and its annotation do not wait for it
    this.history = new History(this.payload());
    this.timings.history = performance.now();
    this.autosave = this.work || new AutoSave({ project: p, imageId: this.id, revision: detail.head_revision,
      getPayload: () => this.history.current, onStatus: (s) => this.panel.setStatus(s),
      onConflict: (body) => this.showConflict(body) });
    if (this.work) this.work.show();
    this.keys = new Keys();
    this.keys.set(this.bindings());
    this.keys.start();
    this.onHide = () => { this.autosave.flushNow(); };
    window.addEventListener('pagehide', this.onHide);
    document.addEventListener('visibilitychange', this.onHide);
    this.refresh();
    this.timings.shown = performance.now();
    this.canvas.map.once('rendercomplete', () => { this.timings.rendered = performance.now(); });
    window.vlEditor = this; // for tests and benchmarks: timings, payload()
    if (this.work) this.panel.setNav(null, null); // the queue says what comes next
    else await this.neighbours();
    if (this.disposed) return;
    if (waiting && waiting.state === 'conflict') this.showConflict(null);
    if (playing) this.playTimer = setTimeout(() => this.playNext(), FRAME_MS);
    if (waiting && waiting.state !== 'conflict') offline.flush();
  }

  // ---- state --------------------------------------------------------------------------------------------------

  /** The annotation as it is now (null: nothing yet). */
  payload() {
    if (this.shapes) return payloadOf(this.mode, this.tools.features(), this.detail.width, this.detail.height);
    if (this.masks) return this.masks.payload();
    return this.state;
  }

  /** Show `payload` (undo, redo, a version chosen in a conflict). */
  apply(payload) {
    if (this.shapes) {
      const sel = this.tools.selected ? this.tools.selected.get('order') : null;
      this.tools.load(featuresOf(payload, this.detail.height), sel);
    } else if (this.masks) this.masks.load(payload, this.detail);
    else this.state = payload;
    this.refresh();
  }

  /** After every edit: record it and save it soon. */
  edited() {
    playing = false;
    if (this.history.push(this.payload())) this.autosave.schedule();
    this.refresh();
  }

  undo() {
    const p = this.history.undo();
    if (p === null) return;
    this.apply(p);
    this.autosave.schedule();
  }

  redo() {
    const p = this.history.redo();
    if (p === null) return;
    this.apply(p);
    this.autosave.schedule();
  }

  newShapeProps() {
    if (!this.isVideo()) return {};
    const tracks = this.tools.features().map((f) => f.get('track')).filter((t) => t !== null && t !== undefined);
    return { track: (tracks.length ? Math.max(...tracks) : 0) + 1 };
  }

  // ---- actions ------------------------------------------------------------------------------------------------

  pickClass(id) {
    if (this.readOnly && this.mode !== 'boxes' && this.mode !== 'instances') return;
    if (this.mode === 'label') {
      this.state = { type: 'label', class_id: id };
      this.edited();
    } else if (this.mode === 'tags') {
      const ids = new Set(this.state ? this.state.class_ids : []);
      if (ids.has(id)) ids.delete(id);
      else ids.add(id);
      this.state = { type: 'tags', class_ids: [...ids].sort((a, b) => a - b) };
      this.edited();
    } else {
      this.currentClass = id;
      if (!(this.tools && this.tools.setClassOfSelected(id))) this.refresh();
    }
  }

  setTool(name) {
    this.tool = name;
    if (this.tools) this.tools.setTool(name);
    if (this.brush) this.brush.setTool(name);
    if (this.masks) this.masks.setTool(name);
    if (this.assist) this.assist.setTool(name);
    const names = this.readOnly ? [] : this.mode === 'boxes' ? ['select', 'box'] : this.mode === 'instances'
      ? ['select', 'polygon', 'brush', 'eraser', 'assist']
      : this.mode === 'semantic' ? ['brush', 'eraser', 'fill'] : [];
    this.panel.setTools(names, name);
  }

  deleteSelected() {
    return this.tools ? this.tools.deleteSelected() : false;
  }

  /** Add the previous image's shapes (boxes or outlines, track ids kept) to this one. */
  async copyPrevious() {
    if (!this.shapes || this.readOnly || this.prevId === null || this.prevId === undefined) return;
    const waiting = await offline.pendingFor(this.project, this.prevId).catch(() => null);
    const from = waiting ? waiting.payload : (await detailOf(this.project, this.prevId, this.query)).annotation;
    if (!from || from.type !== this.mode || !from.xyxy.length) {
      toast('The previous image has no shapes to copy.', 'info');
      return;
    }
    const have = new Set(this.tools.features().map((f) => f.get('track')).filter((t) => t !== null));
    const feats = featuresOf(from, this.detail.height)
      .filter((f) => f.get('track') === null || !have.has(f.get('track')));
    for (const f of feats) {
      f.set('order', this.tools.nextOrder++, true);
      this.canvas.source.addFeature(f);
    }
    this.edited();
    toast(`Copied ${feats.length} shape${feats.length === 1 ? '' : 's'} from the previous image.`, 'success');
  }

  /** Add the shown predicted boxes to the annotation: one edit (one undo), saved like any other. */
  acceptPredictions() {
    const boxes = this.mode === 'boxes' && !this.readOnly ? this.predictions.boxes() : [];
    if (!boxes.length) return;
    this.canvas.source.addFeatures(boxes.map((b) => makeFeature('box', boxGeometry(b.xyxy, this.detail.height),
      { cls: b.cls, order: this.tools.nextOrder++ })));
    this.edited();
    toast(`Added ${boxes.length} predicted box${boxes.length === 1 ? '' : 'es'}: Ctrl+Z takes them back.`, 'success');
  }

  /** Accept the selected suggestion: a box of the annotation (one edit), selected for correcting. */
  acceptSuggestion() {
    const b = this.mode === 'boxes' && !this.readOnly ? this.predictions.selectedBox() : null;
    if (!b) return false; // nothing selected: the key goes on
    const f = makeFeature('box', boxGeometry(b.xyxy, this.detail.height), { cls: b.cls,
      order: this.tools.nextOrder++ });
    this.canvas.source.addFeature(f);
    this.tools.select(f, true);
    this.edited();
    return true;
  }

  /** The annotation's boxes as {xyxy (image pixels), cls}. */
  annotatedBoxes() {
    if (!this.tools) return [];
    const H = this.detail.height;
    return this.tools.features().filter((f) => f.get('kind') === 'box').map((f) => {
      const [x1, y1, x2, y2] = f.getGeometry().getExtent();
      return { xyxy: [x1, H - y2, x2, H - y1], cls: f.get('cls') };
    });
  }

  async go(id) {
    if (id === null || id === undefined) return;
    await this.autosave.flushNow();
    const q = new URLSearchParams(this.query).toString();
    location.hash = `#/p/${encodeURIComponent(this.project)}/annotate/${id}${q ? `?${q}` : ''}`;
  }

  /** prev/next ids (from the image detail; else from the list of images) and the next image fetched ahead. */
  async neighbours() {
    let { prev_id: prev, next_id: next } = this.detail;
    if (prev === undefined && next === undefined) {
      try {
        const ids = await listIds(this.project);
        const i = ids.indexOf(this.id);
        prev = i > 0 ? ids[i - 1] : null;
        next = i >= 0 && i + 1 < ids.length ? ids[i + 1] : null;
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
      }
    }
    this.prevId = prev ?? null;
    this.nextId = next ?? null;
    if (this.disposed) return;
    this.panel.setNav(this.prevId, this.nextId);
    for (const id of [this.nextId, this.prevId]) {
      if (id === null) continue;
      detailOf(this.project, id, this.query).then((d) => prefetchImage(d)).catch(() => {});
      prefetchPredictions(this.project, id);
    }
  }

  isVideo() {
    return this.detail.video_id !== null && this.detail.video_id !== undefined;
  }

  /** Play / pause: show the next frames one after the other (any edit or key stops it). */
  togglePlay() {
    playing = !playing && this.nextId !== null;
    clearTimeout(this.playTimer);
    if (playing) this.playNext();
    toast(playing ? 'Playing the frames: K pauses' : 'Paused', 'info', { timeout: 1200 });
  }

  playNext() {
    if (!playing || this.disposed) return;
    if (this.nextId === null) {
      playing = false;
      return;
    }
    this.go(this.nextId);
  }

  async showConflict(body) {
    this.lastConflictBody = body;
    let head = body && body.head;
    if (!head) {
      const fresh = await api.get(projectPath(this.project, `images/${this.id}`));
      head = { revision: fresh.head_revision, payload: fresh.annotation, author: '', created_at: null };
      try {
        const revs = await api.get(projectPath(this.project, `images/${this.id}/revisions`));
        const last = revs[revs.length - 1];
        if (last) Object.assign(head, { author: last.author, created_at: last.created_at });
      } catch { /* the author is a nicety */ }
    }
    if (this.disposed || this.conflictOpen) return;
    this.conflictOpen = true;
    const mine = this.history.current;
    const { choice, payload } = await conflictDialog({ detail: this.detail, classes: this.allClasses, head, mine });
    this.conflictOpen = false;
    if (this.disposed || choice === null) return; // closed without choosing: the status still says Conflict
    forget(this.project, this.id);
    if (choice === 'theirs') {
      this.history.push(head.payload);
      this.apply(head.payload);
      await this.autosave.resolved(head.revision, null);
    } else {
      if (choice === 'merge') {
        this.history.push(payload);
        this.apply(payload);
      }
      await this.autosave.resolved(head.revision, this.history.current);
    }
  }

  // ---- display ------------------------------------------------------------------------------------------------

  refresh() {
    const counts = new Map();
    const p = this.shapes ? null : this.state;
    let chosen = null;
    if (this.shapes) {
      for (const f of this.tools.features()) counts.set(f.get('cls'), (counts.get(f.get('cls')) || 0) + 1);
    } else if (this.mode === 'label') chosen = new Set(p ? [p.class_id] : []);
    else if (this.mode === 'tags') chosen = new Set(p ? p.class_ids : []);
    this.panel.setClasses({ current: this.currentClass, counts: this.shapes ? counts : null, chosen,
      keys: this.keysOf });
    if (this.mode === 'label') {
      const c = p && this.allClasses.find((x) => x.id === p.class_id);
      this.panel.setBanner(c ? c.name : 'Not labelled yet: press a class key', c ? colorOf(c) : null);
    } else if (this.mode === 'tags') {
      const names = (p ? p.class_ids : []).map((id) => (this.allClasses.find((x) => x.id === id) || { name: id }).name);
      this.panel.setBanner(names.length ? names.join(' · ') : 'No tags: press class keys to toggle them', null);
    }
    this.panel.setHint(this.hint());
    this.showSelection();
    if (this.instanceMasks) this.instanceMasks.draw(this.tools.features());
    if (this.predictions) this.predictions.sync();
    if (this.info.task === 'segmentation') this.panel.setModes(this.mode, this.isEmpty() && !this.readOnly);
  }

  /** Nothing drawn on this image yet (a segmentation image may then switch between outlines and a mask). */
  isEmpty() {
    const p = this.history ? this.history.current : this.payload();
    if (!p) return true;
    if (p.type === 'semantic') return Object.keys(p.classes || {}).length === 0;
    return !(p.xyxy && p.xyxy.length);
  }

  /** Segmentation: annotate this project's images with outlines (instances) or a class mask (semantic). */
  async switchMode(mode) {
    if (mode === this.mode || !this.isEmpty()) return;
    localStorage.setItem(`vl_seg_mode:${this.project}`, mode);
    const { root, params } = this;
    await dispose();
    await render(root, params);
  }

  hint() {
    if (this.readOnly) return 'You can look but not edit here (viewer role).';
    const n = this.shapes ? this.tools.features().length : 0;
    const count = this.shapes ? `${n} shape${n === 1 ? '' : 's'}. ` : '';
    const more = ' Press ? for every key.';
    if (this.mode === 'boxes') {
      return `${count}Drag to draw a box; click one to select it; Del deletes it; a class key changes its `
        + `class.${more}`;
    }
    if (this.mode === 'instances') {
      return `${count}Click the outline's points; double-click (or click the first point) to close it. V selects; `
        + `drag a vertex to edit it. R paints a mask, E erases from the selected one; `
        + `I makes one from a click or a box.${more}`;
    }
    if (this.mode === 'semantic') {
      return `Paint with the brush (R), erase (E), fill a region (G); [ and ] change the brush size.${more}`;
    }
    if (this.mode === 'tags') return 'Each class key toggles its tag. Press ? for every key.';
    return 'One class key sets the label. Press ? for every key.';
  }

  showSelection() {
    if (!this.tools) return;
    const f = this.tools.selected;
    if (!f) {
      this.panel.setSelection('');
      return;
    }
    const [x1, y1, x2, y2] = f.getGeometry().getExtent();
    const track = f.get('track');
    this.panel.setSelection(`${this.styles.name(f.get('cls'))} · ${Math.round(x2 - x1)}×${Math.round(y2 - y1)} px`
      + `${track !== null && track !== undefined ? ` · track ${track}` : ''}`);
  }

  bindings() {
    const edit = () => !this.readOnly;
    const shapes = () => this.shapes && !this.readOnly;
    const list = [
      { keys: ['?'], label: 'Show these keys', group: 'General', run: () => this.keys.showHelp() },
      { keys: ['d', 'arrowright'], label: 'Next image', group: 'General', run: () => this.go(this.nextId) },
      { keys: ['a', 'arrowleft'], label: 'Previous image', group: 'General', run: () => this.go(this.prevId) },
      { keys: ['f'], label: 'Fit the image to the window', group: 'View', run: () => this.canvas.fit() },
      { keys: ['k'], label: 'Play / pause the video frames', group: 'General', when: () => this.isVideo(),
        run: () => this.togglePlay() },
      { keys: ['=', '+'], label: 'Zoom in (or the mouse wheel)', group: 'View', run: () => this.canvas.zoomBy(1) },
      { keys: ['-'], label: 'Zoom out', group: 'View', run: () => this.canvas.zoomBy(-1) },
      { keys: ['o'], label: "Show / hide the deployed model's predictions (dashed, never saved)", group: 'View',
        run: () => { this.predictions.toggle(); } },
      { keys: ['shift+o'], label: 'Add the shown predicted boxes to the annotation: every suggestion above the '
        + 'threshold (one undo)', group: 'Edit', when: () => this.mode === 'boxes' && !this.readOnly
        && this.predictions.on, run: () => this.acceptPredictions() },
      { keys: ['enter'], label: 'Accept the selected suggestion (click one to select it)', group: 'Edit',
        when: () => this.mode === 'boxes' && !this.readOnly && this.predictions.on,
        run: () => this.acceptSuggestion() },
      { keys: ['space'], label: 'Hold and drag to pan (or drag empty space, or the middle button)', group: 'View',
        run: (e) => this.space(e, true) },
      { keys: ['ctrl+z'], label: 'Undo', group: 'Edit', when: edit, run: () => this.undo() },
      { keys: ['ctrl+shift+z', 'ctrl+y'], label: 'Redo', group: 'Edit', when: edit, run: () => this.redo() },
    ];
    if (this.assist) list.unshift(...this.assist.bindings(() => this.setTool('assist'))); // first: Enter, Esc
    if (this.work) list.unshift(...this.work.bindings()); // Shift+Enter: submit & next
    list.push(goldBinding(this));
    for (const c of this.classes) {
      const k = this.keysOf.get(c.id);
      if (!k) continue;
      const group = this.mode === 'label' ? 'Classes: set the label' : this.mode === 'tags' ? 'Classes: toggle the tag'
        : this.mode === 'semantic' ? 'Classes: paint with' : 'Classes: for new shapes and the selected one';
      list.push({ keys: [k], label: c.name, group, run: () => this.pickClass(c.id) });
    }
    if (this.mode === 'boxes' || this.mode === 'instances') {
      list.push(
        { keys: ['v'], label: 'Select / move tool', group: 'Tools', when: shapes, run: () => this.setTool('select') },
        this.mode === 'boxes'
          ? { keys: ['b'], label: 'Box tool: drag to draw', group: 'Tools', when: shapes,
            run: () => this.setTool('box') }
          : { keys: ['p'], label: 'Polygon tool: click the points, double-click to close', group: 'Tools', when: shapes,
            run: () => this.setTool('polygon') },
        { keys: ['delete', 'backspace'], label: 'Delete the selected shape (while drawing: the last point)',
          group: 'Edit', when: shapes, run: () => this.tools.removeLastPoint() || this.deleteSelected() },
        { keys: ['escape'], label: 'Stop drawing, then deselect', group: 'Edit', run: () => this.tools.cancel() },
        { keys: ['tab'], label: 'Select the next shape', group: 'Edit', run: () => this.tools.cycle(1) },
        { keys: ['shift+tab'], label: 'Select the previous shape', group: 'Edit', run: () => this.tools.cycle(-1) },
        { keys: ['c'], label: "Copy the previous image's shapes (track ids kept)", group: 'Edit', when: shapes,
          run: () => { this.copyPrevious(); } },
      );
    }
    if (this.info.task === 'segmentation') {
      list.push({ keys: ['m'], label: 'Outlines or a class mask (while the image is empty)', group: 'Tools',
        when: () => this.isEmpty() && !this.readOnly,
        run: () => { this.switchMode(this.mode === 'semantic' ? 'instances' : 'semantic'); } });
    }
    const painter = this.masks || this.brush;
    if (painter && !this.readOnly) {
      const semantic = this.mode === 'semantic';
      list.push(
        { keys: ['r'], label: semantic ? 'Brush' : 'Brush: paint the selected mask (a new one when none is)',
          group: 'Tools', run: () => this.setTool('brush') },
        { keys: ['e'], label: semantic ? 'Eraser (unlabelled)' : 'Eraser: erase from the selected mask',
          group: 'Tools', run: () => this.setTool('eraser') },
        semantic ? { keys: ['g'], label: 'Fill the region under the click', group: 'Tools',
          run: () => this.setTool('fill') } : null,
        { keys: ['['], label: 'Smaller brush', group: 'Tools', run: () => painter.resize(-1) },
        { keys: [']'], label: 'Larger brush', group: 'Tools', run: () => painter.resize(1) },
      );
    }
    // A class key chosen for the ontology wins over an editor key that is the same (that action keeps its others).
    const classKeys = new Set(this.keysOf.values());
    return list.filter(Boolean).map((b) => (b.group.startsWith('Classes') ? b
      : { ...b, keys: b.keys.filter((k) => !classKeys.has(k)) })).filter((b) => b.keys.length);
  }

  space(event, down) {
    const target = this.tools || this.masks;
    if (!target) return false;
    target.spaceDown = down;
    this.canvas.map.getTargetElement().style.cursor = down ? 'grab' : '';
    if (!down && this.masks) this.masks.setTool(this.tool);
    return true;
  }

  async dispose() {
    this.disposed = true;
    clearTimeout(this.playTimer);
    forget(this.project, this.id); // edited here: the next visit asks the server again
    window.removeEventListener('pagehide', this.onHide);
    document.removeEventListener('visibilitychange', this.onHide);
    if (this.keys) this.keys.stop();
    if (this.predictions) this.predictions.dispose();
    if (this.autosave) {
      await this.autosave.flushNow();
      this.autosave.dispose();
    }
    if (this.canvas) this.canvas.destroy();
    if (window.vlEditor === this) window.vlEditor = null;
  }
}

const idLists = new Map();

/** Every image id of a project in order (a server without prev_id / next_id in the image detail). */
function listIds(project) {
  let p = idLists.get(project);
  if (!p) {
    p = (async () => {
      const ids = [];
      for (let offset = 0; ; offset += 500) {
        const page = await api.get(projectPath(project, 'images'), { params: { offset, limit: 500 } });
        const items = page.items || [];
        ids.push(...items.map((x) => x.id));
        if (items.length < 500 || (page.total !== undefined && ids.length >= page.total)) break;
      }
      return ids;
    })();
    p.catch(() => idLists.delete(project));
    idLists.set(project, p);
  }
  return p;
}

function onKeyUp(e) {
  if (e.key === ' ' && page) page.space(e, false);
}

export async function render(root, params) {
  root.classList.add('page-editor');
  page = new Editor(root, params);
  document.addEventListener('keyup', onKeyUp);
  await page.open();
}

export async function dispose() {
  document.removeEventListener('keyup', onKeyUp);
  const p = page;
  page = null;
  if (p) await p.dispose();
}
