// The deployed model's predictions over the open image, so a person sees what the model does: boxes on a vector
// layer of their own (dashed outlines in the class colour, a small score label), masks as a translucent image, and
// for classification and tagging the labels with their scores in the panel. Never editable and never saved: the
// tools and the payload (shapes.js payloadOf) read only the canvas's annotation source, never these layers.
//
// The answer is the model server's JSON (inference/results.py Prediction.to_json), already thresholded by the
// package. Predictions load only while shown; the choice is kept for the next images (and this browser tab).
//
// Pre-annotation: when the image has a stored suggestion of the deployed model (GET .../suggestions, made by the
// preannotate job with boxes down to a low score), those boxes are shown instead, above a score threshold the
// panel's slider sets (it starts at the package's threshold and is kept for the next images); a box already
// annotated (same class, IoU >= 0.5) is not offered again. Clicking a suggestion selects it (Enter accepts it),
// Shift+O accepts every one shown; accepted boxes are plain annotations (the editor adds them as one edit).

import * as ol from '../../vendor/ol/ol.js';
import { api, projectPath } from '../api.js';
import { predictionSummary, scoreList } from '../prediction_view.js';
import { colorOf, h, projectHref, replaceChildren } from '../ui.js';
import { forEachOnes } from './rle.js';
import { boxGeometry, rgba } from './shapes.js';

const DEPLOYMENT_TTL_MS = 30000; // a package deployed meanwhile shows up on an image opened after this
const MAX_PREDICTIONS = 24;
const MAX_MASK_PIXELS = 4096 * 4096; // larger images (tiled) show the boxes only
const deployments = new Map(); // project -> {at, promise of {package, task, ...}}
const predictions = new Map(); // `${project}/${package}/${imageId}` -> promise of the prediction
const suggestions = new Map(); // `${project}/${package}/${imageId}` -> promise of the suggestion (null: none)
const ANNOTATED_IOU = 0.5; // a suggestion overlapping an annotated box of its class this much is not offered again

const storeKey = (project) => `vl_predictions:${project}`;

/** Whether `project`'s predictions are toggled on (in this browser tab). */
export function predictionsShown(project) {
  return sessionStorage.getItem(storeKey(project)) === '1';
}

function setShown(project, on) {
  if (on) sessionStorage.setItem(storeKey(project), '1');
  else sessionStorage.removeItem(storeKey(project));
}

/** The project's deployment ({package: null} when nothing is deployed), cached a short while. */
function deploymentOf(project) {
  const now = Date.now();
  const entry = deployments.get(project);
  if (entry && now - entry.at < DEPLOYMENT_TTL_MS) return entry.promise;
  const promise = api.get(projectPath(project, 'deployment'));
  promise.catch(() => deployments.delete(project));
  deployments.set(project, { at: now, promise });
  return promise;
}

function predictionOf(project, pkg, imageId) {
  const key = `${project}/${pkg}/${imageId}`;
  let p = predictions.get(key);
  if (!p) {
    p = api.get(projectPath(project, `images/${imageId}/predictions`));
    p.catch(() => predictions.delete(key));
    predictions.set(key, p);
    while (predictions.size > MAX_PREDICTIONS) predictions.delete(predictions.keys().next().value);
  }
  return p;
}

/** The image's stored suggestion of the deployed package (null when it has none: predicted live then). */
function suggestionOf(project, pkg, imageId) {
  const key = `${project}/${pkg}/${imageId}`;
  let p = suggestions.get(key);
  if (!p) {
    p = api.get(projectPath(project, `images/${imageId}/suggestions`)).catch((e) => {
      if (e.status === 404) return null;
      suggestions.delete(key);
      throw e;
    });
    suggestions.set(key, p);
    while (suggestions.size > MAX_PREDICTIONS) suggestions.delete(suggestions.keys().next().value);
  }
  return p;
}

/** The stored suggestion ({suggestion, prediction}) or else the live prediction ({suggestion: null, prediction}). */
async function modelAnswer(project, pkg, imageId) {
  const suggestion = await suggestionOf(project, pkg, imageId);
  if (suggestion) return { suggestion, prediction: suggestion.prediction };
  return { suggestion: null, prediction: await predictionOf(project, pkg, imageId) };
}

/** Fetch an image's predictions ahead (the next image), only while they are shown. */
export function prefetchPredictions(project, imageId) {
  if (!predictionsShown(project)) return;
  deploymentOf(project).then((d) => d.package && modelAnswer(project, d.package, imageId)).catch(() => {});
}

