// Someone else saved the image after this edit started (HTTP 409): show both versions side by side, drawn and
// listed, and let the person keep theirs, keep mine (saved on top of their revision) or merge them.

import { h, modal, colorOf, fmtDate } from '../ui.js';
import { imageObjectUrl } from './canvas.js';

const VIEW_W = 380;

function classIds(payload) {
  if (!payload) return [];
  if (payload.type === 'label') return [payload.class_id];
  if (payload.type === 'tags') return payload.class_ids;
  if (payload.type === 'semantic') return Object.keys(payload.classes || {}).map(Number);
  return payload.class_id || [];
}

/** "3 × WBC, 1 × RBC" (or the label / the tags) of a payload. */
export function describe(payload, classes) {
  if (!payload) return 'nothing (not annotated)';
  const name = (id) => (classes.find((c) => c.id === id) || { name: `class ${id}` }).name;
  if (payload.type === 'label') return `label ${name(payload.class_id)}`;
  if (payload.type === 'tags') {
    return payload.class_ids.length ? `tags ${payload.class_ids.map(name).join(', ')}` : 'no tags';
  }
  if (payload.type === 'semantic') return `mask with ${classIds(payload).map(name).join(', ') || 'no class'}`;
  const counts = new Map();
  for (const id of payload.class_id) counts.set(id, (counts.get(id) || 0) + 1);
  const what = payload.type === 'boxes' ? 'box' : 'shape';
  const n = payload.class_id.length;
  if (!n) return `no ${what}es`.replace('shapees', 'shapes');
  return `${n} ${n === 1 ? what : `${what}${what === 'box' ? 'es' : 's'}`}: `
    + [...counts].map(([id, k]) => `${k} × ${name(id)}`).join(', ');
}

function iou(a, b) {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const hh = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (w <= 0 || hh <= 0) return 0;
  const inter = w * hh;
  return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter);
}

/** Both versions in one: the union of shapes (theirs that match one of mine, same class and IoU > 0.9, once), or
 * the union of tags; null where a merge means nothing (a label, a mask: pick one). */
export function mergePayloads(mine, theirs) {
  if (!theirs) return mine;
  if (!mine) return theirs;
  if (mine.type !== theirs.type) return null;
  if (mine.type === 'tags') {
    const ids = [...new Set([...theirs.class_ids, ...mine.class_ids])];
    return { type: 'tags', class_ids: ids.sort((a, b) => a - b) };
  }
  if (mine.type !== 'boxes' && mine.type !== 'instances') return null;
  const out = JSON.parse(JSON.stringify(mine));
  const fields = ['xyxy', 'class_id', 'track_id', 'score', 'attributes', 'segmentations'];
  const n = theirs.xyxy.length;
  for (let i = 0; i < n; i++) {
    const dup = mine.xyxy.some((b, j) => mine.class_id[j] === theirs.class_id[i] && iou(b, theirs.xyxy[i]) > 0.9);
    if (dup) continue;
    for (const k of fields) {
      if (!out[k] && !theirs[k]) continue;
      if (!out[k]) out[k] = mine.xyxy.map(() => (k === 'attributes' ? {} : null));
      out[k].push(theirs[k] ? theirs[k][i] : (k === 'attributes' ? {} : null));
    }
  }
  if (out.score && out.score.some((s) => s === null)) delete out.score;
  if (out.track_id && out.track_id.some((t) => t === null)) {
    let next = Math.max(0, ...out.track_id.filter((t) => t !== null)) + 1;
    out.track_id = out.track_id.map((t) => (t === null ? next++ : t));
  }
  return out;
}

/** Per shape of `a`: true when `b` has no shape like it (same class, IoU > 0.9). */
function uniqueFlags(a, b) {
  const other = b && b.xyxy ? b : { xyxy: [], class_id: [] };
  return a.xyxy.map((box, i) => !other.xyxy.some((o, j) => other.class_id[j] === a.class_id[i] && iou(box, o) > 0.9));
}

/** How many shapes of `a` have no match in `b` (same class, IoU > 0.9). */
function onlyIn(a, b) {
  return a && a.xyxy ? uniqueFlags(a, b).filter(Boolean).length : 0;
}

function differences(payload, other) {
  if (!payload || (payload.type !== 'boxes' && payload.type !== 'instances')) return null;
  const n = onlyIn(payload, other);
  return h('p', { class: 'ed-conflict-diff' }, n ? `${n} shape${n === 1 ? '' : 's'} only in this version (drawn bold)`
    : 'No shape that the other version lacks');
}

