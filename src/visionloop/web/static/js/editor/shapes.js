// Shapes of an annotation payload (core/annotations.py) as OpenLayers features, and back; styles cached per class.
//
// Map coordinates: x as in the image, y = height - y_image (the map's y goes up). A feature carries:
//   kind 'box' | 'polygon' | 'mask', cls (class id), track (track id or null), score (or null), attrs (object or
//   null), rle ({size, counts} for masks, kept as they came), order (the shape's place in the payload).

import * as ol from '../../vendor/ol/ol.js';
import { colorOf } from '../ui.js';

const round2 = (v) => Math.round(v * 100) / 100;

/** A rectangle polygon for image xyxy on a map of image height `H`. */
export function boxGeometry([x1, y1, x2, y2], H) {
  const a = H - y1;
  const b = H - y2;
  return new ol.geom.Polygon([x1, a, x1, b, x2, b, x2, a, x1, a], 'XY', [10]); // flat: no nested arrays to walk
}

/** The image xyxy of a feature's geometry (its extent), clipped to the image. */
export function xyxyOf(feature, W, H) {
  const [minx, miny, maxx, maxy] = feature.getGeometry().getExtent();
  const cx = (v) => round2(Math.min(W, Math.max(0, v)));
  const cy = (v) => round2(Math.min(H, Math.max(0, v)));
  return [cx(minx), cy(H - maxy), cx(maxx), cy(H - miny)];
}

function ringsGeometry(rings, H) {
  const polys = rings.map((flat) => {
    const pts = [];
    for (let i = 0; i + 1 < flat.length; i += 2) pts.push([flat[i], H - flat[i + 1]]);
    pts.push(pts[0]);
    return [pts];
  });
  return polys.length === 1 ? new ol.geom.Polygon(polys[0]) : new ol.geom.MultiPolygon(polys);
}

function ringsOf(feature, W, H) {
  const g = feature.getGeometry();
  const polys = g instanceof ol.geom.MultiPolygon ? g.getCoordinates() : [g.getCoordinates()];
  return polys.map(([outer]) => {
    const flat = [];
    for (const [x, y] of outer.slice(0, -1)) {
      flat.push(round2(Math.min(W, Math.max(0, x))), round2(Math.min(H, Math.max(0, H - y))));
    }
    return flat;
  }).filter((flat) => flat.length >= 6);
}

export function makeFeature(kind, geometry, props) {
  return new ol.Feature({ kind, cls: 0, track: null, score: null, attrs: null, rle: null, order: 0, ...props,
    geometry });
}

/** Features of a boxes or instances payload (none for label, tags, semantic). */
export function featuresOf(payload, H) {
  if (!payload || (payload.type !== 'boxes' && payload.type !== 'instances')) return [];
  const out = [];
  const n = (payload.xyxy || []).length;
  for (let i = 0; i < n; i++) {
    const props = {
      cls: payload.class_id[i], order: i,
      track: payload.track_id ? payload.track_id[i] : null,
      score: payload.score ? payload.score[i] : null,
      attrs: payload.attributes ? payload.attributes[i] : null,
    };
    const seg = payload.type === 'instances' ? payload.segmentations[i] : null;
    if (seg && seg.polygons) out.push(makeFeature('polygon', ringsGeometry(seg.polygons, H), props));
    else if (seg && seg.rle) out.push(makeFeature('mask', boxGeometry(payload.xyxy[i], H), { ...props, rle: seg.rle }));
    else out.push(makeFeature('box', boxGeometry(payload.xyxy[i], H), props));
  }
  return out;
}

/** The payload of `features` ('boxes' or 'instances'), in their order; shapes reduced to nothing are left out. */
export function payloadOf(type, features, W, H) {
  const list = features.slice().sort((a, b) => a.get('order') - b.get('order'));
  const xyxy = [];
  const classId = [];
  const tracks = [];
  const scores = [];
  const attrs = [];
  const segs = [];
  for (const f of list) {
    const box = xyxyOf(f, W, H);
    if (box[2] - box[0] < 0.5 || box[3] - box[1] < 0.5) continue;
    let seg = null;
    if (type === 'instances') {
      if (f.get('kind') === 'mask') seg = { rle: f.get('rle') };
      else {
        const rings = ringsOf(f, W, H);
        seg = { polygons: rings.length ? rings : [[box[0], box[1], box[2], box[1], box[2], box[3], box[0], box[3]]] };
      }
    }
    xyxy.push(box);
    classId.push(f.get('cls'));
    tracks.push(f.get('track'));
    scores.push(f.get('score'));
    attrs.push(f.get('attrs'));
    segs.push(seg);
  }
  const payload = { type, xyxy, class_id: classId };
  if (tracks.some((t) => t !== null && t !== undefined)) {
    let next = Math.max(...tracks.filter((t) => t !== null && t !== undefined)) + 1;
    payload.track_id = tracks.map((t) => (t === null || t === undefined ? next++ : t));
  }
  if (scores.length && scores.every((s) => typeof s === 'number')) payload.score = scores;
  if (attrs.some((a) => a && Object.keys(a).length)) payload.attributes = attrs.map((a) => a || {});
  if (type === 'instances') payload.segmentations = segs;
  return payload;
}

