// Masks on the canvas: the semantic mask editor (brush, eraser, fill per class) and the drawing of instance masks
// given as RLE. A mask is a column-major Int32Array of class ids (index = x * height + y, as COCO RLE runs), shown
// through one offscreen canvas of the image's size (one colour per class, half transparent).

import * as ol from '../../vendor/ol/ol.js';
import { colorOf } from '../ui.js';
import { countsOf, encodeWhere, forEachOnes } from './rle.js';
import { boxGeometry } from './shapes.js';

const ALPHA = 115; // of 255
const MAX_PIXELS = 1 << 25; // larger semantic masks are shown but not edited in the browser
const SIZES = [2, 4, 8, 12, 20, 32, 48, 72, 100];

function rgbOf(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/**
 * Paint a stroke of discs of radius `r` from (x0, y0) to (x1, y1) into the column-major `buf` (W x H) with
 * `value`; returns the changed rectangle [x1, y1, x2, y2) or null.
 */
export function stroke(buf, W, H, x0, y0, x1, y1, r, value) {
  const steps = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0) / Math.max(1, r / 2)));
  let bx1 = Infinity;
  let by1 = Infinity;
  let bx2 = -Infinity;
  let by2 = -Infinity;
  for (let s = 0; s <= steps; s++) {
    const cx = x0 + ((x1 - x0) * s) / steps + 0.5;
    const cy = y0 + ((y1 - y0) * s) / steps + 0.5;
    const xa = Math.max(0, Math.floor(cx - r));
    const xb = Math.min(W - 1, Math.ceil(cx + r));
    const ya = Math.max(0, Math.floor(cy - r));
    const yb = Math.min(H - 1, Math.ceil(cy + r));
    for (let x = xa; x <= xb; x++) {
      for (let y = ya; y <= yb; y++) {
        if ((x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 <= r * r) buf[x * H + y] = value;
      }
    }
    bx1 = Math.min(bx1, xa);
    by1 = Math.min(by1, ya);
    bx2 = Math.max(bx2, xb);
    by2 = Math.max(by2, yb);
  }
  return bx2 >= bx1 ? [bx1, by1, bx2 + 1, by2 + 1] : null;
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
    if (!ed.painting() || ed.spaceDown || evt.originalEvent.button !== 0) return false;
    const [x, y] = ed.pixelOf(evt.coordinate);
    if (ed.tool === 'fill') {
      if (ed.fill(x, y)) ed.onChange();
      return false;
    }
    if (ed.begin && !ed.begin(x, y)) return false;
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
    if (this.editor.end) this.editor.end();
    else this.editor.onChange();
    return false;
  }

  handleMoveEvent(evt) {
    this.editor.cursorAt(evt.coordinate);
  }
}

/** The round brush outline that follows the pointer (radius in image pixels; 0 hides it). */
function brushCursor(canvas) {
  const feature = new ol.Feature(new ol.geom.Circle([0, 0], 0));
  const source = new ol.source.Vector({ features: [feature], useSpatialIndex: false });
  canvas.addLayer(new ol.layer.Vector({ source, zIndex: 30,
    style: new ol.style.Style({ stroke: new ol.style.Stroke({ color: '#ffffff', width: 1.5 }) }) }));
  return (coordinate, radius) => feature.getGeometry().setCenterAndRadius(coordinate, radius);
}