const thresholdKey = (project) => `vl_suggest_threshold:${project}`;

function iou(a, b) {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const hgt = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (w <= 0 || hgt <= 0) return 0;
  const inter = w * hgt;
  return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter);
}

export class Predictions {
  /** `panelEl`: the panel's section to fill; `actions`: {toggle(), accept(), acceptOne()}; `canAccept()`: whether
   * Shift+O may add the boxes to the annotation. `classes`: the project's classes (colours; a predicted class is the
   * project class of the same name, else of the same id). `annotated()`: the annotation's boxes as {xyxy, cls};
   * `shapeAt(coordinate)`: the annotation's shape under a map coordinate (a click on it is the tools'). */
  constructor(canvas, { project, detail, classes, panelEl, actions, canAccept, annotated = () => [],
    shapeAt = () => null }) {
    this.canvas = canvas;
    this.project = project;
    this.detail = detail;
    this.panelEl = panelEl;
    this.actions = actions;
    this.canAccept = canAccept;
    this.annotated = annotated;
    this.shapeAt = shapeAt;
    this.suggestion = null; // the stored suggestion shown, else null (live predictions)
    this.selected = null; // the index (in the prediction's detections) of the selected suggestion
    this.onClick = (e) => this.clicked(e.coordinate);
    canvas.map.on('click', this.onClick);
    this.byName = new Map(classes.map((c) => [c.name, c]));
    this.byId = new Map(classes.map((c) => [c.id, c]));
    this.source = new ol.source.Vector({ useSpatialIndex: false });
    this.layer = new ol.layer.Vector({ source: this.source, style: (f) => f.get('style'), zIndex: 5,
      visible: false, declutter: true, properties: { name: 'predictions' } });
    canvas.addLayer(this.layer);
    this.maskLayer = null;
    this.deployment = undefined; // not known yet; then {package: null} or the deployed package
    this.prediction = null;
    this.error = null;
    this.disposed = false;
  }

  get on() {
    return predictionsShown(this.project);
  }

  /** Find out what is deployed (and show its predictions when they are toggled on). */
  async start() {
    try {
      this.deployment = await deploymentOf(this.project);
    } catch (e) {
      this.deployment = { package: null };
      this.error = e.detail || e.message;
    }
    if (this.disposed) return;
    if (this.on && this.deployment.package) await this.load();
    else this.render();
  }

  async toggle() {
    if (this.deployment !== undefined && !this.deployment.package) {
      this.render(); // the panel already says so and links to the Models page
      return;
    }
    setShown(this.project, !this.on);
    if (this.deployment === undefined) return; // pressed before the deployment is known: start() shows them
    if (this.on) await this.load();
    else this.hide();
  }

  async load() {
    this.error = null;
    this.render('Asking the model…');
    let answer;
    try {
      answer = await modelAnswer(this.project, this.deployment.package, this.detail.id);
    } catch (e) {
      this.error = e.detail || e.message;
      answer = { suggestion: null, prediction: null };
    }
    if (this.disposed || !this.on) return;
    this.prediction = answer.prediction;
    this.suggestion = answer.suggestion;
    this.selected = null;
    this.draw();
    this.render();
  }

  hide() {
    this.selected = null;
    this.layer.setVisible(false);
    if (this.maskLayer) this.maskLayer.setVisible(false);
    this.render();
  }

  /** The project class of a predicted object ({class_id, name}); null when the project has none like it. */
  classOf(d) {
    return this.byName.get(d.name) || this.byId.get(d.class_id) || null;
  }

  colourOf(d) {
    return colorOf(this.classOf(d) || d.class_id);
  }

  /** The score threshold of suggestions: the slider's (kept for the next images), else the package's. */
  get threshold() {
    if (!this.suggestion) return 0; // live predictions are thresholded by the package already
    const kept = sessionStorage.getItem(thresholdKey(this.project));
    return kept !== null ? Number(kept) : Number(this.suggestion.thresholds.score || 0);
  }

  setThreshold(value) {
    sessionStorage.setItem(thresholdKey(this.project), String(value));
    this.selected = null;
    this.draw();
    this.render();
  }

  /** Indexes of the detections shown: at or above the threshold and, for suggestions, not annotated already. */
  shownIndexes() {
    const detections = (this.on && this.prediction && this.prediction.detections) || [];
    const t = this.threshold;
    const done = this.suggestion ? this.annotated() : [];
    return detections.map((d, i) => i).filter((i) => {
      const d = detections[i];
      if (d.score < t) return false;
      const cls = (this.classOf(d) || {}).id;
      return !done.some((b) => b.cls === cls && iou(b.xyxy, d.xyxy) >= ANNOTATED_IOU);
    });
  }

