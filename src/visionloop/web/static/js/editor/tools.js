// The drawing tools on the canvas: select / move / resize (one pointer interaction that works on the selected shape
// only, so a drag touches one feature), draw boxes by dragging, draw polygons vertex by vertex (ol Draw), edit a
// polygon's vertices (ol Modify), pan with a drag on empty space, with Space held, or with the middle button.

import * as ol from '../../vendor/ol/ol.js';
import { makeFeature } from './shapes.js';

const HANDLE_PX = 7;
const MIN_BOX_PX = 4;
const CURSORS = ['nesw-resize', 'nwse-resize', 'nesw-resize', 'nwse-resize', 'ns-resize', 'ns-resize',
  'ew-resize', 'ew-resize'];

/** Which handle of the box extent [x1, y1, x2, y2] (map coordinates) is within `tol` of `c`: 0-3 corners
 * (x1y1, x2y1, x2y2, x1y2), 4-7 edges (bottom, top, left, right), or -1. */
function handleAt([x1, y1, x2, y2], [x, y], tol) {
  const near = (a, b) => Math.abs(a - b) <= tol;
  const corners = [[x1, y1], [x2, y1], [x2, y2], [x1, y2]];
  for (let i = 0; i < 4; i++) if (near(x, corners[i][0]) && near(y, corners[i][1])) return i;
  const inX = x > x1 && x < x2;
  const inY = y > y1 && y < y2;
  if (inX && near(y, y1)) return 4;
  if (inX && near(y, y2)) return 5;
  if (inY && near(x, x1)) return 6;
  if (inY && near(x, x2)) return 7;
  return -1;
}

/** The handle tolerance for a box: `tol`, but at most a quarter of its shorter side (so a small box can still be
 * grabbed by its middle and moved; zoom in to resize it). */
function handleTolerance(feature, tol) {
  const [x1, y1, x2, y2] = feature.getGeometry().getExtent();
  return Math.min(tol, Math.min(x2 - x1, y2 - y1) / 4);
}

function setBox(feature, x1, y1, x2, y2) {
  feature.getGeometry().setCoordinates([[[x1, y1], [x1, y2], [x2, y2], [x2, y1], [x1, y1]]]);
}

class EditPointer extends ol.interaction.Pointer {
  constructor(tools) {
    super();
    this.tools = tools;
    this.op = null;
  }

  handleDownEvent(evt) {
    const t = this.tools;
    const button = evt.originalEvent.button;
    if (!(t.tool === 'select' || t.tool === 'box') || t.spaceDown || button !== 0 || !t.editable) return false;
    const c = evt.coordinate;
    const tol = HANDLE_PX * t.canvas.map.getView().getResolution();
    const sel = t.selected;
    if (sel) {
      if (sel.get('kind') === 'box') {
        const h = handleAt(sel.getGeometry().getExtent(), c, handleTolerance(sel, tol));
        if (h >= 0) {
          this.op = { mode: 'resize', handle: h, before: sel.getGeometry().getExtent().slice(), changed: false };
          return true;
        }
      }
      if (sel.getGeometry().intersectsCoordinate(c) && sel.get('kind') !== 'mask') {
        this.op = { mode: 'move', last: c, changed: false };
        return true;
      }
    }
    if (t.tool === 'box') {
      this.op = { mode: 'draw', start: t.clamp(c), pixel: evt.pixel };
      t.draft.clear();
      return true;
    }
    const hit = t.featureAt(c);
    t.select(hit);
    if (!hit || hit.get('kind') === 'mask') return false; // empty space (or a mask, not movable): let the map pan
    this.op = { mode: 'move', last: c, changed: false };
    return true;
  }

  handleDragEvent(evt) {
    const t = this.tools;
    const op = this.op;
    if (!op) return;
    const c = evt.coordinate;
    if (op.mode === 'move') {
      const [x1, y1, x2, y2] = t.selected.getGeometry().getExtent();
      let dx = c[0] - op.last[0];
      let dy = c[1] - op.last[1];
      dx = Math.max(-x1, Math.min(t.canvas.W - x2, dx));
      dy = Math.max(-y1, Math.min(t.canvas.H - y2, dy));
      if (dx || dy) {
        t.selected.getGeometry().translate(dx, dy);
        op.changed = true;
      }
      op.last = [op.last[0] + dx, op.last[1] + dy];
    } else if (op.mode === 'resize') {
      const [px, py] = t.clamp(c);
      let [x1, y1, x2, y2] = t.selected.getGeometry().getExtent();
      const h = op.handle;
      if (h === 0 || h === 3 || h === 6) x1 = px;
      if (h === 1 || h === 2 || h === 7) x2 = px;
      if (h === 0 || h === 1 || h === 4) y1 = py;
      if (h === 2 || h === 3 || h === 5) y2 = py;
      setBox(t.selected, Math.min(x1, x2), Math.min(y1, y2), Math.max(x1, x2), Math.max(y1, y2));
      op.changed = true;
    } else if (op.mode === 'draw') {
      const [ax, ay] = op.start;
      const [bx, by] = t.clamp(c);
      const geom = t.draftFeature ? t.draftFeature.getGeometry() : null;
      const coords = [[[ax, ay], [ax, by], [bx, by], [bx, ay], [ax, ay]]];
      if (geom) geom.setCoordinates(coords);
      else {
        t.draftFeature = makeFeature('box', new ol.geom.Polygon(coords), { cls: t.currentClass() });
        t.draft.addFeature(t.draftFeature);
      }
    }
  }

