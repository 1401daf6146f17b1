// An annotation drawn on its image, read-only, on a plain canvas (the review page): boxes in their class colours with
// the class name, instance masks and semantic masks as translucent fills, a label or tags as a caption. The canvas
// holds the image's own pixels (its width and height), so CSS scales it and `toImage` turns a pointer position into
// image pixels. A reviewer's comment (a point or a box, image pixels) is drawn over it on request.
import {rleCounts} from './prediction_view.js';
import {colorOf, h, textOn} from './ui.js';

const rgb = (hex) => {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
};

/** Paint the ones of a COCO RLE (compressed string counts, column-major) into RGBA `data` of `width` columns. */
function paintRle(data, width, rle, colour, alpha) {
  const [rows, cols] = rle.size;
  const runs = typeof rle.counts === 'string' ? rleCounts(rle.counts) : rle.counts;
  const [r, g, b] = rgb(colour);
  let pos = 0;
  for (let i = 0; i < runs.length; i += 1) {
    if (i % 2 === 1) {
      for (let j = pos; j < pos + runs[i]; j += 1) {
        const y = j % rows;
        const x = (j - y) / rows;
        if (x >= cols || x >= width) break;
        const o = (y * width + x) * 4;
        data[o] = r; data[o + 1] = g; data[o + 2] = b; data[o + 3] = alpha;
      }
    }
    pos += runs[i];
  }
}

/** How many objects an annotation payload holds (boxes, instances, classes of a mask, a label, tags). */
export function objectCount(payload) {
  if (!payload) return 0;
  if (payload.type === 'label') return 1;
  if (payload.type === 'tags') return (payload.class_ids || []).length;
  if (payload.type === 'semantic') return Object.keys(payload.classes || {}).length;
  return (payload.xyxy || []).length;
}

/** One line for people: '3 RBC, 1 WBC', 'label: RBC', 'no objects'. */
export function annotationSummary(payload, classes = []) {
  const name = (id) => classes.find((c) => c.id === id)?.name ?? `class ${id}`;
  if (!payload) return 'no annotation';
  if (payload.type === 'label') return `label: ${name(payload.class_id)}`;
  if (payload.type === 'tags') return payload.class_ids?.length ? `tags: ${payload.class_ids.map(name).join(', ')}` : 'no tags';
  const ids = payload.type === 'semantic' ? Object.keys(payload.classes || {}).map(Number) : payload.class_id || [];
  if (!ids.length) return 'no objects';
  const counts = new Map();
  for (const id of ids) counts.set(id, (counts.get(id) || 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1]).map(([id, n]) => (payload.type === 'semantic' ? name(id) : `${n} ${name(id)}`)).join(', ');
}

/** A canvas of `image` (a loaded HTMLImageElement) with `payload` drawn over it. Returns {canvas, redraw(comment),
 * toImage(event)}: `redraw` draws the annotation again with an optional comment ({point} or {box}, image pixels);
 * `toImage` gives an event's position in image pixels (clamped to the image). */
