// Undo and redo over whole payloads: every edit pushes the annotation as it is after the edit (plain JSON, so an
// undo is just loading an earlier state, and every state is one the server can take as a revision).

const LIMIT = 200;

export class History {
  constructor(initial) {
    this.reset(initial);
  }

  /** Start over from `state` (a new image). */
  reset(state) {
    this.past = [state];
    this.future = [];
  }

  get current() { return this.past[this.past.length - 1]; }

  /** Record the state after an edit; a state equal to the current one is not an edit. */
  push(state) {
    if (JSON.stringify(state) === JSON.stringify(this.current)) return false;
    this.past.push(state);
    if (this.past.length > LIMIT) this.past.shift();
    this.future = [];
    return true;
  }

  canUndo() { return this.past.length > 1; }

  canRedo() { return this.future.length > 0; }

  /** The state to show after undoing the last edit, or null. */
  undo() {
    if (!this.canUndo()) return null;
    this.future.push(this.past.pop());
    return this.current;
  }

  redo() {
    if (!this.canRedo()) return null;
    this.past.push(this.future.pop());
    return this.current;
  }
}