  handleUpEvent(evt) {
    const t = this.tools;
    const op = this.op;
    this.op = null;
    if (!op) return false;
    if (op.mode === 'move' || op.mode === 'resize') {
      if (op.changed) t.changed('move');
    } else if (op.mode === 'draw') {
      const draft = t.draftFeature;
      t.draftFeature = null;
      t.draft.clear();
      const dx = Math.abs(evt.pixel[0] - op.pixel[0]);
      const dy = Math.abs(evt.pixel[1] - op.pixel[1]);
      if (draft && dx >= MIN_BOX_PX && dy >= MIN_BOX_PX) {
        const [x1, y1, x2, y2] = draft.getGeometry().getExtent();
        const f = t.add('box', new ol.geom.Polygon([[[x1, y1], [x1, y2], [x2, y2], [x2, y1], [x1, y1]]]));
        t.select(f);
        t.changed('draw');
      } else {
        t.select(t.featureAt(evt.coordinate)); // a click picks the shape under it
      }
    }
    return false;
  }

  handleMoveEvent(evt) {
    const t = this.tools;
    const el = t.canvas.map.getTargetElement();
    if (t.spaceDown) {
      el.style.cursor = 'grab';
      return;
    }
    let cursor = t.tool === 'select' ? '' : 'crosshair';
    const sel = t.selected;
    if (sel && t.editable && (t.tool === 'select' || t.tool === 'box')) {
      const tol = HANDLE_PX * t.canvas.map.getView().getResolution();
      const h = sel.get('kind') === 'box'
        ? handleAt(sel.getGeometry().getExtent(), evt.coordinate, handleTolerance(sel, tol)) : -1;
      if (h >= 0) cursor = CURSORS[h];
      else if (sel.get('kind') !== 'mask' && sel.getGeometry().intersectsCoordinate(evt.coordinate)) cursor = 'move';
    }
    if (!cursor && t.tool === 'select' && t.featureAt(evt.coordinate)) cursor = 'pointer';
    el.style.cursor = cursor;
  }
}

export class Tools {
  /**
   * `canvas`: the Canvas; `onChange(what)`: called after every edit ('draw', 'move', 'delete', 'class', 'vertex');
   * `onSelect(feature|null)`; `currentClass()`: the class id new shapes get; `newProps()`: extra properties of a new
   * shape (a track id on video frames).
   */
  constructor(canvas, { onChange, onSelect, currentClass, newProps = () => ({}) }) {
    this.canvas = canvas;
    this.onChange = onChange;
    this.onSelect = onSelect;
    this.currentClass = currentClass;
    this.newProps = newProps;
    this.tool = 'none';
    this.editable = true;
    this.selected = null;
    this.spaceDown = false;
    this.nextOrder = 0;
    this.draft = new ol.source.Vector({ useSpatialIndex: false });
    this.draftFeature = null;
    canvas.addLayer(new ol.layer.Vector({ source: this.draft, zIndex: 20, updateWhileInteracting: true,
      style: new ol.style.Style({ stroke: new ol.style.Stroke({ color: '#facc15', width: 2, lineDash: [6, 4] }),
        fill: new ol.style.Fill({ color: 'rgba(250, 204, 21, 0.12)' }),
        image: new ol.style.Circle({ radius: 4, fill: new ol.style.Fill({ color: '#facc15' }) }) }) }));

    const map = canvas.map;
    this.pan = new ol.interaction.DragPan({ condition: (e) => e.originalEvent.button !== 2 });
    map.addInteraction(this.pan);
    map.addInteraction(new ol.interaction.MouseWheelZoom({ constrainResolution: false, duration: 120 }));
    map.addInteraction(new ol.interaction.PinchZoom());
    this.draw = new ol.interaction.Draw({
      source: this.draft, type: 'Polygon', stopClick: true,
      condition: (e) => e.originalEvent.button === 0 && !this.spaceDown,
      style: new ol.style.Style({ stroke: new ol.style.Stroke({ color: '#facc15', width: 2 }),
        fill: new ol.style.Fill({ color: 'rgba(250, 204, 21, 0.15)' }),
        image: new ol.style.Circle({ radius: 4, fill: new ol.style.Fill({ color: '#facc15' }),
          stroke: new ol.style.Stroke({ color: '#111827', width: 1 }) }) }),
    });
    this.draw.setActive(false);
    this.drawing = false;
    this.draw.on('drawstart', () => { this.drawing = true; });
    this.draw.on('drawabort', () => { this.drawing = false; });
    this.draw.on('drawend', (e) => {
      this.drawing = false;
      const geom = e.feature.getGeometry();
      setTimeout(() => this.draft.clear(), 0); // the Draw adds its feature after this event
      const f = this.add('polygon', geom);
      this.select(f);
      this.changed('draw');
    });
    map.addInteraction(this.draw);
    this.pointer = new EditPointer(this);
    map.addInteraction(this.pointer);
    this.modifyFeatures = new ol.Collection();
    this.modify = new ol.interaction.Modify({ features: this.modifyFeatures, pixelTolerance: 8 });
    this.modify.on('modifyend', () => this.changed('vertex'));
    map.addInteraction(this.modify);
  }

