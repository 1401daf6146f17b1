// Annotation saves that never get lost: every save goes through a queue kept in IndexedDB, sent in order.
//
//   enqueue(project, imageId, payload, baseRevision) -> Promise<seq>   keep the edit, then send it when possible
//   pendingCount() -> Promise<number>                                 edits kept here and not yet on the server
//   pendingFor(project, imageId) -> Promise<entry|null>              the newest edit still waiting for that image
//   resolveConflict(project, imageId)                                drop that image's waiting edits (the editor
//                                                                      saves the person's choice after a 409)
//   flush(), isOnline(), events (EventTarget)
//
// events: 'change' {count}, 'saved' {project, imageId, revision}, 'conflict' {project, imageId, entry, body},
// 'rejected' {project, imageId, error}, 'online' {online}. window also gets 'vl-pending-change' on every change.
//
// A save names the revision it is based on. The entries of one image form a chain: only the first one's
// baseRevision is known when it is queued; when it is saved, the next entry of that image is rebased on the
// revision the server gave. A 409 stops that image's chain (entry state 'conflict') until the editor resolves it;
// a server that cannot be reached (or answers 5xx) stops the queue and retries with a growing delay.

import { ApiError, api, projectPath } from './api.js';

const DB_NAME = 'visionloop';
const STORE = 'edits';
const RETRY_MS = [500, 1000, 2000, 3000, 5000];

export const events = new EventTarget();

let dbPromise = null;
let online = true;
let retryIndex = 0;
let retryTimer = null;
let flushing = null;
let again = false;
let lastCount = -1;
/** The revision each image's last save from this page created: a base never goes below it (the editor may not
 * have heard of that save yet when it queues the next edit). */
const savedRevision = new Map();
const keyOf = (project, imageId) => `${project}\u0000${imageId}`;

