// The editor's DOM around the canvas: the toolbar (image, navigation, tools, save status) and the side panel
// (classes with their keys and counts, the selected shape). No per-shape DOM: the shapes live on the canvas.

import { h, replaceChildren, colorOf, textOn, keymap } from '../ui.js';
import { similarStrip } from '../similar_strip.js';

/** A click on these buttons leaves the keyboard focus where it was (Space and the keys keep going to the editor). */
const keepFocus = (e) => e.preventDefault();

const TOOL_LABELS = {
  select: ['Select / move', 'v'], box: ['Box', 'b'], polygon: ['Polygon', 'p'], brush: ['Brush', 'r'],
  eraser: ['Eraser', 'e'], fill: ['Fill', 'g'], assist: ['Assist', 'i'],
};

export class Panel {
  /** `actions`: {prev, next, help, setTool(name), pickClass(id), resolveConflict()}. */
  constructor(root, { mode, classes, actions, readOnly }) {
    this.mode = mode;
    this.classes = classes;
    this.actions = actions;
    this.canvasEl = h('div', { class: 'ed-canvas', tabindex: '0', 'aria-label': 'Image canvas' });
    this.nameEl = h('span', { class: 'ed-name' });
    this.posEl = h('span', { class: 'ed-pos muted' });
    this.statusEl = h('button', { class: 'ed-status', 'data-state': 'saved', title: 'Every change is saved on its own',
      onclick: () => actions.resolveConflict(), hidden: readOnly }, 'Saved');
    this.toolsEl = h('div', { class: 'ed-tools', role: 'toolbar', 'aria-label': 'Tools' });
    this.modesEl = h('div', { class: 'ed-modes', hidden: true });
    this.prevBtn = h('button', { class: 'small', title: 'Previous image (A or ←)', onclick: actions.prev,
      onmousedown: keepFocus }, '‹ Prev');
    this.nextBtn = h('button', { class: 'small', title: 'Next image (D or →)', onclick: actions.next,
      onmousedown: keepFocus }, 'Next ›');
    this.bannerEl = h('div', { class: 'ed-banner', hidden: true });
    this.classList = h('ul', { class: 'ed-classes' });
    this.selectionEl = h('div', { class: 'ed-selection' });
    this.hintEl = h('p', { class: 'ed-hint muted' });
    this.predictionsEl = h('section', { class: 'ed-pred', 'data-testid': 'ed-predictions', hidden: true });
    this.similarEl = h('section', { class: 'ed-similar', 'data-testid': 'ed-similar' }); // more like this
    this.workEl = h('section', { class: 'ed-work', 'data-testid': 'ed-work', hidden: true }); // editor/work.js
    const bar = h('div', { class: 'ed-bar' },
      h('div', { class: 'ed-bar-left' }, this.prevBtn, this.nextBtn, h('div', { class: 'ed-title' }, this.nameEl,
        this.posEl)),
      this.toolsEl, this.modesEl,
      h('div', { class: 'ed-bar-right' }, readOnly ? h('span', { class: 'ed-readonly' }, 'View only') : null,
        this.statusEl,
        h('button', { class: 'small ed-help-btn', title: 'Keyboard shortcuts (?)', onclick: actions.help }, '?')));
    const side = h('aside', { class: 'ed-side' }, this.workEl,
      h('h3', {}, mode === 'tags' ? 'Tags' : mode === 'label' ? 'Label' : 'Classes'),
      this.classList, this.selectionEl, this.predictionsEl, this.similarEl, this.hintEl);
    replaceChildren(root, h('div', { class: 'ed' }, bar,
      h('div', { class: 'ed-main' }, h('div', { class: 'ed-stage' }, this.canvasEl, this.bannerEl), side)));
  }

  setImage(detail, position) {
    this.nameEl.textContent = detail.name;
    this.nameEl.title = detail.source_file || detail.name;
    const frame = detail.video_id !== null && detail.video_id !== undefined
      ? ` · ${detail.video_id} frame ${detail.frame_index ?? '?'}` : '';
    this.posEl.textContent = `${detail.width}×${detail.height}${frame}${position ? ` · ${position}` : ''}`;
    this.showSimilarButton(detail.id);
  }