  /** 'select' | 'box' | 'polygon' | 'none' (no shape tools: classification, tagging, masks). */
  setTool(name) {
    if (this.drawing && name !== 'polygon') this.cancel();
    this.tool = name;
    this.draw.setActive(name === 'polygon' && this.editable);
    this.canvas.map.getTargetElement().style.cursor = name === 'select' || name === 'none' ? '' : 'crosshair';
  }

  setEditable(editable) {
    this.editable = editable;
    this.modify.setActive(editable);
    this.setTool(this.tool);
  }

  /** Keep a map coordinate inside the image. */
  clamp([x, y]) {
    return [Math.max(0, Math.min(this.canvas.W, x)), Math.max(0, Math.min(this.canvas.H, y))];
  }

  /** The smallest shape under a map coordinate (the selected one included). */
  featureAt(c) {
    let best = null;
    let bestArea = Infinity;
    const consider = (f) => {
      if (!f.getGeometry().intersectsCoordinate(c)) return;
      const [x1, y1, x2, y2] = f.getGeometry().getExtent();
      const area = (x2 - x1) * (y2 - y1);
      if (area < bestArea) {
        best = f;
        bestArea = area;
      }
    };
    this.canvas.source.forEachFeatureIntersectingExtent([c[0], c[1], c[0], c[1]], consider);
    if (this.selected) consider(this.selected);
    return best;
  }

  /** Every shape (the selected one included), in no particular order. */
  features() {
    const all = this.canvas.source.getFeatures();
    if (this.selected) all.push(this.selected);
    return all;
  }

  /** Replace every shape (a new image, an undo): `features` made by shapes.featuresOf. */
  load(features, selectOrder = null) {
    this.select(null, true);
    this.draft.clear();
    this.canvas.source.clear(true);
    this.canvas.source.addFeatures(features);
    this.nextOrder = features.reduce((m, f) => Math.max(m, f.get('order') + 1), 0);
    if (selectOrder !== null) {
      const f = features.find((x) => x.get('order') === selectOrder);
      if (f) this.select(f, true);
    }
  }

  add(kind, geometry) {
    const f = makeFeature(kind, geometry, { cls: this.currentClass(), order: this.nextOrder++, ...this.newProps() });
    this.canvas.source.addFeature(f);
    return f;
  }

  /** Select a shape (null: none). The selected shape lives in the selection layer while selected. */
  select(feature, quiet = false) {
    if (feature === this.selected) return;
    if (this.selected) {
      const old = this.selected;
      this.selected = null;
      this.canvas.selSource.clear(true);
      this.modifyFeatures.clear();
      this.canvas.source.addFeature(old);
    }
    if (feature) {
      this.canvas.source.removeFeature(feature);
      this.canvas.selSource.addFeature(feature);
      this.selected = feature;
      if (feature.get('kind') === 'polygon') this.modifyFeatures.push(feature);
    }
    if (!quiet) this.onSelect(this.selected);
  }

  deleteSelected() {
    const f = this.selected;
    if (!f || !this.editable) return false;
    this.selected = null;
    this.modifyFeatures.clear();
    this.canvas.selSource.clear(true);
    this.onSelect(null);
    this.changed('delete');
    return true;
  }

  setClassOfSelected(cls) {
    if (!this.selected || !this.editable || this.selected.get('cls') === cls) return false;
    this.selected.set('cls', cls);
    this.changed('class');
    return true;
  }

  /** Esc: stop drawing, else deselect. */
  cancel() {
    if (this.drawing) {
      this.draw.abortDrawing();
      this.drawing = false;
      return;
    }
    if (this.draftFeature) {
      this.draft.clear();
      this.draftFeature = null;
      this.pointer.op = null;
      return;
    }
    this.select(null);
  }

  /** Backspace while drawing a polygon: take back its last point. */
  removeLastPoint() {
    if (!this.drawing) return false;
    this.draw.removeLastPoint();
    return true;
  }

  /** Cycle the selection through the shapes (Tab / Shift+Tab), in payload order. */
  cycle(step) {
    const all = this.features().sort((a, b) => a.get('order') - b.get('order'));
    if (!all.length) return;
    const i = this.selected ? all.indexOf(this.selected) : -1;
    this.select(all[(i + step + all.length) % all.length]);
  }

  changed(what) {
    this.onChange(what);
  }
}