function openDb() {
  if (!dbPromise) {
    dbPromise = new Promise((resolve, reject) => {
      const req = indexedDB.open(DB_NAME, 1);
      req.onupgradeneeded = () => {
        const store = req.result.createObjectStore(STORE, { keyPath: 'seq', autoIncrement: true });
        store.createIndex('image', ['project', 'imageId']);
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }
  return dbPromise;
}

/** Run `fn(store)` in one transaction; resolves with fn's result once the transaction committed. */
async function tx(mode, fn) {
  const db = await openDb();
  return new Promise((resolve, reject) => {
    const t = db.transaction(STORE, mode);
    let result;
    Promise.resolve(fn(t.objectStore(STORE))).then((r) => { result = r; }, reject);
    t.oncomplete = () => resolve(result);
    t.onerror = () => reject(t.error);
    t.onabort = () => reject(t.error);
  });
}

const req = (r) => new Promise((resolve, reject) => {
  r.onsuccess = () => resolve(r.result);
  r.onerror = () => reject(r.error);
});

async function allEntries() {
  return tx('readonly', (store) => req(store.getAll()));
}

function emit(type, detail) {
  events.dispatchEvent(new CustomEvent(type, { detail }));
}

let announcing = Promise.resolve();

/** Tell listeners the number of waiting edits when it changed; calls run one after the other, so a count read
 * earlier is never announced after a newer one. */
function announceCount() {
  announcing = announcing.then(async () => {
    const count = await pendingCount();
    if (count !== lastCount) {
      lastCount = count;
      emit('change', { count });
      window.dispatchEvent(new CustomEvent('vl-pending-change', { detail: { count } }));
    }
  }).catch(() => {});
  return announcing;
}

function setOnline(value) {
  if (value === online) return;
  online = value;
  emit('online', { online });
}

/** Keep an edit (the whole payload) and send it when the server can be reached; resolves once it is stored. */
export async function enqueue(project, imageId, payload, baseRevision) {
  const seq = await tx('readwrite', async (store) => {
    const earlier = await req(store.index('image').getAll([project, imageId]));
    // Chained after a waiting edit of the same image: its base is set when that one is saved.
    const known = savedRevision.get(keyOf(project, imageId));
    const given = known !== undefined && (baseRevision === null || baseRevision === undefined || known > baseRevision)
      ? known : baseRevision;
    const base = earlier.length ? earlier[earlier.length - 1].baseRevision : given;
    const state = earlier.some((e) => e.state === 'conflict') ? 'conflict' : 'pending';
    return req(store.add({ project, imageId, payload, baseRevision: base ?? null, state, createdAt: Date.now() }));
  });
  await announceCount();
  flush();
  return seq;
}

// ---- the synchronous copy: an edit on its way into IndexedDB while the page is closed or reloaded ------------

const SYNC_PREFIX = 'vl_unsaved:';

/** Keep a copy of an edit in localStorage (synchronous: it survives the page closing right now) until
 * `enqueue` has stored it; `dropSync` then removes it. */
export function keepSync(project, imageId, payload, baseRevision) {
  try {
    localStorage.setItem(`${SYNC_PREFIX}${JSON.stringify([project, imageId])}`,
      JSON.stringify({ payload, baseRevision: baseRevision ?? null }));
    return true;
  } catch {
    return false; // full or unavailable: IndexedDB alone
  }
}

export function dropSync(project, imageId) {
  localStorage.removeItem(`${SYNC_PREFIX}${JSON.stringify([project, imageId])}`);
}

/** Queue the copies a closed page left (their IndexedDB write may not have finished); saving the same payload
 * twice is harmless (the server answers an unchanged payload with its head). */
async function recoverSync() {
  const keys = [];
  for (let i = 0; i < localStorage.length; i++) {
    const key = localStorage.key(i);
    if (key && key.startsWith(SYNC_PREFIX)) keys.push(key);
  }
  for (const key of keys) {
    try {
      const [project, imageId] = JSON.parse(key.slice(SYNC_PREFIX.length));
      const { payload, baseRevision } = JSON.parse(localStorage.getItem(key));
      await enqueue(project, imageId, payload, baseRevision);
    } catch (e) {
      console.error('offline queue: a kept edit could not be queued', e);
      continue;
    }
    localStorage.removeItem(key);
  }
}

/** How many edits are kept in this browser and not yet saved on the server. */
export async function pendingCount() {
  return tx('readonly', (store) => req(store.count()));
}

/** The newest waiting edit of an image ({payload, baseRevision, state, ...}), or null. */
export async function pendingFor(project, imageId) {
  const entries = await tx('readonly', (store) => req(store.index('image').getAll([project, imageId])));
  return entries.length ? entries[entries.length - 1] : null;
}

/** Forget the waiting edits of an image (after the person chose what to keep in a conflict). */
export async function resolveConflict(project, imageId) {
  savedRevision.delete(keyOf(project, imageId));
  await tx('readwrite', async (store) => {
    const keys = await req(store.index('image').getAllKeys([project, imageId]));
    for (const key of keys) store.delete(key);
  });
  await announceCount();
}

export const isOnline = () => online;

/** The revision this page's last save of an image created (undefined: none). */
export const savedRevisionOf = (project, imageId) => savedRevision.get(keyOf(project, imageId));

function scheduleRetry() {
  clearTimeout(retryTimer);
  const delay = RETRY_MS[Math.min(retryIndex, RETRY_MS.length - 1)];
  retryIndex += 1;
  retryTimer = setTimeout(flush, delay);
}

/** Saved: drop the entry and rebase the image's next waiting edit on the new revision, in one transaction. */
async function markSaved(entry, revision) {
  await tx('readwrite', async (store) => {
    savedRevision.set(keyOf(entry.project, entry.imageId), revision);
    store.delete(entry.seq);
    const rest = await req(store.index('image').getAll([entry.project, entry.imageId]));
    const next = rest.find((e) => e.seq !== entry.seq);
    if (next) store.put({ ...next, baseRevision: revision });
  });
}

async function markConflict(entry) {
  await tx('readwrite', async (store) => {
    const rest = await req(store.index('image').getAll([entry.project, entry.imageId]));
    for (const e of rest) store.put({ ...e, state: 'conflict' });
  });
}

async function sendOne(entry) {
  const path = projectPath(entry.project, `images/${entry.imageId}/annotation`);
  try {
    const saved = await api.put(path, { payload: entry.payload, base_revision: entry.baseRevision });
    await markSaved(entry, saved.revision);
    emit('saved', { project: entry.project, imageId: entry.imageId, revision: saved.revision });
    return 'ok';
  } catch (e) {
    if (!(e instanceof ApiError) || e.status === 0 || e.status >= 500 || e.status === 401 || e.status === 429) {
      return 'retry';
    }
    if (e.status === 409) {
      await markConflict(entry);
      emit('conflict', { project: entry.project, imageId: entry.imageId, entry, body: e.body });
      return 'next';
    }
    // The server refuses this payload for good (400/403/404/422): say why and drop it, the queue must move on.
    await tx('readwrite', (store) => store.delete(entry.seq));
    emit('rejected', { project: entry.project, imageId: entry.imageId, error: e });
    return 'next';
  }
}

async function flushOnce() {
  const entries = (await allEntries()).sort((a, b) => a.seq - b.seq);
  const blocked = new Set();
  for (const entry of entries) {
    const key = keyOf(entry.project, entry.imageId);
    if (blocked.has(key) || entry.state === 'conflict') {
      blocked.add(key);
      continue;
    }
    const current = await tx('readonly', (store) => req(store.get(entry.seq)));
    if (!current || current.state === 'conflict') continue; // resolved or blocked meanwhile
    const outcome = await sendOne(current);
    if (outcome === 'retry') {
      setOnline(false);
      scheduleRetry();
      return;
    }
    setOnline(true);
    retryIndex = 0;
    if (outcome === 'next') blocked.add(key);
    await announceCount();
  }
}

/** Send what waits, in order (one flush at a time; a call during a flush runs another after it). */
export function flush() {
  if (flushing) {
    again = true;
    return flushing;
  }
  clearTimeout(retryTimer);
  flushing = (async () => {
    try {
      do {
        again = false;
        // one tab at a time sends (two tabs sending the same edit would conflict with each other)
        if (navigator.locks) await navigator.locks.request('visionloop-edit-queue', () => flushOnce());
        else await flushOnce();
      } while (again && online);
    } catch (e) {
      console.error('offline queue', e);
    } finally {
      flushing = null;
      await announceCount().catch(() => {});
    }
  })();
  return flushing;
}

/** Resolves when nothing waits to be sent (tests and page unloads); gives up after `timeoutMs`. */
export async function idle(timeoutMs = 10000) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (!flushing && (await pendingCount()) === 0) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

window.addEventListener('online', () => { retryIndex = 0; flush(); });
// Edits kept by an earlier visit (a reload, a closed tab) are sent as soon as the app loads; `ready` resolves
// once the copies left in localStorage are queued (read the queue after it).
export const ready = recoverSync().catch((e) => console.error('offline queue', e)).then(() => { flush(); });
