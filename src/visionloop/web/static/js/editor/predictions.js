// The deployed model's predictions over the open image, so a person sees what the model does: boxes on a vector
// layer of their own (dashed outlines in the class colour, a small score label), masks as a translucent image, and
// for classification and tagging the labels with their scores in the panel. Never editable and never saved: the
// tools and the payload (shapes.js payloadOf) read only the canvas's annotation source, never these layers.
//
// The answer is the model server's JSON (inference/results.py Prediction.to_json), already thresholded by the
// package. Predictions load only while shown; the choice is kept for the next images (and this browser tab).

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

/** Fetch an image's predictions ahead (the next image), only while they are shown. */
export function prefetchPredictions(project, imageId) {
  if (!predictionsShown(project)) return;
  deploymentOf(project).then((d) => d.package && predictionOf(project, d.package, imageId)).catch(() => {});
}

export class Predictions {
  /** `panelEl`: the panel's section to fill; `actions`: {toggle(), accept()}; `canAccept()`: whether Shift+O
   * may add the boxes to the annotation. `classes`: the project's classes (colours; a predicted class is the
   * project class of the same name, else of the same id). */
  constructor(canvas, { project, detail, classes, panelEl, actions, canAccept }) {
    this.canvas = canvas;
    this.project = project;
    this.detail = detail;
    this.panelEl = panelEl;
    this.actions = actions;
    this.canAccept = canAccept;
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
    if (this.deployment === undefined) return;
    if (!this.deployment.package) {
      this.render(); // the panel already says so and links to the Models page
      return;
    }
    setShown(this.project, !this.on);
    if (this.on) await this.load();
    else this.hide();
  }

  async load() {
    this.error = null;
    this.render('Asking the model…');
    let prediction;
    try {
      prediction = await predictionOf(this.project, this.deployment.package, this.detail.id);
    } catch (e) {
      this.error = e.detail || e.message;
      prediction = null;
    }
    if (this.disposed || !this.on) return;
    this.prediction = prediction;
    this.draw();
    this.render();
  }

  hide() {
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

  /** The predicted boxes as {xyxy, cls} of project classes (objects of classes the project lacks are left out). */
  boxes() {
    if (!this.on || !this.prediction) return [];
    return (this.prediction.detections || []).map((d) => ({ xyxy: d.xyxy, cls: (this.classOf(d) || {}).id }))
      .filter((b) => b.cls !== undefined);
  }

  /** The project classes of predicted labels, under the package's class ids (for scoreList's colours). */
  scoreClasses(scores) {
    return scores.map((s) => ({ ...(this.classOf(s) || {}), id: s.class_id }));
  }

  draw() {
    const H = this.detail.height;
    const detections = (this.prediction && this.prediction.detections) || [];
    this.source.clear(true);
    this.source.addFeatures(detections.map((d) => {
      const colour = this.colourOf(d);
      const style = [
        new ol.style.Style({ stroke: new ol.style.Stroke({ color: colour, width: 2, lineDash: [6, 4] }) }),
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
      ];
      return new ol.Feature({ geometry: boxGeometry(d.xyxy, H), style, cls: d.class_id, name: d.name,
        score: d.score });
    }));
    this.layer.setVisible(true);
    this.drawMasks([...((this.prediction && this.prediction.segments) || []), ...detections.filter((d) => d.mask)]);
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
        on && !busy && p ? h('p', { class: 'ed-pred-status' }, predictionSummary(p),
          p.detections ? ' (dashed, not saved)' : '') : null,
        on && !busy && p && p.scores && !p.segments ? scoreList(p, this.scoreClasses(p.scores)) : null,
        on && !busy && this.canAccept() && this.boxes().length ? h('button', { class: 'small ed-pred-accept',
          onclick: () => this.actions.accept(), onmousedown: (e) => e.preventDefault() },
        'Add these boxes', h('kbd', {}, 'Shift+O')) : null,
      ];
    }
    this.panelEl.hidden = false;
    replaceChildren(this.panelEl, h('h3', {}, 'Model'), body);
  }

  dispose() {
    this.disposed = true;
  }
}
