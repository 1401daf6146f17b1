// A model's prediction drawn on its image (a plain canvas): boxes with class and score for detection, masks for
// instance and semantic segmentation, a ranked list of labels with scores for classification and tagging.
// The prediction is the JSON of inference/results.py (Prediction.to_json): original image pixels, scores in 0..1,
// masks as COCO compressed RLE ({size: [h, w], counts: '<ascii>'}).
import {colorOf, fmtMetric, h, textOn} from './ui.js';

/** COCO compressed RLE counts string -> run lengths (pycocotools' rleFrString). */
export function rleCounts(counts) {
  const out = [];
  let p = 0;
  while (p < counts.length) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      const c = counts.charCodeAt(p) - 48;
      x |= (c & 0x1f) << (5 * k);
      more = (c & 0x20) !== 0;
      p += 1;
      k += 1;
      if (!more && (c & 0x10)) x |= -1 << (5 * k);
    }
    if (out.length > 2) x += out[out.length - 2];
    out.push(x);
  }
  return out;
}

/** Paint the ones of a COCO RLE mask (column-major runs) into `data` (RGBA ImageData of the same size). */
function paintRle(data, rle, [r, g, b], alpha) {
  const [height, width] = rle.size;
  const runs = typeof rle.counts === 'string' ? rleCounts(rle.counts) : rle.counts;
  let pos = 0;
  for (let i = 0; i < runs.length; i += 1) {
    const n = runs[i];
    if (i % 2 === 1) {
      for (let j = pos; j < pos + n; j += 1) {
        const y = j % height;
        const x = (j - y) / height;
        if (x >= width) break;
        const o = (y * width + x) * 4;
        data[o] = r; data[o + 1] = g; data[o + 2] = b; data[o + 3] = alpha;
      }
    }
    pos += n;
  }
}

const rgb = (hex) => {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
};

/** A canvas with `image` (an HTMLImageElement or ImageBitmap) and the prediction drawn over it: objects scored at
 * least `minScore`; labels on the best `maxLabels` boxes wide enough to hold them (the others are outlines only).
 * `classes`: the project's classes ({id, name, colour}) for their colours. */
export function predictionCanvas(image, prediction, classes = [], {minScore = 0, maxLabels = 40} = {}) {
  const w = image.naturalWidth || image.width;
  const hgt = image.naturalHeight || image.height;
  const canvas = h('canvas', {class: 'prediction-canvas', width: w, height: hgt});
  const ctx = canvas.getContext('2d');
  ctx.drawImage(image, 0, 0, w, hgt);
  const byId = new Map(classes.map((c) => [c.id, c]));
  const colour = (id) => colorOf(byId.get(id) || id);
  const detections = (prediction.detections || []).filter((d) => d.score >= minScore);
  const masks = [...(prediction.segments || []), ...detections.filter((d) => d.mask)];
  if (masks.length) {
    const overlay = ctx.createImageData(w, hgt);
    for (const m of masks) paintRle(overlay.data, m.mask, rgb(colour(m.class_id)), 110);
    const layer = document.createElement('canvas');
    layer.width = w;
    layer.height = hgt;
    layer.getContext('2d').putImageData(overlay, 0, 0);
    ctx.drawImage(layer, 0, 0);
  }
  const line = Math.max(2, Math.round(Math.max(w, hgt) / 320));
  const font = Math.max(12, Math.round(Math.max(w, hgt) / 45));
  ctx.font = `600 ${font}px system-ui, sans-serif`;
  ctx.textBaseline = 'top';
  // outlines first, the best boxes last (on top), so their labels stay readable
  const ranked = [...detections].sort((a, b) => a.score - b.score);
  for (const d of ranked) {
    const [x1, y1, x2, y2] = d.xyxy;
    ctx.lineWidth = line;
    ctx.strokeStyle = colour(d.class_id);
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
  }
  for (const d of ranked.slice(-maxLabels)) {
    const [x1, y1, x2] = d.xyxy;
    const c = colour(d.class_id);
    const text = `${d.name} ${Math.round(d.score * 100)}%`;
    const tw = ctx.measureText(text).width + 8;
    if (tw > (x2 - x1) * 1.5) continue;  // a label wider than its box would hide its neighbours
    const ty = y1 - font - 6 >= 0 ? y1 - font - 6 : y1;
    ctx.fillStyle = c;
    ctx.fillRect(x1 - line / 2, ty, tw, font + 6);
    ctx.fillStyle = textOn(c);
    ctx.fillText(text, x1 + 4 - line / 2, ty + 3);
  }
  return canvas;
}

/** Labels with score bars: classification's top-k (best first) or tagging's scores (the kept tags marked). */
export function scoreList(prediction, classes = []) {
  const byId = new Map(classes.map((c) => [c.id, c]));
  const kept = new Set((prediction.tags || []).map((t) => t.class_id));
  if (prediction.label) kept.add(prediction.label.class_id);
  const scores = [...(prediction.scores || [])].sort((x, y) => y.score - x.score);
  if (!scores.length) return null;
  return h('ol', {class: 'score-list'}, ...scores.map((s) => h('li', {class: kept.has(s.class_id) ? 'kept' : ''},
    h('span', {class: 'score-name'}, s.name),
    h('span', {class: 'score-bar'}, h('span', {style: {width: `${Math.round(s.score * 100)}%`,
      background: colorOf(byId.get(s.class_id) || s.class_id)}})),
    h('span', {class: 'score-value'}, fmtMetric(s.score, 2)))));
}

/** One line for people: what the model found. */
export function predictionSummary(prediction, minScore = 0) {
  if (prediction.label) return `${prediction.label.name} (${Math.round(prediction.label.score * 100)}%)`;
  if (prediction.tags) return prediction.tags.map((t) => t.name).join(', ') || 'no tag above its threshold';
  if (prediction.segments) return prediction.segments.map((s) => s.name).join(', ') || 'nothing found';
  const shown = (prediction.detections || []).filter((d) => d.score >= minScore);
  const counts = {};
  for (const d of shown) counts[d.name] = (counts[d.name] || 0) + 1;
  const parts = Object.entries(counts).sort((x, y) => y[1] - x[1]).map(([n, c]) => `${c} ${n}`);
  return parts.length ? `${shown.length} objects: ${parts.join(', ')}` : 'nothing found';
}