function nextSize(size, step) {
  const i = SIZES.findIndex((s) => s >= size);
  return SIZES[Math.max(0, Math.min(SIZES.length - 1, (i < 0 ? SIZES.length - 1 : i) + step))];
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
    this.showCursor = brushCursor(canvas);
    const map = canvas.map;
    map.addInteraction(new ol.interaction.DragPan({
      condition: (e) => this.spaceDown || e.originalEvent.button === 1 }));
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
    this.size = nextSize(this.size, step);
  }

  painting() {
    return !this.readOnly && this.editable;
  }

  /** The image pixel (column, row) of a map coordinate. */
  pixelOf([x, y]) {
    return [Math.floor(x), Math.floor(this.H - y)];
  }

  cursorAt(coordinate) {
    this.showCursor(coordinate, this.tool !== 'fill' && !this.spaceDown ? this.size / 2 : 0);
  }

  /** Paint a stroke from (x0, y0) to (x1, y1) with the current class (the eraser: unlabelled). */
  paint(x0, y0, x1, y1) {
    const value = this.tool === 'eraser' ? this.ignore : this.currentClass();
    const rect = stroke(this.labels, this.W, this.H, x0, y0, x1, y1, this.size / 2, value);
    if (rect) this.redraw(...rect);
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

/** Instance masks given as RLE: drawn under their boxes, redrawn when the shapes change; the brush paints into it. */
export class InstanceMasks {
  constructor(canvas, classes) {
    this.canvas = canvas;
    this.colours = new Map(classes.map((c) => [c.id, rgbOf(colorOf(c))]));
    this.offscreen = document.createElement('canvas');
    this.overlay = overlayLayer(canvas, this.offscreen);
    this.frame = 0;
  }

  colourOf(cls) {
    return this.colours.get(cls) || [156, 163, 175];
  }

  /** A blank overlay of the image's size (kept while the size stays). */
  blank() {
    const { W, H } = this.canvas;
    if (this.offscreen.width !== W || this.offscreen.height !== H || !this.image) {
      this.offscreen.width = W;
      this.offscreen.height = H;
      this.ctx = this.offscreen.getContext('2d');
      this.image = this.ctx.createImageData(W, H);
    } else this.image.data.fill(0);
    return this.image.data;
  }

  show() {
    this.overlay.layer.setVisible(true);
    if (!this.frame) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.overlay.source.changed();
      });
    }
  }

  /** Draw the masks of `features` (those of kind 'mask'). */
  draw(features) {
    const { W, H } = this.canvas;
    const masks = features.filter((f) => f.get('kind') === 'mask');
    this.overlay.layer.setVisible(masks.length > 0);
    if (!masks.length) return;
    const data = this.blank();
    for (const f of masks) {
      const rgb = this.colourOf(f.get('cls'));
      forEachOnes(f.get('rle').counts, (a, b) => {
        for (let i = a; i < b; i++) {
          const x = Math.floor(i / H);
          const o = ((i - x * H) * W + x) * 4;
          data[o] = rgb[0]; data[o + 1] = rgb[1]; data[o + 2] = rgb[2]; data[o + 3] = ALPHA;
        }
      });
    }
    this.ctx.putImageData(this.image, 0, 0);
    this.show();
  }

  /** While a stroke is painted: show the pixels of `buf` (column-major 0/1) in the rectangle [x1, y1, x2, y2). */
  paintRect(buf, [x1, y1, x2, y2], rgb) {
    const { W, H } = this.canvas;
    if (!this.image || this.offscreen.width !== W) this.blank();
    const data = this.image.data;
    for (let x = x1; x < x2; x++) {
      for (let y = y1; y < y2; y++) {
        const o = (y * W + x) * 4;
        if (buf[x * H + y]) {
          data[o] = rgb[0]; data[o + 1] = rgb[1]; data[o + 2] = rgb[2]; data[o + 3] = ALPHA;
        } else data[o + 3] = 0; // the eraser (another mask here shows again when the stroke ends)
      }
    }
    this.ctx.putImageData(this.image, 0, 0, x1, y1, x2 - x1, y2 - y1);
    this.show();
  }
}

/** Brush and eraser for instance masks: they paint the selected mask instance (the brush starts a new one of the
 * current class when none is selected); an instance erased to nothing is deleted. */
export class InstanceBrush {
  constructor(canvas, tools, masks) {
    Object.assign(this, { canvas, tools, masks });
    this.tool = null;
    this.size = 12;
    this.showCursor = brushCursor(canvas);
    canvas.map.addInteraction(new Painter(this));
  }

  get spaceDown() { return this.tools.spaceDown; }

  painting() {
    return (this.tool === 'brush' || this.tool === 'eraser') && this.tools.editable;
  }

  setTool(name) {
    this.tool = name;
    if (!this.painting()) this.showCursor([0, 0], 0);
  }

  resize(step) {
    this.size = nextSize(this.size, step);
  }

  pixelOf([x, y]) {
    return [Math.floor(x), Math.floor(this.canvas.H - y)];
  }

  cursorAt(coordinate) {
    this.showCursor(coordinate, this.painting() && !this.spaceDown ? this.size / 2 : 0);
  }

  begin(x, y) {
    const { W, H } = this.canvas;
    let f = this.tools.selected;
    if (!f || f.get('kind') !== 'mask') {
      if (this.tool === 'eraser') return false;
      f = this.tools.add('mask', boxGeometry([x, y, x + 1, y + 1], H));
      f.set('rle', { size: [H, W], counts: countsOf([W * H]) }, true);
      this.tools.select(f);
    }
    this.target = f;
    this.buf = new Uint8Array(W * H);
    forEachOnes(f.get('rle').counts, (a, b) => this.buf.fill(1, a, b));
    this.rgb = this.masks.colourOf(f.get('cls'));
    return true;
  }

  paint(x0, y0, x1, y1) {
    const { W, H } = this.canvas;
    const rect = stroke(this.buf, W, H, x0, y0, x1, y1, this.size / 2, this.tool === 'eraser' ? 0 : 1);
    if (rect) this.masks.paintRect(this.buf, rect, this.rgb);
  }

  end() {
    const { W, H } = this.canvas;
    const { buf, target: f } = this;
    this.buf = null;
    this.target = null;
    let x1 = Infinity;
    let y1 = Infinity;
    let x2 = -1;
    let y2 = -1;
    for (let x = 0; x < W; x++) {
      for (let y = 0, i = x * H; y < H; y++, i++) {
        if (!buf[i]) continue;
        if (x < x1) x1 = x;
        if (x > x2) x2 = x;
        if (y < y1) y1 = y;
        if (y > y2) y2 = y;
      }
    }
    if (x2 < 0) {
      this.tools.deleteSelected(); // erased to nothing
      return;
    }
    f.set('rle', { size: [H, W], counts: encodeWhere(buf, 1) }, true);
    f.setGeometry(boxGeometry([x1, y1, x2 + 1, y2 + 1], H));
    this.tools.changed('mask');
  }
}
