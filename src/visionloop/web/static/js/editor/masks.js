// Masks on the canvas: the semantic mask editor (brush, eraser, fill per class) and the drawing of instance masks
// given as RLE. A mask is a column-major Int32Array of class ids (index = x * height + y, as COCO RLE runs), shown
// through one offscreen canvas of the image's size (one colour per class, half transparent).

import * as ol from '../../vendor/ol/ol.js';
import { colorOf } from '../ui.js';
import { encodeWhere, forEachOnes } from './rle.js';

const ALPHA = 115; // of 255
const MAX_PIXELS = 1 << 25; // larger semantic masks are shown but not edited in the browser
const SIZES = [2, 4, 8, 12, 20, 32, 48, 72, 100];

function rgbOf(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** A layer showing `offscreen` (a canvas of the image's size) over the image, pixels kept sharp when zoomed in. */
function overlayLayer(canvas, offscreen) {
  const source = new ol.source.ImageCanvas({
    canvasFunction: (extent, resolution, pixelRatio, size) => {
      const out = document.createElement('canvas');
      out.width = size[0];
      out.height = size[1];
      const ctx = out.getContext('2d');
      ctx.imageSmoothingEnabled = false;
      const [x1, y1, x2, y2] = extent;
      const H = canvas.H;
      ctx.drawImage(offscreen, x1, H - y2, x2 - x1, y2 - y1, 0, 0, size[0], size[1]);
      return out;
    },
    ratio: 1,
  });
  const layer = new ol.layer.Image({ source, zIndex: 1 });
  canvas.addLayer(layer);
  return { source, layer };
}

class Painter extends ol.interaction.Pointer {
  constructor(editor) {
    super();
    this.editor = editor;
    this.last = null;
  }

  handleDownEvent(evt) {
    const ed = this.editor;
    if (ed.readOnly || ed.spaceDown || evt.originalEvent.button !== 0 || !ed.editable) return false;
    const [x, y] = ed.pixelOf(evt.coordinate);
    if (ed.tool === 'fill') {
      if (ed.fill(x, y)) ed.onChange();
      return false;
    }
    ed.paint(x, y, x, y);
    this.last = [x, y];
    return true;
  }

  handleDragEvent(evt) {
    const [x, y] = this.editor.pixelOf(evt.coordinate);
    this.editor.paint(this.last[0], this.last[1], x, y);
    this.last = [x, y];
    this.editor.cursorAt(evt.coordinate);
  }

  handleUpEvent() {
    this.last = null;
    this.editor.onChange();
    return false;
  }

  handleMoveEvent(evt) {
    this.editor.cursorAt(evt.coordinate);
  }
}

export class MaskEditor {
  /** Semantic masks: `onChange()` after each stroke or fill; `currentClass()` the class painted. */
  constructor(canvas, { classes, onChange, currentClass, readOnly }) {
    Object.assign(this, { canvas, classes, onChange, currentClass, readOnly });
    this.tool = 'brush';
    this.size = 12;
    this.spaceDown = false;
    this.colours = new Map(classes.map((c) => [c.id, rgbOf(colorOf(c))]));
    this.offscreen = document.createElement('canvas');
    this.overlay = overlayLayer(canvas, this.offscreen);
    this.cursor = new ol.Feature(new ol.geom.Circle([0, 0], 1));
    const cursorSource = new ol.source.Vector({ features: [this.cursor], useSpatialIndex: false });
    canvas.addLayer(new ol.layer.Vector({ source: cursorSource, zIndex: 5,
      style: new ol.style.Style({ stroke: new ol.style.Stroke({ color: '#ffffff', width: 1.5 }) }) }));
    const map = canvas.map;
    map.addInteraction(new ol.interaction.DragPan({ condition: (e) => this.spaceDown || e.originalEvent.button === 1 }));
    map.addInteraction(new ol.interaction.MouseWheelZoom({ constrainResolution: false, duration: 120 }));
    map.addInteraction(new Painter(this));
    this.frame = 0;
  }

  /** Show `payload` (a semantic payload or null) on the image of `detail`. */
  load(payload, detail) {
    const W = detail.width;
    const H = detail.height;
    this.W = W;
    this.H = H;
    this.ignore = payload && payload.ignore_index !== undefined ? payload.ignore_index : 255;
    this.editable = W * H <= MAX_PIXELS;
    this.labels = new Int32Array(W * H).fill(this.ignore);
    if (payload && payload.classes) {
      for (const [cid, counts] of Object.entries(payload.classes)) {
        const id = Number(cid);
        forEachOnes(counts, (a, b) => this.labels.fill(id, a, b));
      }
    }
    this.offscreen.width = W;
    this.offscreen.height = H;
    this.ctx = this.offscreen.getContext('2d');
    this.image = this.ctx.createImageData(W, H);
    this.redraw(0, 0, W, H);
  }

  payload() {
    const present = new Set(this.labels);
    present.delete(this.ignore);
    const classes = {};
    for (const id of [...present].sort((a, b) => a - b)) classes[String(id)] = encodeWhere(this.labels, id);
    return { type: 'semantic', size: [this.H, this.W], ignore_index: this.ignore, classes };
  }

  setTool(name) {
    this.tool = name;
    this.canvas.map.getTargetElement().style.cursor = name === 'fill' ? 'cell' : 'none';
  }

  resize(step) {
    const i = SIZES.findIndex((s) => s >= this.size);
    this.size = SIZES[Math.max(0, Math.min(SIZES.length - 1, (i < 0 ? SIZES.length - 1 : i) + step))];
  }

  /** The image pixel (column, row) of a map coordinate. */
  pixelOf([x, y]) {
    return [Math.floor(x), Math.floor(this.H - y)];
  }

  cursorAt(coordinate) {
    const show = this.tool !== 'fill' && !this.spaceDown;
    this.cursor.getGeometry().setCenterAndRadius(coordinate, show ? this.size / 2 : 0);
  }

  /** Paint a stroke of discs from (x0, y0) to (x1, y1) with the current class (the eraser: unlabelled). */
  paint(x0, y0, x1, y1) {
    const value = this.tool === 'eraser' ? this.ignore : this.currentClass();
    const r = this.size / 2;
    const steps = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0) / Math.max(1, r / 2)));
    let bx1 = Infinity;
    let by1 = Infinity;
    let bx2 = -Infinity;
    let by2 = -Infinity;
    const { W, H, labels } = this;
    for (let s = 0; s <= steps; s++) {
      const cx = x0 + ((x1 - x0) * s) / steps + 0.5;
      const cy = y0 + ((y1 - y0) * s) / steps + 0.5;
      const xa = Math.max(0, Math.floor(cx - r));
      const xb = Math.min(W - 1, Math.ceil(cx + r));
      const ya = Math.max(0, Math.floor(cy - r));
      const yb = Math.min(H - 1, Math.ceil(cy + r));
      for (let x = xa; x <= xb; x++) {
        for (let y = ya; y <= yb; y++) {
          if ((x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 <= r * r) labels[x * H + y] = value;
        }
      }
      bx1 = Math.min(bx1, xa);
      by1 = Math.min(by1, ya);
      bx2 = Math.max(bx2, xb);
      by2 = Math.max(by2, yb);
    }
    if (bx2 >= bx1) this.redraw(bx1, by1, bx2 + 1, by2 + 1);
  }

  /** Fill the 4-connected region of (x, y)'s class with the current class; false when nothing changed. */
  fill(x, y) {
    const { W, H, labels } = this;
    if (x < 0 || y < 0 || x >= W || y >= H) return false;
    const from = labels[x * H + y];
    const to = this.currentClass();
    if (from === to) return false;
    const stack = new Int32Array(W * H);
    let top = 0;
    stack[top++] = x * H + y;
    labels[x * H + y] = to;
    while (top) {
      const i = stack[--top];
      const px = Math.floor(i / H);
      const py = i - px * H;
      if (py > 0 && labels[i - 1] === from) { labels[i - 1] = to; stack[top++] = i - 1; }
      if (py < H - 1 && labels[i + 1] === from) { labels[i + 1] = to; stack[top++] = i + 1; }
      if (px > 0 && labels[i - H] === from) { labels[i - H] = to; stack[top++] = i - H; }
      if (px < W - 1 && labels[i + H] === from) { labels[i + H] = to; stack[top++] = i + H; }
    }
    this.redraw(0, 0, W, H);
    return true;
  }

  /** Colour the pixels of the rectangle [x1, x2) x [y1, y2) from the labels, and show them. */
  redraw(x1, y1, x2, y2) {
    const { W, H, labels } = this;
    const data = this.image.data;
    for (let y = y1; y < y2; y++) {
      for (let x = x1; x < x2; x++) {
        const v = labels[x * H + y];
        const o = (y * W + x) * 4;
        const rgb = v === this.ignore ? null : this.colours.get(v) || [156, 163, 175];
        if (rgb) {
          data[o] = rgb[0]; data[o + 1] = rgb[1]; data[o + 2] = rgb[2]; data[o + 3] = ALPHA;
        } else data[o + 3] = 0;
      }
    }
    this.ctx.putImageData(this.image, 0, 0, x1, y1, x2 - x1, y2 - y1);
    if (!this.frame) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.overlay.source.changed();
      });
    }
  }
}

