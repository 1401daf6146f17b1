// The projects the user can open, with their task and image counts; admins create new ones here.
import { ApiError, api, projectPath, session } from '../api.js';
import {
  DEFAULT_KEYS, PALETTE, emptyState, errorState, fmtNumber, h, modal, pageHeader, projectHref, replaceChildren,
  taskLabel, toast, TASK_LABELS,
} from '../ui.js';

const TASK_HELP = {
  classification: 'One class per image (for example: good part / scratched / dented).',
  tagging: 'Any number of tags per image (for example: blurry, night, rain).',
  detection: 'Boxes around objects, each with a class (cells, vehicles, defects).',
  segmentation: 'The outline of each object (polygons or masks), or a class for every pixel.',
};

const ORIENTATION_HELP = 'Orientation matters: a mirrored image shows another class (left / right arrow), so '
  + 'training never flips it';
const COLOUR_HELP = 'Colour matters: the class depends on colour (red / green light), so training keeps colours';

function projectCard(p, detail) {
  const stats = detail && detail.stats;
  const annotated = stats ? stats.annotated_images : null;
  return h('a', { class: 'card project-card', href: projectHref(p.name), dataset: { project: p.name } },
    h('div', { class: 'row' }, h('h3', {}, p.name), h('span', { class: 'spacer' }),
      h('span', { class: `role-badge role-${p.role}` }, p.role)),
    h('div', { class: 'meta' }, h('span', { class: 'task-pill' }, taskLabel(p.task))),
    h('div', { class: 'meta' },
      h('span', { class: 'project-images' }, detail ? `${fmtNumber(detail.images)} images` : '…'),
      annotated !== null ? h('span', { class: 'faint' }, '·') : null,
      annotated !== null ? h('span', {}, `${fmtNumber(annotated)} annotated`) : null));
}

/** The class editor of the new-project form: rows of colour, name, key and flags. */
function classEditor() {
  const list = h('div', { class: 'class-editor' });
  const head = h('div', { class: 'class-row class-head' }, h('span', {}, 'Colour'), h('span', {}, 'Class name'),
    h('span', {}, 'Key'), h('span', { class: 'span-flags' }, 'Flags'), h('span', {}));
  const rows = [];

  function addRow(name = '') {
    const i = rows.length;
    const row = {};
    row.colour = h('input', { type: 'color', value: PALETTE[i % PALETTE.length], 'aria-label': 'Class colour' });
    row.name = h('input', { type: 'text', value: name, placeholder: `class ${i + 1}`, 'aria-label': 'Class name',
      class: 'class-name' });
    row.key = h('input', { type: 'text', class: 'key', maxlength: 1, value: DEFAULT_KEYS[i] || '',
      'aria-label': 'Keyboard key', title: 'The key that picks this class while annotating' });
    row.orientation = h('input', { type: 'checkbox', 'aria-label': 'Orientation matters' });
    row.colourSensitive = h('input', { type: 'checkbox', 'aria-label': 'Colour matters' });
    row.el = h('div', { class: 'class-row' }, row.colour, row.name, row.key,
      h('label', { class: 'check', title: ORIENTATION_HELP }, row.orientation, 'orientation matters'),
      h('label', { class: 'check', title: COLOUR_HELP }, row.colourSensitive, 'colour matters'),
      h('button', { type: 'button', class: 'icon-button', title: 'Remove this class', 'aria-label': 'Remove class',
        onclick: () => { rows.splice(rows.indexOf(row), 1); row.el.remove(); } }, '\u00d7'));
    rows.push(row);
    list.append(row.el);
    return row;
  }

  const add = h('button', { type: 'button', class: 'small', onclick: () => addRow().name.focus() }, '+ Add a class');
  return {
    el: h('div', {}, head, list, h('div', { class: 'row', style: { marginTop: '8px' } }, add,
      h('span', { class: 'hint' }, `${ORIENTATION_HELP}. ${COLOUR_HELP}.`))),
    addRow,
    /** The classes as the API takes them, or a message saying what to fix. */
    read() {
      const classes = [];
      const names = new Set();
      const keys = new Set();
      for (const r of rows) {
        const name = r.name.value.trim();
        if (!name) continue;
        if (names.has(name.toLowerCase())) return { error: `Two classes are named "${name}": give each a different name.` };
        const key = r.key.value.trim();
        if (key && keys.has(key)) return { error: `The key "${key}" is used by two classes: give each its own key.` };
        names.add(name.toLowerCase());
        if (key) keys.add(key);
        classes.push({ name, colour: r.colour.value, key: key || null, orientation_sensitive: r.orientation.checked,
          colour_sensitive: r.colourSensitive.checked });
      }
      return { classes };
    },
  };
}

