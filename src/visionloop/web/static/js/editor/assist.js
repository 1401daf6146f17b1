// Assisted segmentation in the editor (outlines of a segmentation project): with the assist tool (I), a click on
// an object (Shift+click: on what is not the object) or a box dragged round it asks the server for a mask
// (POST .../images/{id}/assist, serving/projects_api/routes/assist.py); the answer's outline is shown as a preview
// on a layer of its own, never part of the annotation. More clicks refine it (every click so far and the previous
// mask are sent); Enter keeps it as an outline of the current class (one edit of the history: undoable, saved like
// any other), Esc drops it. Shift+I changes the method (the server lists them: GrabCut, superpixels, an operator's
// ONNX model).

import * as ol from '../../vendor/ol/ol.js';
import { ApiError, api, projectPath } from '../api.js';
import { toast } from '../ui.js';

const MIN_BOX_PX = 5; // a drag shorter than this on screen is a click

const STYLE = {
  preview: new ol.style.Style({
    stroke: new ol.style.Stroke({ color: '#facc15', width: 2, lineDash: [6, 4] }),
    fill: new ol.style.Fill({ color: 'rgba(250, 204, 21, 0.25)' }),
  }),
  box: new ol.style.Style({ stroke: new ol.style.Stroke({ color: '#38bdf8', width: 1.5, lineDash: [4, 4] }) }),
  positive: new ol.style.Style({ image: new ol.style.Circle({ radius: 5,
    fill: new ol.style.Fill({ color: '#22c55e' }), stroke: new ol.style.Stroke({ color: '#ffffff', width: 1.5 }) }) }),
  negative: new ol.style.Style({ image: new ol.style.Circle({ radius: 5,
    fill: new ol.style.Fill({ color: '#ef4444' }), stroke: new ol.style.Stroke({ color: '#ffffff', width: 1.5 }) }) }),
};

class AssistPointer extends ol.interaction.Pointer {
  constructor(assist) {
    super();
    this.assist = assist;
    this.down = null;
  }

  handleDownEvent(evt) {
    const a = this.assist;
    if (!a.active || a.editor.tools.spaceDown || evt.originalEvent.button !== 0) return false;
    this.down = { pixel: evt.pixel, image: a.imagePoint(evt.coordinate), shift: evt.originalEvent.shiftKey };
    return true; // the drag is ours (a box), not the map's pan
  }

  handleDragEvent(evt) {
    if (!this.down) return;
    const [x, y] = this.assist.imagePoint(evt.coordinate);
    const [ax, ay] = this.down.image;
    this.assist.showBox([Math.min(ax, x), Math.min(ay, y), Math.max(ax, x), Math.max(ay, y)]);
  }

  handleUpEvent(evt) {
    const down = this.down;
    this.down = null;
    if (!down) return false;
    const far = Math.abs(evt.pixel[0] - down.pixel[0]) >= MIN_BOX_PX
      && Math.abs(evt.pixel[1] - down.pixel[1]) >= MIN_BOX_PX;
    if (far) {
      const [x, y] = this.assist.imagePoint(evt.coordinate);
      const [ax, ay] = down.image;
      this.assist.promptBox([Math.min(ax, x), Math.min(ay, y), Math.max(ax, x), Math.max(ay, y)]);
    } else {
      this.assist.promptClick(down.image, !down.shift);
    }
    return false;
  }
}

export class Assist {
  /** `editor`: the Editor (its canvas, tools, detail, project, edited()). */
  constructor(editor) {
    this.editor = editor;
    this.canvas = editor.canvas;
    this.active = false;
    this.methods = [];
    this.method = null;
    this.seq = 0;
    this.source = new ol.source.Vector({ useSpatialIndex: false });
    this.canvas.addLayer(new ol.layer.Vector({ source: this.source, zIndex: 25, updateWhileInteracting: true,
      style: (f) => STYLE[f.get('role')] }));
    this.canvas.map.addInteraction(new AssistPointer(this)); // added last: it sees the pointer first
    this.reset();
    this.loadMethods();
  }

  async loadMethods() {
    try {
      this.methods = await api.get(projectPath(this.editor.project, 'assist/methods'));
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      this.methods = [];
    }
    const model = this.methods.find((m) => m.model); // the operator's model, when there is one, else the default
    const chosen = model || this.methods.find((m) => m.default) || this.methods[0];
    this.method = chosen ? chosen.name : null;
  }

  /** The prompt and the answer so far (nothing). */
  reset() {
    this.box = null;
    this.points = [];
    this.answer = null;
    this.pending = false;
    this.seq += 1; // an answer still on its way is dropped
    this.source.clear();
  }

  setTool(name) {
    const on = name === 'assist';
    if (this.active && !on) this.reset();
    this.active = on;
  }

