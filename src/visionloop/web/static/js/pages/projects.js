// The projects the user can open, with their task and image counts; admins create new ones here.
import { ApiError, api, projectPath, session } from '../api.js';
import {
  emptyState, errorState, fmtNumber, h, modal, pageHeader, projectHref, replaceChildren, taskLabel, toast, TASK_LABELS,
} from '../ui.js';
import { classEditor } from '../class_editor.js';

const TASK_HELP = {
  classification: 'One class per image (for example: good part / scratched / dented).',
  tagging: 'Any number of tags per image (for example: blurry, night, rain).',
  detection: 'Boxes around objects, each with a class (cells, vehicles, defects).',
  segmentation: 'The outline of each object (polygons or masks), or a class for every pixel.',
};

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

export async function render(root) {
  const s = await session.refresh(); // projects made or shared since the last look are listed too
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