  /** The shown predicted boxes as {xyxy, cls} of project classes (classes the project lacks are left out). */
  boxes() {
    return this.shownIndexes().map((i) => this.boxOf(i)).filter((b) => b.cls !== undefined);
  }

  boxOf(index) {
    const d = this.prediction.detections[index];
    return { xyxy: d.xyxy, cls: (this.classOf(d) || {}).id, score: d.score };
  }

  /** The selected suggestion as {xyxy, cls, score}; null when none is. */
  selectedBox() {
    if (this.selected === null || !this.shownIndexes().includes(this.selected)) return null;
    const b = this.boxOf(this.selected);
    return b.cls === undefined ? null : b;
  }

  /** A click on the image: the smallest shown suggestion under it is selected (unless the click was on a shape). */
  clicked(coordinate) {
    if (!this.on || !this.prediction || !this.prediction.detections) return;
    let best = null;
    let bestArea = Infinity;
    if (!this.shapeAt(coordinate)) {
      const [x, ym] = coordinate;
      const y = this.detail.height - ym;
      for (const i of this.shownIndexes()) {
        const [x1, y1, x2, y2] = this.prediction.detections[i].xyxy;
        const area = (x2 - x1) * (y2 - y1);
        if (x >= x1 && x <= x2 && y >= y1 && y <= y2 && area < bestArea) {
          best = i;
          bestArea = area;
        }
      }
    }
    if (best === this.selected) return;
    this.selected = best;
    this.draw();
    this.render();
  }

  /** The annotation changed (an accept, an undo): suggestions annotated meanwhile are no longer offered. */
  sync() {
    if (!this.suggestion || !this.on) return;
    const shown = this.shownIndexes();
    if (shown.length === this.source.getFeatures().length) return;
    if (!shown.includes(this.selected)) this.selected = null;
    this.draw();
    this.render();
  }

  /** The project classes of predicted labels, under the package's class ids (for scoreList's colours). */
  scoreClasses(scores) {
    return scores.map((s) => ({ ...(this.classOf(s) || {}), id: s.class_id }));
  }

  draw() {
    const H = this.detail.height;
    const all = (this.prediction && this.prediction.detections) || [];
    const detections = this.shownIndexes().map((i) => [i, all[i]]);
    this.source.clear(true);
    this.source.addFeatures(detections.map(([i, d]) => {
      const colour = this.colourOf(d);
      const chosen = i === this.selected;
      const style = [
        chosen ? new ol.style.Style({ stroke: new ol.style.Stroke({ color: '#ffffff', width: 6 }) }) : null,
        new ol.style.Style({ stroke: new ol.style.Stroke({ color: colour, width: chosen ? 3 : 2,
          lineDash: chosen ? undefined : [6, 4] }) }),
        new ol.style.Style({
          geometry: (f) => {
            const [x1, , , y2] = f.getGeometry().getExtent();
            return new ol.geom.Point([x1, y2]);
          },
          text: new ol.style.Text({ text: `${Math.round(d.score * 100)}%`, font: '600 10px system-ui, sans-serif',
            textAlign: 'left', textBaseline: 'top', offsetX: 1, offsetY: 1, overflow: true,
            fill: new ol.style.Fill({ color: '#ffffff' }),
            backgroundFill: new ol.style.Fill({ color: rgba(colour, 0.8) }), padding: [1, 3, 0, 3] }),
        }),
      ].filter(Boolean);
      return new ol.Feature({ geometry: boxGeometry(d.xyxy, H), style, cls: d.class_id, name: d.name,
        score: d.score, index: i });
    }));
    this.layer.setVisible(true);
    this.drawMasks([...((this.prediction && this.prediction.segments) || []),
      ...detections.map(([, d]) => d).filter((d) => d.mask)]);
  }

