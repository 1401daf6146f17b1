// COCO run-length encoding, the compressed string form pycocotools writes (core/annotations.py RLE): runs of 0s
// and 1s in column-major order (index = x * height + y), the first run counting 0s; each run after the second is
// stored as its difference to the run two before, 5 bits per character from '0' with a continuation bit.

/** The run lengths of a compressed RLE string. */
export function runsOf(counts) {
  const runs = [];
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
    if (runs.length > 2) x += runs[runs.length - 2];
    runs.push(x);
  }
  return runs;
}

/** The compressed string of run lengths `runs`. */
export function countsOf(runs) {
  let s = '';
  for (let i = 0; i < runs.length; i++) {
    let x = runs[i];
    if (i > 2) x -= runs[i - 2];
    let more = true;
    while (more) {
      let c = x & 0x1f;
      x >>= 5;
      more = (c & 0x10) ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      s += String.fromCharCode(c + 48);
    }
  }
  return s;
}

/** Call `fn(start, end)` for each run of 1s (column-major indexes, end exclusive). */
export function forEachOnes(counts, fn) {
  let pos = 0;
  const runs = runsOf(counts);
  for (let i = 0; i < runs.length; i++) {
    if (i % 2 === 1 && runs[i] > 0) fn(pos, pos + runs[i]);
    pos += runs[i];
  }
}

/** The RLE string of the pixels of column-major `labels` equal to `value`. */
export function encodeWhere(labels, value) {
  const runs = [];
  let current = false;
  let n = 0;
  for (let i = 0; i < labels.length; i++) {
    const on = labels[i] === value;
    if (on !== current) {
      runs.push(n);
      n = 0;
      current = on;
    }
    n += 1;
  }
  runs.push(n);
  return countsOf(runs);
}
