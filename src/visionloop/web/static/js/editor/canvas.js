// The image canvas: an OpenLayers map over a pixel projection, the image (one static image up to 4096 px on a
// side, the tile pyramid above), one vector layer for every shape (spatial index, cached styles) and a small
// layer for the selected shape (so dragging it redraws one feature, not the thousands under it).

import * as ol from '../../vendor/ol/ol.js';
import { token } from '../api.js';

/** Image bytes fetched with the bearer token, as object URLs; kept for a few images (prefetch of the next one). */
const blobs = new Map();
const MAX_BLOBS = 6;

function fetchAuthed(url) {
  const headers = {};
  const t = token.get();
  if (t) headers.Authorization = `Bearer ${t}`;
  return fetch(url, { headers, credentials: 'same-origin' }).then((r) => {
    if (!r.ok) throw new Error(`${r.status} ${r.statusText}`);
    return r.blob();
  });
}

/** An object URL for an image file URL (cached; the promise is shared by concurrent callers). */
export function imageObjectUrl(url) {
  let entry = blobs.get(url);
  if (!entry) {
    entry = fetchAuthed(url).then((b) => URL.createObjectURL(b));
    entry.catch(() => blobs.delete(url));
    blobs.set(url, entry);
    while (blobs.size > MAX_BLOBS) {
      const [oldest, p] = blobs.entries().next().value;
      blobs.delete(oldest);
      p.then((u) => setTimeout(() => URL.revokeObjectURL(u), 60000)).catch(() => {});
    }
  }
  return entry;
}

/** Start loading an image's bytes (and decode it) before it is shown. */
export function prefetchImage(detail) {
  if (detail.tiles) return;
  imageObjectUrl(detail.url).then((u) => {
    const img = new Image();
    img.src = u;
    return img.decode();
  }).catch(() => {});
}

function staticLayer(detail, projection) {
  const W = detail.width;
  const H = detail.height;
  return new ol.layer.Image({
    source: new ol.source.ImageStatic({
      url: detail.url, projection, imageExtent: [0, 0, W, H], interpolate: true,
      imageLoadFunction: (image, src) => {
        imageObjectUrl(src).then((u) => { image.getImage().src = u; }, () => { image.getImage().src = ''; });
      },
    }),
  });
}

/** The pyramid {tile_size, levels, url} as an OpenLayers tile layer: server level z = levels - 1 - OL zoom. */
function tileLayer(detail, projection) {
  const { tile_size: size, levels } = detail.tiles;
  const url = detail.tiles.url_template || detail.tiles.url;
  const W = detail.width;
  const H = detail.height;
  const resolutions = [];
  for (let z = levels - 1; z >= 0; z--) resolutions.push(2 ** z);
  const tileGrid = new ol.tilegrid.TileGrid({ extent: [0, 0, W, H], origin: [0, H], resolutions, tileSize: size });
  return new ol.layer.Tile({
    preload: 1,
    extent: [0, 0, W, H], // edge tiles are padded beyond the image
    source: new ol.source.TileImage({
      projection, tileGrid, interpolate: true, transition: 0,
      tileUrlFunction: ([z, x, y]) => url.replace('{z}', String(levels - 1 - z)).replace('{x}', String(x))
        .replace('{y}', String(y)),
      tileLoadFunction: (tile, src) => {
        fetchAuthed(src).then((b) => {
          const u = URL.createObjectURL(b);
          const img = tile.getImage();
          img.onload = () => URL.revokeObjectURL(u);
          img.src = u;
        }, () => tile.setState(3)); // ERROR
      },
    }),
  });
}

export class Canvas {
  /** `target`: the element to fill; `styles`: a StyleBook. */
  constructor(target, styles) {
    this.styles = styles;
    this.source = new ol.source.Vector({ useSpatialIndex: true });
    // Every shape but the selected one, drawn into one image that is redrawn only when they change or the view
    // settles: dragging the selected shape (its own small layer) or panning does not redraw thousands of shapes.
    this.layer = new ol.layer.VectorImage({ source: this.source, style: styles.layerStyle(), imageRatio: 1.5 });
    this.selSource = new ol.source.Vector({ useSpatialIndex: false });
    this.selLayer = new ol.layer.Vector({ source: this.selSource, style: styles.selectionStyle(),
      updateWhileInteracting: true, updateWhileAnimating: true, zIndex: 10 });
    this.extraLayers = [];
    this.imageLayer = null;
    this.W = 1;
    this.H = 1;
    this.map = new ol.Map({
      target,
      layers: [this.layer, this.selLayer],
      controls: [],
      interactions: [],
      pixelRatio: Math.min(window.devicePixelRatio || 1, 2),
      maxTilesLoading: 32,
    });
    // Fitted until the person zooms or pans: a window (or panel) that changes size keeps the whole image in view.
    this.autoFit = true;
    this.map.getViewport().addEventListener('wheel', () => { this.autoFit = false; }, { passive: true });
    this.map.on('pointerdrag', () => { this.autoFit = false; });
    this.map.on('change:size', () => {
      if (this.autoFit && this.map.getView().getProjection().getUnits() === 'pixels') this.fit();
    });
  }

  /** Show the image of `detail` (width, height, url, tiles): a new view over its pixels, fitted to the window. */
  setImage(detail) {
    this.W = detail.width;
    this.H = detail.height;
    const projection = new ol.proj.Projection({ code: `vl-pixels-${this.W}x${this.H}`, units: 'pixels',
      extent: [0, 0, this.W, this.H] });
    if (this.imageLayer) this.map.removeLayer(this.imageLayer);
    const tiled = Boolean(detail.tiles);
    this.imageLayer = tiled ? tileLayer(detail, projection) : staticLayer(detail, projection);
    this.imageLayer.setZIndex(-10);
    this.map.addLayer(this.imageLayer);
    const side = Math.max(this.W, this.H);
    this.map.setView(new ol.View({
      projection, center: [this.W / 2, this.H / 2], resolution: 1,
      maxResolution: Math.max(4, side / 100), minResolution: 1 / 32, constrainResolution: false,
      extent: [-this.W, -this.H, 2 * this.W, 2 * this.H], constrainOnlyCenter: true, smoothExtentConstraint: false,
    }));
    this.fit();
  }

  fit() {
    this.autoFit = true;
    const size = this.map.getSize();
    if (!size || !size[0]) this.map.updateSize();
    this.map.getView().fit([0, 0, this.W, this.H], { padding: [16, 16, 16, 16], duration: 0 });
  }

  zoomBy(delta) {
    this.autoFit = false;
    const view = this.map.getView();
    view.setResolution(view.getConstrainedResolution(view.getResolution() / 2 ** delta));
  }

  /** Image pixel (x, y down) of a map coordinate, and back. */
  toImage([x, y]) { return [x, this.H - y]; }

  toMap([x, y]) { return [x, this.H - y]; }

  /** Pixels on screen per image pixel. */
  scale() { return 1 / this.map.getView().getResolution(); }

  addLayer(layer) {
    this.extraLayers.push(layer);
    this.map.addLayer(layer);
  }

  destroy() {
    this.map.setTarget(null);
    this.map.dispose();
  }
}