function openCreate(onCreated) {
  const name = h('input', { type: 'text', id: 'new-project-name', placeholder: 'e.g. blood-cells',
    autocomplete: 'off' });
  const taskHelp = h('span', { class: 'hint' }, TASK_HELP.detection);
  const task = h('select', { id: 'new-project-task', onchange: () => { taskHelp.textContent = TASK_HELP[task.value]; } },
    Object.entries(TASK_LABELS).map(([value, label]) => h('option', { value, selected: value === 'detection' }, label)));
  task.value = 'detection';
  const classes = classEditor();
  classes.addRow();
  const error = h('div', { class: 'error-box', role: 'alert', hidden: true });
  const create = h('button', { type: 'submit', class: 'primary', form: 'new-project-form' }, 'Create project');
  const cancel = h('button', { type: 'button', onclick: () => dialog.close() }, 'Cancel');
  const form = h('form', { id: 'new-project-form', onsubmit: submit },
    error,
    h('div', { class: 'field' }, h('label', { for: 'new-project-name' }, 'Name'), name,
      h('span', { class: 'hint' }, 'Letters, digits, - and _; it names the project\u2019s folder on the server.')),
    h('div', { class: 'field' }, h('label', { for: 'new-project-task' }, 'What should a model learn?'), task, taskHelp),
    h('div', { class: 'field' }, h('label', {}, 'Classes'),
      h('span', { class: 'hint' }, 'You can add more later, and import brings its own. The key picks the class while annotating.'),
      classes.el));
  const dialog = modal('New project', form, { actions: [cancel, create], wide: true });

  function fail(text) {
    error.textContent = text;
    error.hidden = false;
  }

  async function submit(event) {
    event.preventDefault();
    error.hidden = true;
    const projectName = name.value.trim();
    if (!projectName) return fail('Give the project a name.');
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(projectName)) {
      return fail('Use letters, digits, - and _ in the name (no spaces or slashes), starting with a letter or digit.');
    }
    const read = classes.read();
    if (read.error) return fail(read.error);
    create.disabled = true;
    try {
      await api.post('projects', { name: projectName, task: task.value, classes: read.classes });
      dialog.close();
      toast(`Project ${projectName} created. Import images to start.`, 'success');
      onCreated(projectName);
    } catch (e) {
      fail(e instanceof ApiError && e.status === 409
        ? `A project named "${projectName}" exists already: choose another name.` : e.detail || String(e));
    } finally {
      create.disabled = false;
    }
  }
}

export async function render(root, params) {
  const s = params.session;
  const isAdmin = s.projects.some((p) => p.role === 'admin');
  const onCreated = async (name) => {
    await session.refresh();
    location.hash = projectHref(name, 'import');
  };
  const newButton = isAdmin
    ? h('button', { class: 'primary', id: 'new-project', onclick: () => openCreate(onCreated) }, 'New project') : null;
  const grid = h('div', { class: 'cards', id: 'project-list' });
  replaceChildren(root, h('div', { 'data-testid': 'projects-page' },
    pageHeader('Projects', `Signed in as ${s.user}`, newButton), grid));
  if (!s.projects.length) {
    replaceChildren(grid, emptyState('No projects yet',
      isAdmin ? 'Create a project, then import images from your computer.'
        : 'You are not a member of any project. Ask an admin to add you to one.',
      newButton ? h('button', { class: 'primary', onclick: () => openCreate(onCreated) }, 'Create a project') : null));
    return;
  }
  let listed = [];
  try {
    listed = await api.get('projects');
  } catch (e) {
    replaceChildren(grid, errorState(e, 'The project list'));
    return;
  }
  const counts = new Map(listed.map((p) => [p.name, p]));
  const cards = new Map();
  for (const p of s.projects) {
    const card = projectCard(p, counts.get(p.name));
    cards.set(p.name, card);
    grid.append(card);
  }
  // the annotated counts come one project at a time, after the list is on screen
  for (const p of s.projects) {
    api.get(projectPath(p.name)).then((detail) => {
      const fresh = projectCard(p, detail);
      cards.get(p.name).replaceWith(fresh);
      cards.set(p.name, fresh);
    }).catch(() => {});
  }
}
