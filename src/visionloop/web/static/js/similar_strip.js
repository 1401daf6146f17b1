// "More like this": the images most like one image (GET images/{id}/similar, from the stored embeddings) as a strip
// of thumbnails that open in the editor; without embeddings it says so, and an admin can compute them from here.
import {api, projectPath, session} from './api.js';
import {jobPanel, thumbLink} from './data_issues.js';
import {errorState, h, modal, replaceChildren, spinner} from './ui.js';

/** A strip of the `k` images most like image `imageId`, filled in when the answer comes (`role` null: the
 * signed-in user's role in the project, asked when needed). */
export function similarStrip(project, imageId, role, {k = 12, size = 128} = {}) {
  const el = h('div', {class: 'similar-strip', 'data-testid': 'similar-strip', 'data-image': imageId},
    spinner('Finding similar images…'));
  let job = null;
  async function load() {
    try {
      const found = await api.get(projectPath(project, `images/${imageId}/similar`), {params: {k}});
      replaceChildren(el, found.results.length
        ? found.results.map((r) => thumbLink(project, r, {size, caption: r.score.toFixed(2), cls: 'similar-thumb'}))
        : h('p', {class: 'muted'}, 'No other image to compare with.'));
    } catch (e) {
      if (e.status !== 409) {
        replaceChildren(el, errorState(e, 'Similar images'));
        return;
      }
      if (job) job.stop();
      const who = role ?? await session.role(project).catch(() => '');
      job = jobPanel(project, who, {kind: 'embed', label: 'Compute embeddings', path: 'embeddings'}, load);
      replaceChildren(el, h('p', {class: 'muted'}, 'Similar images are found from the images\u2019 embeddings, '
        + 'and this image has none yet.'), job.el);
    }
  }
  load();
  return el;
}

/** The strip in a dialog (the browse page's selection); a click on an image closes it and opens the editor. */
export function openSimilar(project, image, role) {
  const dlg = modal(`More like ${image.name || `image ${image.id}`}`, similarStrip(project, image.id, role, {k: 24, size: 256}),
    {wide: true});
  dlg.element.addEventListener('click', (e) => { if (e.target.closest('a.similar-thumb')) dlg.close(); });
  return dlg;
}