  /** Instance masks and semantic segments, painted once into one translucent image over the image. */
  drawMasks(objects) {
    if (this.maskLayer) {
      this.canvas.map.removeLayer(this.maskLayer);
      this.maskLayer = null;
    }
    const W = this.detail.width;
    const H = this.detail.height;
    if (!objects.length || W * H > MAX_MASK_PIXELS) return;
    const paper = document.createElement('canvas');
    paper.width = W;
    paper.height = H;
    const ctx = paper.getContext('2d');
    const pixels = ctx.createImageData(W, H);
    const data = pixels.data;
    for (const o of objects) {
      const n = parseInt(this.colourOf(o).slice(1), 16);
      forEachOnes(o.mask.counts, (start, end) => {
        for (let j = start; j < end; j++) {
          const at = ((j % H) * W + Math.floor(j / H)) * 4; // column-major: j = x * H + y
          data[at] = (n >> 16) & 255;
          data[at + 1] = (n >> 8) & 255;
          data[at + 2] = n & 255;
          data[at + 3] = 255;
        }
      });
    }
    ctx.putImageData(pixels, 0, 0);
    this.maskLayer = new ol.layer.Image({ opacity: 0.4, zIndex: 4, source: new ol.source.ImageStatic({
      url: paper.toDataURL(), projection: this.canvas.map.getView().getProjection(), imageExtent: [0, 0, W, H] }) });
    this.canvas.map.addLayer(this.maskLayer);
  }

  /** The panel's section: the toggle and the package, or "no model deployed yet" with the Models page. */
  render(busy = '') {
    const d = this.deployment;
    if (d === undefined) return;
    const p = this.prediction;
    let body;
    if (!d.package) {
      body = [h('p', { class: 'ed-pred-none' }, 'Model predictions: no model deployed yet. ',
        h('a', { href: projectHref(this.project, 'models') }, 'Models page'))];
    } else {
      const on = this.on;
      body = [
        h('p', { class: 'ed-pred-name' }, 'Model predictions: ', h('strong', {}, d.package)),
        h('button', { class: `small ed-pred-toggle${on ? ' active' : ''}`, 'aria-pressed': String(on),
          onclick: () => this.actions.toggle(), onmousedown: (e) => e.preventDefault() },
        on ? 'Hide' : 'Show', h('kbd', {}, 'O')),
        on && busy ? h('p', { class: 'muted ed-pred-status' }, busy) : null,
        on && this.error ? h('p', { class: 'ed-pred-error' }, this.error) : null,
        on && !busy && p && !this.suggestion ? h('p', { class: 'ed-pred-status' }, predictionSummary(p),
          p.detections ? ' (dashed, not saved)' : '') : null,
        on && !busy && p && this.suggestion ? this.renderSuggestions() : null,
        on && !busy && p && p.scores && !p.segments ? scoreList(p, this.scoreClasses(p.scores)) : null,
        on && !busy && this.canAccept() && this.boxes().length ? h('button', { class: 'small ed-pred-accept',
          onclick: () => this.actions.accept(), onmousedown: (e) => e.preventDefault() },
        this.suggestion ? 'Accept all shown' : 'Add these boxes', h('kbd', {}, 'Shift+O')) : null,
      ];
    }
    this.panelEl.hidden = false;
    replaceChildren(this.panelEl, h('h3', {}, 'Model'), body);
  }

  /** Pre-annotation: how many suggestions are shown, the threshold slider and the selected suggestion. */
  renderSuggestions() {
    const t = this.threshold;
    const n = this.shownIndexes().length;
    const chosen = this.selectedBox();
    const label = h('output', { class: 'ed-pred-t' }, t.toFixed(2));
    const slider = h('input', { type: 'range', min: '0', max: '1', step: '0.01', value: String(t),
      'aria-label': 'Score threshold of the suggestions', 'data-testid': 'ed-pred-threshold',
      oninput: (e) => { label.textContent = Number(e.target.value).toFixed(2); },
      onchange: (e) => { this.setThreshold(Number(e.target.value)); e.target.blur(); } });
    const name = chosen ? (this.byId.get(chosen.cls) || {}).name || chosen.cls : '';
    return [
      h('p', { class: 'ed-pred-status' }, `${n} suggestion${n === 1 ? '' : 's'} at or above the threshold `
        + '(dashed, not saved until accepted; click one to select it)'),
      h('label', { class: 'ed-pred-slider' }, 'Score ≥ ', slider, label),
      chosen ? h('p', { class: 'ed-pred-selected' }, `Selected: ${name} ${Math.round(chosen.score * 100)}% `,
        h('button', { class: 'small ed-pred-accept-one', onclick: () => this.actions.acceptOne(),
          onmousedown: (e) => e.preventDefault() }, 'Accept', h('kbd', {}, 'Enter'))) : null,
    ];
  }

  dispose() {
    this.disposed = true;
    this.canvas.map.un('click', this.onClick);
  }
}
