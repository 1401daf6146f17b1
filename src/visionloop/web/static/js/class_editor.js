// Editing a list of classes: colour, name, keyboard key and the flags training needs. Used to create a project
// (every row new) and, on the dashboard, to edit a project's classes (rows carry their id; removing one retires it).
import { DEFAULT_KEYS, PALETTE, colorOf, h } from './ui.js';

export const ORIENTATION_HELP = 'Orientation matters: a mirrored image shows another class (left / right arrow), so '
  + 'training never flips it';
export const COLOUR_HELP = 'Colour matters: the class depends on colour (red / green light), so training keeps colours';

/**
 * classEditor(initial) -> {el, addRow, read()}. `initial`: classes as GET .../classes gives them (active ones).
 * read() -> {classes: [{id?, name, colour, key, orientation_sensitive, colour_sensitive}], removed: [ids]} or {error}.
 * A key left empty is null: the default digit by place.
 */
export function classEditor(initial = []) {
  const list = h('div', { class: 'class-editor' });
  const head = h('div', { class: 'class-row class-head' }, h('span', {}, 'Colour'), h('span', {}, 'Class name'),
    h('span', {}, 'Key'), h('span', { class: 'span-flags' }, 'Flags'), h('span', {}));
  const rows = [];
  const removed = [];

  function addRow(cls = null) {
    const i = rows.length;
    const row = { id: cls ? cls.id : null };
    // a new class gets a colour and a key no other row has
    const colours = new Set(rows.map((r) => r.colour.value.toLowerCase()));
    const taken = new Set(rows.map((r) => r.key.value));
    const freeColour = PALETTE.find((c) => !colours.has(c)) || PALETTE[i % PALETTE.length];
    const freeKey = DEFAULT_KEYS.find((k) => !taken.has(k)) || '';
    row.colour = h('input', { type: 'color', value: cls ? colorOf(cls) : freeColour, 'aria-label': 'Class colour' });
    row.name = h('input', { type: 'text', value: cls ? cls.name : '', placeholder: `class ${i + 1}`,
      'aria-label': 'Class name', class: 'class-name' });
    row.key = h('input', { type: 'text', class: 'key', maxlength: 1, value: cls ? cls.key || '' : freeKey,
      'aria-label': 'Keyboard key', title: 'The key that picks this class while annotating' });
    row.orientation = h('input', { type: 'checkbox', 'aria-label': 'Orientation matters',
      checked: Boolean(cls && cls.orientation_sensitive) });
    row.colourSensitive = h('input', { type: 'checkbox', 'aria-label': 'Colour matters',
      checked: Boolean(cls && cls.colour_sensitive) });
    row.el = h('div', { class: 'class-row', dataset: cls ? { classId: cls.id } : {} }, row.colour, row.name, row.key,
      h('label', { class: 'check', title: ORIENTATION_HELP }, row.orientation, 'orientation matters'),
      h('label', { class: 'check', title: COLOUR_HELP }, row.colourSensitive, 'colour matters'),
      h('button', { type: 'button', class: 'icon-button', 'aria-label': 'Remove class',
        title: cls ? 'Retire this class (refused while annotations use it)' : 'Remove this class',
        onclick: () => {
          rows.splice(rows.indexOf(row), 1);
          row.el.remove();
          if (row.id !== null) removed.push(row.id);
        } }, '\u00d7'));
    rows.push(row);
    list.append(row.el);
    return row;
  }

  for (const cls of initial) addRow(cls);
  const add = h('button', { type: 'button', class: 'small', onclick: () => addRow().name.focus() }, '+ Add a class');
  return {
    el: h('div', {}, head, list, h('div', { class: 'row', style: { marginTop: '8px' } }, add,
      h('span', { class: 'hint' }, `${ORIENTATION_HELP}. ${COLOUR_HELP}.`))),
    addRow,
    read() {
      const classes = [];
      const names = new Set();
      const keys = new Set();
      for (const r of rows) {
        const name = r.name.value.trim();
        if (!name) {
          if (r.id !== null) return { error: 'A class needs a name: type one, or remove the class with ×.' };
          continue;
        }
        if (names.has(name.toLowerCase())) return { error: `Two classes are named "${name}": give each a different name.` };
        const key = r.key.value.trim();
        if (key && keys.has(key)) return { error: `The key "${key}" is used by two classes: give each its own key.` };
        names.add(name.toLowerCase());
        if (key) keys.add(key);
        classes.push({ ...(r.id !== null ? { id: r.id } : {}), name, colour: r.colour.value, key: key || null,
          orientation_sensitive: r.orientation.checked, colour_sensitive: r.colourSensitive.checked });
      }
      return { classes, removed: [...removed] };
    },
  };
}