// ---- styles: one Style object per (class, state), made once --------------------------------------------------

/** `#rrggbb` with an alpha, as CSS rgba(). */
export function rgba(hex, alpha) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${alpha})`;
}

/** Corners of a box (or vertices of a polygon) as points, for the selected shape's handles. */
function handlePoints(feature) {
  const g = feature.getGeometry();
  if (feature.get('kind') === 'mask') return new ol.geom.MultiPoint([]); // a mask is edited with the brush
  if (feature.get('kind') === 'polygon') {
    const polys = g instanceof ol.geom.MultiPolygon ? g.getCoordinates() : [g.getCoordinates()];
    return new ol.geom.MultiPoint(polys.flatMap(([outer]) => outer.slice(0, -1)));
  }
  const [x1, y1, x2, y2] = g.getExtent();
  const mx = (x1 + x2) / 2;
  const my = (y1 + y2) / 2;
  return new ol.geom.MultiPoint([[x1, y1], [x2, y1], [x2, y2], [x1, y2], [mx, y1], [mx, y2], [x1, my], [x2, my]]);
}

export class StyleBook {
  /** `classes`: the project's classes ({id, name, colour}). */
  constructor(classes) {
    this.byId = new Map(classes.map((c) => [c.id, c]));
    this.cache = new Map();
    this.labels = true;
    this.handle = new ol.style.Style({
      image: new ol.style.RegularShape({ points: 4, radius: 5, angle: Math.PI / 4,
        fill: new ol.style.Fill({ color: '#ffffff' }), stroke: new ol.style.Stroke({ color: '#111827', width: 1.5 }) }),
      geometry: handlePoints,
    });
  }

  colour(cls) {
    const c = this.byId.get(cls);
    return c ? colorOf(c) : '#9ca3af';
  }

  name(cls) {
    const c = this.byId.get(cls);
    return c ? c.name : `class ${cls}`;
  }

  /** The plain style of a shape of class `cls` (cached: the same object for every shape of that class). */
  plain(cls, kind) {
    const key = `${cls}|${kind}`;
    let s = this.cache.get(key);
    if (!s) {
      const colour = this.colour(cls);
      s = new ol.style.Style({
        // a mask is drawn by its pixels (masks.js); its box, thin and dashed, is what selects it
        stroke: kind === 'mask' ? new ol.style.Stroke({ color: rgba(colour, 0.7), width: 1, lineDash: [3, 3] })
          : new ol.style.Stroke({ color: colour, width: 2 }),
        fill: kind === 'polygon' ? new ol.style.Fill({ color: rgba(colour, 0.18) }) : undefined,
      });
      this.cache.set(key, s);
    }
    return s;
  }

  /** The selected shape: thicker outline, a light fill, its class name on its top-left corner, and handles. */
  selected(feature) {
    const cls = feature.get('cls');
    const mask = feature.get('kind') === 'mask';
    const key = `${cls}|sel|${mask}`;
    let s = this.cache.get(key);
    if (!s) {
      const colour = this.colour(cls);
      s = [new ol.style.Style({ // a mask's pixels show it: its box is outlined, not filled
        stroke: new ol.style.Stroke({ color: colour, width: mask ? 2 : 3, lineDash: mask ? [6, 4] : undefined }),
        fill: mask ? undefined : new ol.style.Fill({ color: rgba(colour, 0.22) }),
      }), new ol.style.Style({
        geometry: (f) => {
          const [x1, , , y2] = f.getGeometry().getExtent();
          return new ol.geom.Point([x1, y2]);
        },
        text: new ol.style.Text({ text: this.name(cls), font: '600 12px system-ui, sans-serif', textAlign: 'left',
          textBaseline: 'bottom', overflow: true, offsetY: -5,
          fill: new ol.style.Fill({ color: '#ffffff' }), backgroundFill: new ol.style.Fill({ color: colour }),
          padding: [2, 5, 1, 5] }),
      }), this.handle];
      this.cache.set(key, s);
    }
    const track = feature.get('track');
    s[1].getText().setText(track === null || track === undefined ? this.name(cls) : `${this.name(cls)} #${track}`);
    return s; // one shape is selected at a time, so its label can live in the cached style
  }

  /** A style function for the main layer. */
  layerStyle() {
    return (feature) => this.plain(feature.get('cls'), feature.get('kind'));
  }

  /** A style function for the selection layer. */
  selectionStyle() {
    return (feature) => this.selected(feature);
  }
}
