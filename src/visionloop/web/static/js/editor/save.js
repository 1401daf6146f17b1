// Saving without a save button: every edit is queued (IndexedDB, offline.js) ~350 ms after the last change, as a
// new revision naming its base revision, and the status says Saved / Saving… / N edits waiting / Conflict.

import * as offline from '../offline.js';

const DEBOUNCE_MS = 350;

export class AutoSave {
  /**
   * `getPayload()`: the annotation as it is now; `onStatus({state, text, pending})`; `onConflict(body)`: the
   * server refused a save because someone else saved first (409 body, with `head` when the server sends it).
   */
  constructor({ project, imageId, revision, getPayload, onStatus, onConflict }) {
    Object.assign(this, { project, imageId, revision, getPayload, onStatus, onConflict });
    this.timer = null;
    this.conflict = false;
    this.pending = 0;
    this.queued = 0; // entries of this image queued and not yet saved
    this.listeners = [];
    const on = (type, fn) => {
      offline.events.addEventListener(type, fn);
      this.listeners.push([type, fn]);
    };
    const mine = (e) => e.detail.project === project && e.detail.imageId === imageId;
    on('saved', (e) => {
      if (!mine(e)) return;
      this.revision = e.detail.revision;
      this.queued = Math.max(0, this.queued - 1);
      this.report();
    });
    on('conflict', (e) => {
      if (!mine(e) || this.conflict) return;
      this.conflict = true;
      this.queued = 0;
      this.report();
      this.onConflict(e.detail.body);
    });
    on('rejected', (e) => {
      if (!mine(e)) return;
      this.queued = Math.max(0, this.queued - 1);
      this.error = e.detail.error;
      this.report();
    });
    let heard = false;
    on('change', (e) => {
      heard = true;
      this.pending = e.detail.count;
      this.report();
    });
    on('online', () => this.report());
    // the count now, unless a change event (newer) came first
    offline.pendingCount().then((n) => {
      if (heard) return;
      this.pending = n;
      this.report();
    });
  }

  /** An edit happened: save it soon (the timer restarts with every edit). */
  schedule() {
    this.error = null;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flushNow(), DEBOUNCE_MS);
    this.report();
  }

  /** Queue the edit now (leaving the image, closing the page). Resolves once it is in IndexedDB. */
  async flushNow() {
    if (this.timer === null) return;
    clearTimeout(this.timer);
    this.timer = null;
    if (this.conflict) return; // held until the person chose a version; the edits stay on the page
    this.queued += 1;
    const payload = this.getPayload();
    const kept = offline.keepSync(this.project, this.imageId, payload, this.revision);
    await offline.enqueue(this.project, this.imageId, payload, this.revision);
    if (kept) offline.dropSync(this.project, this.imageId);
    this.report();
  }

  /** The conflict is settled: `revision` is the head the next save builds on; `payload` (if any) is saved now. */
  async resolved(revision, payload) {
    await offline.resolveConflict(this.project, this.imageId);
    this.conflict = false;
    this.revision = revision;
    this.queued = 0;
    if (payload) {
      this.queued = 1;
      await offline.enqueue(this.project, this.imageId, payload, revision);
    }
    this.report();
  }

  state() {
    const n = this.pending;
    const waiting = n === 1 ? '1 edit waiting to be sent' : `${n} edits waiting to be sent`;
    if (this.conflict) return { state: 'conflict', text: 'Conflict: choose a version', pending: n };
    if (this.error) {
      return { state: 'error', text: `Not saved: ${this.error.detail || this.error.message}`, pending: n };
    }
    if (!offline.isOnline() && n) return { state: 'offline', text: `Server unreachable · ${waiting}`, pending: n };
    if (this.timer !== null || this.queued > 0) return { state: 'saving', text: 'Saving…', pending: n };
    // edits of other images still waiting are the top bar's to count: this image is saved
    if (this.revision === null || this.revision === undefined) {
      return { state: 'idle', text: 'Not annotated yet', pending: 0 };
    }
    return { state: 'saved', text: 'Saved', pending: 0 };
  }

  report() {
    this.onStatus(this.state());
  }

  dispose() {
    for (const [type, fn] of this.listeners) offline.events.removeEventListener(type, fn);
    this.listeners = [];
  }
}