/** Instance masks given as RLE (imported ones): drawn under their boxes, redrawn when the shapes change. */
export class InstanceMasks {
  constructor(canvas, classes) {
    this.canvas = canvas;
    this.colours = new Map(classes.map((c) => [c.id, rgbOf(colorOf(c))]));
    this.offscreen = document.createElement('canvas');
    this.overlay = overlayLayer(canvas, this.offscreen);
    this.pending = 0;
  }

  /** Draw the masks of `features` (those of kind 'mask'). */
  draw(features) {
    const { W, H } = this.canvas;
    const masks = features.filter((f) => f.get('kind') === 'mask');
    this.overlay.layer.setVisible(masks.length > 0);
    if (!masks.length) return;
    this.offscreen.width = W;
    this.offscreen.height = H;
    const ctx = this.offscreen.getContext('2d');
    const image = ctx.createImageData(W, H);
    const data = image.data;
    for (const f of masks) {
      const rgb = this.colours.get(f.get('cls')) || [156, 163, 175];
      forEachOnes(f.get('rle').counts, (a, b) => {
        for (let i = a; i < b; i++) {
          const x = Math.floor(i / H);
          const o = ((i - x * H) * W + x) * 4;
          data[o] = rgb[0]; data[o + 1] = rgb[1]; data[o + 2] = rgb[2]; data[o + 3] = ALPHA;
        }
      });
    }
    ctx.putImageData(image, 0, 0);
    this.overlay.source.changed();
  }
}