export function annotationCanvas(image, payload, classes = [], {className = 'review-canvas', labels = true} = {}) {
  const w = image.naturalWidth;
  const hgt = image.naturalHeight;
  const canvas = h('canvas', {class: className, width: w, height: hgt});
  const ctx = canvas.getContext('2d');
  const byId = new Map(classes.map((c) => [c.id, c]));
  const colour = (id) => colorOf(byId.get(id) || id);
  const line = Math.max(2, Math.round(Math.max(w, hgt) / 320));
  const font = Math.max(12, Math.round(Math.max(w, hgt) / 45));

  // the image and the annotation once, on a layer of their own; a redraw only adds the comment
  const base = document.createElement('canvas');
  base.width = w;
  base.height = hgt;
  const b = base.getContext('2d');
  b.drawImage(image, 0, 0, w, hgt);
  const p = payload || {};
  const masks = [];
  if (p.type === 'instances') (p.segmentations || []).forEach((s, i) => masks.push([s, p.class_id[i]]));
  if (p.type === 'semantic') Object.entries(p.classes || {}).forEach(([id, counts]) => masks.push([{rle: {size: p.size, counts}}, Number(id)]));
  if (masks.length) {
    const overlay = b.createImageData(w, hgt);
    for (const [seg, id] of masks) {
      if (seg.rle) paintRle(overlay.data, w, seg.rle, colour(id), 100);
    }
    const layer = document.createElement('canvas');
    layer.width = w;
    layer.height = hgt;
    layer.getContext('2d').putImageData(overlay, 0, 0);
    b.drawImage(layer, 0, 0);
    for (const [seg, id] of masks) {  // polygons: filled the same way
      for (const ring of seg.polygons || []) {
        b.beginPath();
        for (let k = 0; k + 1 < ring.length; k += 2) b[k ? 'lineTo' : 'moveTo'](ring[k], ring[k + 1]);
        b.closePath();
        b.fillStyle = `${colour(id)}66`;
        b.fill();
      }
    }
  }
  b.font = `600 ${font}px system-ui, sans-serif`;
  b.textBaseline = 'top';
  (p.xyxy || []).forEach(([x1, y1, x2, y2], i) => {
    b.lineWidth = line;
    b.strokeStyle = colour(p.class_id[i]);
    b.strokeRect(x1, y1, x2 - x1, y2 - y1);
  });
  if (labels) {
    (p.xyxy || []).forEach(([x1, y1, x2], i) => {
      const c = colour(p.class_id[i]);
      const text = byId.get(p.class_id[i])?.name ?? String(p.class_id[i]);
      const tw = b.measureText(text).width + 8;
      if (tw > (x2 - x1) * 1.5) return;  // a label wider than its box would hide its neighbours
      const ty = y1 - font - 6 >= 0 ? y1 - font - 6 : y1;
      b.fillStyle = c;
      b.fillRect(x1 - line / 2, ty, tw, font + 6);
      b.fillStyle = textOn(c);
      b.fillText(text, x1 + 4 - line / 2, ty + 3);
    });
  }
  const caption = p.type === 'label' || p.type === 'tags' ? annotationSummary(p, classes) : '';
  if (caption) {
    b.font = `600 ${font * 1.3}px system-ui, sans-serif`;
    const tw = b.measureText(caption).width + 16;
    b.fillStyle = 'rgba(17, 17, 17, 0.75)';
    b.fillRect(0, 0, tw, font * 1.3 + 12);
    b.fillStyle = '#fff';
    b.fillText(caption, 8, 6);
  }

  function redraw(comment = null) {
    ctx.clearRect(0, 0, w, hgt);
    ctx.drawImage(base, 0, 0);
    if (!comment) return;
    ctx.lineWidth = line * 1.5;
    ctx.strokeStyle = '#ff1f8f';
    ctx.setLineDash([line * 4, line * 2]);
    if (comment.box) {
      const [x1, y1, x2, y2] = comment.box;
      ctx.fillStyle = 'rgba(255, 31, 143, 0.12)';
      ctx.fillRect(x1, y1, x2 - x1, y2 - y1);
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    } else if (comment.point) {
      const [x, y] = comment.point;
      const r = Math.max(10, font);
      ctx.setLineDash([]);
      ctx.beginPath();
      ctx.arc(x, y, r, 0, 2 * Math.PI);
      ctx.stroke();
      ctx.beginPath();
      ctx.arc(x, y, line * 1.5, 0, 2 * Math.PI);
      ctx.fillStyle = '#ff1f8f';
      ctx.fill();
    }
    ctx.setLineDash([]);
  }

  function toImage(event) {
    const rect = canvas.getBoundingClientRect();
    const x = ((event.clientX - rect.left) / rect.width) * w;
    const y = ((event.clientY - rect.top) / rect.height) * hgt;
    const clamp = (v, hi) => Math.round(Math.max(0, Math.min(hi, v)) * 10) / 10;
    return [clamp(x, w), clamp(y, hgt)];
  }

  redraw();
  return {canvas, redraw, toImage};
}

/** Load an image from a URL (the page's cookie signs the request); resolves with the HTMLImageElement. */
export function loadImage(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error('the browser cannot show this image'));
    img.src = url;
  });
}