  /** "More like this": a button that shows the images most like this one (of the page's project). */
  showSimilarButton(imageId) {
    const project = decodeURIComponent((location.hash.match(/^#\/p\/([^/?]+)/) || [])[1] || '');
    if (!project || !imageId) return;
    replaceChildren(this.similarEl, h('button', { class: 'small', 'data-testid': 'ed-more-like-this',
      title: 'The images most like this one', onmousedown: keepFocus,
      onclick: () => replaceChildren(this.similarEl, h('h3', {}, 'More like this'),
        similarStrip(project, imageId, null, { k: 8, size: 128 })) }, 'More like this'));
  }

  setNav(prevId, nextId) {
    this.prevBtn.disabled = prevId === null || prevId === undefined;
    this.nextBtn.disabled = nextId === null || nextId === undefined;
  }

  setTools(names, current) {
    replaceChildren(this.toolsEl, names.map((name) => {
      const [label, key] = TOOL_LABELS[name];
      return h('button', { class: `small ed-tool${name === current ? ' active' : ''}`,
        'aria-pressed': String(name === current),
        'data-tool': name, title: `${label} (${key.toUpperCase()})`, onclick: () => this.actions.setTool(name),
        onmousedown: keepFocus },
      label, h('kbd', {}, key.toUpperCase()));
    }));
  }

  /** Segmentation: outlines or a class mask, switchable while the image is empty. */
  setModes(mode, switchable) {
    this.modesEl.hidden = !switchable;
    if (!switchable) return;
    replaceChildren(this.modesEl, h('span', { class: 'muted' }, 'Annotate with'),
      [['instances', 'Outlines'], ['semantic', 'Class mask']].map(([m, label]) => h('button', {
        class: `small${m === mode ? ' active' : ''}`, 'aria-pressed': String(m === mode), 'data-mode': m,
        title: 'M switches while the image is empty', onclick: () => this.actions.switchMode(m),
        onmousedown: keepFocus }, label)));
  }

  setStatus({ state, text }) {
    this.statusEl.dataset.state = state;
    this.statusEl.textContent = text;
    this.statusEl.title = state === 'conflict' ? 'Click to choose which version to keep'
      : 'Every change is saved on its own; edits made without a connection are kept in this browser';
  }

  /** The class list: key, colour, name, and per class the count in this image or whether it is set. */
  setClasses({ current, counts, chosen, keys }) {
    replaceChildren(this.classList, this.classes.map((c) => {
      const colour = colorOf(c);
      const on = chosen ? chosen.has(c.id) : c.id === current;
      const key = keys.get(c.id);
      return h('li', {}, h('button', { class: `ed-class${on ? ' active' : ''}`, 'data-class': c.id,
        'aria-pressed': String(on), onclick: () => this.actions.pickClass(c.id), onmousedown: keepFocus,
        title: key ? `${c.name} (key ${keymap.label(key)})` : c.name },
      h('span', { class: 'ed-swatch', style: { background: colour, color: textOn(colour) } },
        key ? keymap.label(key) : ''),
      h('span', { class: 'ed-class-name' }, c.name),
      counts ? h('span', { class: 'ed-count' }, String(counts.get(c.id) || 0)) : null));
    }));
  }

  /** What is selected: a shape (class, size, track) or nothing. */
  setSelection(text) {
    this.selectionEl.replaceChildren(...(text ? [h('h3', {}, 'Selected'), h('p', {}, text)] : []));
  }

  setHint(text) {
    this.hintEl.textContent = text;
  }

  /** A banner over the image (the label of a classified image, "not labelled yet"). */
  setBanner(content, colour) {
    this.bannerEl.hidden = !content;
    replaceChildren(this.bannerEl, content || '');
    this.bannerEl.style.background = colour || '';
    this.bannerEl.style.color = colour ? textOn(colour) : '';
  }
}
