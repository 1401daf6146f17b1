// Every editor action has a key: one table drives both the key handler and the `?` overlay that lists them.
//
// A binding: {keys: ['ctrl+z'], label: 'Undo', group: 'Edit', run(event), when?: () => bool}. Key names are
// ui.keyName's ('ctrl+shift+z', 'arrowright', '?', 'delete', '1').

import { h, keymap, modal } from '../ui.js';

export class Keys {
  constructor() {
    this.bindings = [];
    this.unbind = null;
    this.help = null;
  }

  /** Replace the bindings (they depend on the task and the classes). */
  set(bindings) {
    this.bindings = bindings;
  }

  /** Listen on the document until `stop()`. Returns false from a handler to let the event through. */
  start() {
    const listener = (event) => {
      if (keymap.isTyping(event) || document.querySelector('.modal-backdrop')) return;
      const name = keymap.keyName(event);
      const b = this.bindings.find((x) => x.keys.includes(name) && (!x.when || x.when()));
      if (!b) return;
      if (b.run(event) !== false) event.preventDefault();
    };
    document.addEventListener('keydown', listener);
    this.unbind = () => document.removeEventListener('keydown', listener);
  }

  stop() {
    if (this.unbind) this.unbind();
    this.unbind = null;
    if (this.help) this.help.close();
  }

  /** The `?` overlay: every key that works here, grouped. */
  showHelp() {
    if (this.help) {
      this.help.close();
      return;
    }
    const groups = new Map();
    for (const b of this.bindings) {
      if (b.hidden || (b.when && !b.when())) continue;
      if (!groups.has(b.group)) groups.set(b.group, []);
      groups.get(b.group).push(b);
    }
    const sections = [...groups].map(([group, list]) => h('section', { class: 'ed-keys-group' },
      h('h3', {}, group),
      h('dl', {}, list.flatMap((b) => [
        h('dt', {}, b.keys.map((k, i) => [i ? ' or ' : null, h('kbd', {}, keymap.label(k))])),
        h('dd', {}, b.label)]))));
    this.help = modal('Keyboard shortcuts', h('div', { class: 'ed-keys' }, sections),
      { wide: true, onClose: () => { this.help = null; } });
  }
}