  imagePoint(coordinate) {
    const [x, y] = this.canvas.toImage(coordinate);
    const { width: W, height: H } = this.editor.detail;
    return [Math.max(0, Math.min(W, x)), Math.max(0, Math.min(H, y))];
  }

  showBox(box) {
    for (const f of this.source.getFeatures()) if (f.get('role') === 'box') this.source.removeFeature(f);
    if (!box) return;
    const [x1, y1, x2, y2] = box;
    const ring = [[x1, y1], [x2, y1], [x2, y2], [x1, y2], [x1, y1]].map((p) => this.canvas.toMap(p));
    this.source.addFeature(new ol.Feature({ role: 'box', geometry: new ol.geom.Polygon([ring]) }));
  }

  /** A new box starts a new prompt. */
  promptBox(box) {
    this.reset();
    this.box = box;
    this.ask();
  }

  promptClick([x, y], positive) {
    if (!positive && !this.box && !this.points.some((p) => p.positive)) {
      toast('Click on the object first: Shift+click marks what is not the object.', 'info');
      return;
    }
    this.points.push({ x, y, positive });
    this.ask();
  }

  async ask() {
    if (!this.method) await this.loadMethods();
    const seq = ++this.seq;
    const body = { method: this.method, points: this.points };
    if (this.box) body.box = this.box;
    if (this.answer && this.answer.area) body.previous_rle = this.answer.rle;
    this.pending = true;
    this.draw();
    try {
      const answer = await api.post(projectPath(this.editor.project, `images/${this.editor.id}/assist`), body);
      if (seq !== this.seq) return; // reset or asked again meanwhile
      this.answer = answer;
      if (!answer.area) toast('Nothing found there: click inside the object, or draw a box round it.', 'info');
    } catch (e) {
      if (seq !== this.seq) return;
      if (!(e instanceof ApiError)) throw e;
      this.points.pop();
      toast(`Assist: ${e.detail || e.message}`, 'error');
    } finally {
      if (seq === this.seq) {
        this.pending = false;
        this.draw();
      }
    }
  }

  /** The preview: the answer's outline, the box and the clicks. */
  draw() {
    this.source.clear();
    if (this.answer && this.answer.polygon.length >= 6) {
      const ring = [];
      for (let i = 0; i + 1 < this.answer.polygon.length; i += 2) {
        ring.push(this.canvas.toMap([this.answer.polygon[i], this.answer.polygon[i + 1]]));
      }
      ring.push(ring[0]);
      this.source.addFeature(new ol.Feature({ role: 'preview', geometry: new ol.geom.Polygon([ring]) }));
    }
    this.showBox(this.box);
    for (const p of this.points) {
      this.source.addFeature(new ol.Feature({ role: p.positive ? 'positive' : 'negative',
        geometry: new ol.geom.Point(this.canvas.toMap([p.x, p.y])) }));
    }
  }

  /** Whether there is a preview to keep. */
  hasPreview() {
    return Boolean(this.answer && this.answer.polygon.length >= 6);
  }

  /** Enter: keep the preview as an outline of the current class (one edit), then start again. */
  accept() {
    if (!this.hasPreview() || this.pending) return false;
    const ring = this.source.getFeatures().find((f) => f.get('role') === 'preview');
    const f = this.editor.tools.add('polygon', ring.getGeometry().clone());
    this.reset();
    this.editor.tools.select(f, true);
    this.editor.edited();
    return true;
  }

  cycleMethod() {
    if (!this.methods.length) return;
    const i = this.methods.findIndex((m) => m.name === this.method);
    this.method = this.methods[(i + 1) % this.methods.length].name;
    toast(`Assist method: ${this.methods.find((m) => m.name === this.method).title}`, 'info', { timeout: 2500 });
    if (this.box || this.points.length) {
      this.answer = null;
      this.ask();
    }
  }

  /** The keys of assisted segmentation, for the editor's table (they come before its own). */
  bindings(setTool) {
    const on = () => this.active;
    return [
      { keys: ['i'], label: 'Assist tool: click an object (Shift+click: not the object) or drag a box round it; '
        + 'more clicks refine the mask', group: 'Tools', when: () => !this.editor.readOnly, run: () => setTool() },
      { keys: ['enter'], label: 'Assist: keep the previewed mask as an outline of the current class', group: 'Tools',
        when: () => on() && this.hasPreview(), run: () => this.accept() },
      { keys: ['escape'], label: 'Assist: drop the preview and the clicks', group: 'Tools',
        when: () => on() && (this.box || this.points.length), run: () => this.reset() },
      { keys: ['shift+i'], label: 'Assist: next method (GrabCut, superpixels, a model when the server has one)',
        group: 'Tools', when: on, run: () => this.cycleMethod() },
    ];
  }
}