function drawVersion(canvas, img, detail, payload, classes, other) {
  const scale = VIEW_W / detail.width;
  canvas.width = VIEW_W;
  canvas.height = Math.round(detail.height * scale);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#1f2937';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (img) ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
  if (!payload) return;
  const colour = (id) => colorOf(classes.find((c) => c.id === id) || id);
  ctx.lineWidth = 2;
  if (payload.type === 'boxes' || payload.type === 'instances') {
    const unique = uniqueFlags(payload, other);
    payload.xyxy.forEach(([x1, y1, x2, y2], i) => {
      // the shapes only this version has stand out; the shared ones are drawn faint
      ctx.strokeStyle = colour(payload.class_id[i]);
      ctx.globalAlpha = unique[i] ? 1 : 0.45;
      ctx.lineWidth = unique[i] ? 3 : 1.5;
      ctx.shadowColor = unique[i] ? '#ffffff' : 'transparent';
      ctx.shadowBlur = unique[i] ? 4 : 0;
      const seg = payload.segmentations && payload.segmentations[i];
      if (seg && seg.polygons) {
        for (const ring of seg.polygons) {
          ctx.beginPath();
          for (let k = 0; k < ring.length; k += 2) ctx.lineTo(ring[k] * scale, ring[k + 1] * scale);
          ctx.closePath();
          ctx.stroke();
        }
      } else {
        ctx.strokeRect(x1 * scale, y1 * scale, (x2 - x1) * scale, (y2 - y1) * scale);
      }
    });
    ctx.globalAlpha = 1;
    ctx.shadowBlur = 0;
  } else {
    const ids = classIds(payload);
    ctx.font = '600 14px system-ui, sans-serif';
    ids.forEach((id, i) => {
      const text = (classes.find((c) => c.id === id) || { name: `class ${id}` }).name;
      const w = ctx.measureText(text).width + 12;
      ctx.fillStyle = colour(id);
      ctx.fillRect(8, 8 + i * 24, w, 20);
      ctx.fillStyle = '#fff';
      ctx.fillText(text, 14, 23 + i * 24);
    });
  }
}

/**
 * Ask which version to keep. `head`: {revision, author, created_at, payload} (theirs); `mine`: my payload.
 * Resolves {choice: 'theirs' | 'mine' | 'merge', payload}.
 */
export function conflictDialog({ detail, classes, head, mine }) {
  return new Promise((resolve) => {
    let answer = { choice: null, payload: null }; // closed without a choice: the conflict stays, nothing is saved
    const merged = mergePayloads(mine, head.payload);
    const theirsCanvas = h('canvas', { class: 'ed-conflict-canvas', 'data-version': 'theirs' });
    const mineCanvas = h('canvas', { class: 'ed-conflict-canvas', 'data-version': 'mine' });
    const column = (title, sub, canvas, payload, other) => h('figure', { class: 'ed-conflict-col' },
      h('figcaption', {}, h('strong', {}, title), h('span', { class: 'muted' }, sub)), canvas,
      h('p', { class: 'ed-conflict-list' }, describe(payload, classes)), differences(payload, other));
    const by = [head.author ? `by ${head.author}` : '', head.created_at ? fmtDate(head.created_at) : '']
      .filter(Boolean).join(', ');
    const content = h('div', { class: 'ed-conflict' },
      h('p', {}, `Someone else saved this image while you were editing it. Nothing has been overwritten: `
        + 'choose what to keep. Your choice is saved as a new revision on top of theirs.'),
      h('div', { class: 'ed-conflict-cols' },
        column(`Theirs: revision ${head.revision}`, by, theirsCanvas, head.payload, mine),
        column('Yours', 'not saved yet', mineCanvas, mine, head.payload)));
    const pick = (choice, payload) => () => { answer = { choice, payload }; dlg.close(); };
    const actions = [
      h('button', { onclick: pick('theirs', head.payload), 'data-choice': 'theirs' }, 'Keep theirs'),
      merged ? h('button', { onclick: pick('merge', merged), 'data-choice': 'merge',
        title: 'Both sets of shapes (or tags); shapes found in both are kept once' }, 'Merge both') : null,
      h('button', { class: 'primary', onclick: pick('mine', mine), 'data-choice': 'mine' }, 'Keep mine'),
    ].filter(Boolean);
    const dlg = modal('This image changed while you edited it', content,
      { actions, wide: true, onClose: () => resolve(answer) });
    dlg.element.classList.add('ed-conflict-dialog');
    imageObjectUrl(detail.url).then((u) => {
      const img = new Image();
      img.onload = () => {
        drawVersion(theirsCanvas, img, detail, head.payload, classes, mine);
        drawVersion(mineCanvas, img, detail, mine, classes, head.payload);
      };
      img.src = u;
    }).catch(() => {
      drawVersion(theirsCanvas, null, detail, head.payload, classes, mine);
      drawVersion(mineCanvas, null, detail, mine, classes, head.payload);
    });
  });
}
