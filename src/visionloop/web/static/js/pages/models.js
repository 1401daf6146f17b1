// #/p/:project/models — the model packages (metrics, int8 verdict), which one is deployed (its version, the previous
// one), deploy another or roll back to the previous one (admin), and "try it": drop an image, see the deployed
// model's prediction drawn on it, and its JSON.
import {api, projectPath, roleAllows, session} from '../api.js';
import {confirmDialog, emptyState, fmtDate, h, pageHeader, plural, projectHref, spinner, toast, toastError} from '../ui.js';
import {headlineText, int8Change} from '../metrics_view.js';
import {predictionCanvas, predictionSummary, scoreList} from '../prediction_view.js';
import {jobProgress, watchJob} from '../job_watch.js';

let cleanups = [];

export function dispose() {
  cleanups.forEach((f) => f());
  cleanups = [];
}

export async function render(root, {project}) {
  dispose();
  const p = (rest) => projectPath(project, rest);
  const [role, packages, deployment, classes] = await Promise.all([
    session.role(project), api.get(p('packages')), api.get(p('deployment')).catch(() => null),
    api.get(p('classes')).catch(() => []),
  ]);
  const admin = roleAllows(role, 'admin');
  const list = h('section', {class: 'card'});
  const preCard = h('section', {class: 'card pre-annotate', id: 'pre-annotate'});
  const tryCard = h('section', {class: 'card try-it'});
  root.replaceChildren(h('div', {class: 'models-page'},
    pageHeader('Models', 'Packages exported from training runs; the deployed one answers predictions in this '
      + 'platform.'), list, preCard, tryCard));

  async function refresh() {
    const [pk, dep] = await Promise.all([api.get(p('packages')), api.get(p('deployment')).catch(() => null)]);
    show(pk, dep);
  }
  function show(pk, dep) {
    renderPackages(list, project, pk, dep, admin, refresh);
    renderPreannotate(preCard, project, dep, admin);
    renderTry(tryCard, project, dep, classes);
  }
  show(packages, deployment);
}

const deployedName = (dep) => dep?.package || null;

function renderPackages(el, project, packages, deployment, admin, refresh) {
  const list = [...packages].sort((x, y) => String(y.created_at).localeCompare(String(x.created_at)));
  const current = deployedName(deployment);
  if (!list.length) {
    el.replaceChildren(h('h2', {}, 'Packages'), emptyState('No package yet',
      'Train a model, open its run and export a package; it appears here, ready to deploy.',
      h('a', {class: 'button primary', href: projectHref(project, 'train')}, 'Train a model')));
    return;
  }
  const deploy = async (name, button) => {
    button.disabled = true;
    try {
      await api.post(projectPath(project, 'deployment'), {package: name});
      toast(`${name} is deployed`, 'success');
      await refresh();
    } catch (e) {
      toastError(e);
      button.disabled = false;
    }
  };
  el.replaceChildren(h('h2', {}, 'Packages'), deploymentLine(project, deployment, admin, refresh),
    h('table', {class: 'table packages', id: 'packages'},
    h('thead', {}, h('tr', {}, ...['package', 'run', 'precision', 'metrics', 'int8 check', 'size', 'created', ''].map((t) => h('th', {}, t)))),
    h('tbody', {}, ...list.map((pk) => {
      const deployed = pk.deployed || pk.name === current;
      const button = h('button', {type: 'button', class: 'deploy', 'data-package': pk.name}, 'Deploy');
      button.addEventListener('click', () => deploy(pk.name, button));
      return h('tr', {class: deployed ? 'deployed' : '', 'data-package': pk.name},
        h('td', {}, h('strong', {}, pk.name), deployed ? h('span', {class: 'badge ok'}, 'deployed') : null),
        h('td', {}, pk.run ? h('a', {href: projectHref(project, `runs/${encodeURIComponent(pk.run)}`)}, pk.run) : '–'),
        h('td', {}, pk.precision),
        h('td', {}, headlineText(pk.metrics, 2) || '–'),
        h('td', {}, int8Text(pk.int8)),
        h('td', {class: 'num'}, mb(pk.size_bytes)),
        h('td', {}, fmtDate(pk.created_at)),
        h('td', {}, admin && !deployed ? button : null));
    }))));
}

// The deployed package with its version (what model servers name in each prediction) and, for admins, a button that
// deploys the previous one again (POST .../deployment/rollback; servers following the project roll back too).
function deploymentLine(project, dep, admin, refresh) {
  if (!dep?.package) return h('p', {class: 'muted', id: 'deployment-line'}, 'Nothing is deployed yet.');
  const prev = dep.previous;
  const rollback = admin && prev?.package ? h('button', {type: 'button', id: 'rollback', class: 'small'},
    `Roll back to ${prev.package}`) : null;
  rollback?.addEventListener('click', async () => {
    if (!(await confirmDialog(`Deploy ${prev.package} again (version ${prev.package_version || '–'})? `
      + `${dep.package} becomes the previous package.`, {confirm: 'Roll back', title: 'Roll back'}))) return;
    rollback.disabled = true;
    try {
      const done = await api.post(projectPath(project, 'deployment/rollback'));
      toast(`${done.package} is deployed again`, 'success');
      await refresh();
    } catch (e) {
      toastError(e);
      rollback.disabled = false;
    }
  });
  return h('p', {id: 'deployment-line'}, 'Deployed: ', h('strong', {}, dep.package),
    h('span', {class: 'muted'}, ` version ${dep.package_version || '–'}`
      + `${dep.deployed_by ? `, by ${dep.deployed_by}` : ''}${dep.deployed_at ? `, ${fmtDate(dep.deployed_at)}` : ''}`
      + `${prev?.package ? `; previous: ${prev.package} (${prev.package_version || '–'})` : ''}`),
    rollback ? ' ' : null, rollback);
}

const mb = (bytes) => (typeof bytes === 'number' ? `${(bytes / 1e6).toFixed(1)} MB` : '–');


function int8Text(int8) {
  if (!int8) return h('span', {class: 'muted'}, 'not quantised');
  return h('span', {class: `verdict ${int8.forced ? 'refused' : 'kept'}`},
    `${int8.forced ? 'kept by force' : 'kept'}: ${int8Change(int8)}`);
}

// Pre-annotation without a terminal: the deployed model predicts the unlabelled images in a job (POST .../preannotate);
// the editor then offers its boxes as suggestions to accept.
function renderPreannotate(el, project, deployment, admin) {
  const current = deployedName(deployment);
  el.hidden = !admin || !current;
  if (el.hidden) return;
  const progress = jobProgress();
  progress.el.hidden = true;
  const button = h('button', {type: 'button', class: 'primary', id: 'preannotate-start'},
    'Pre-annotate unlabelled images with this model');
  const after = h('p', {class: 'muted', id: 'preannotate-after'});
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      const job = await api.post(projectPath(project, 'preannotate'), {package: current});
      progress.el.hidden = false;
      progress.set(job);
      const watch = watchJob(project, job.id, (j) => progress.set(j));
      cleanups.push(() => watch.stop());
      const last = await watch.done;
      if (last?.state === 'done') {
        after.replaceChildren(`${plural(last.result?.stored ?? 0, 'image')} pre-annotated: open one in the editor and press O `
          + 'to see the suggestions. ', h('a', {href: projectHref(project, 'jobs')}, 'All jobs'));
      }
    } catch (e) {
      toastError(e);
    } finally {
      button.disabled = false;
    }
  });
  el.replaceChildren(h('h2', {}, 'Pre-annotation'), h('p', {class: 'muted'}, 'The deployed model ',
    h('strong', {}, current), ' predicts the images nobody has annotated yet, in the background; the editor offers '
    + 'its boxes as suggestions to accept (Enter) or accept above a threshold (Shift+O).'),
  h('div', {class: 'row'}, button), progress.el, after);
}

function renderTry(el, project, deployment, classes) {
  const current = deployedName(deployment);
  if (!current) {
    el.replaceChildren(h('h2', {}, 'Try it'), h('p', {class: 'muted'}, 'Deploy a package first; then drop an image here '
      + 'to see what the model finds.'));
    return;
  }
  const input = h('input', {type: 'file', accept: 'image/*', id: 'try-file', class: 'sr-only'});
  const zone = h('label', {class: 'drop-zone', for: 'try-file', id: 'try-drop'},
    h('strong', {}, 'Drop an image here'), h('span', {class: 'muted'}, ' or click to choose one'));
  const result = h('div', {class: 'try-result', id: 'try-result'});
  const predict = async (file) => {
    if (!file) return;
    result.replaceChildren(spinner(`Asking ${current}…`));
    const form = new FormData();
    form.append('file', file, file.name);
    try {
      const answer = await api.upload(projectPath(project, 'predict'), form);
      const prediction = answer.prediction || answer;
      const image = await loadImage(file);
      showPrediction(result, image, prediction, classes, file.name);
    } catch (e) {
      result.replaceChildren(h('p', {class: 'error'}, e.detail || String(e)));
    }
  };
  input.addEventListener('change', () => predict(input.files[0]));
  zone.addEventListener('dragover', (e) => { e.preventDefault(); zone.classList.add('over'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    predict([...e.dataTransfer.files].find((f) => f.type.startsWith('image/')) || e.dataTransfer.files[0]);
  });
  el.replaceChildren(h('h2', {}, 'Try it'), h('p', {class: 'muted'}, 'The deployed model ', h('strong', {}, current),
    deployment?.deployed_at ? ` (since ${fmtDate(deployment.deployed_at)})` : '', ' answers.'), input, zone, result);
}

function loadImage(file) {
  return new Promise((resolve, reject) => {
    const url = URL.createObjectURL(file);
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error('the browser cannot show this image'));
    img.src = url;
    cleanups.push(() => URL.revokeObjectURL(url));
  });
}

function showPrediction(el, image, prediction, classes, name) {
  const boxes = prediction.detections || [];
  const scores = boxes.length || prediction.segments ? null : scoreList(prediction, classes);
  const summary = h('span', {}, predictionSummary(prediction));
  const view = h('div', {class: 'prediction-view'}, predictionCanvas(image, prediction, classes), scores);
  // objects below a chosen score are hidden (the model's own thresholds already applied on the server)
  const slider = h('input', {type: 'range', min: 0, max: 1, step: 0.05, value: 0, id: 'try-min-score'});
  const sliderText = h('span', {class: 'muted'}, 'all');
  slider.addEventListener('input', () => {
    const min = Number(slider.value);
    sliderText.textContent = min > 0 ? `${Math.round(min * 100)} % and above` : 'all';
    summary.textContent = predictionSummary(prediction, min);
    view.firstChild.replaceWith(predictionCanvas(image, prediction, classes, {minScore: min}));
  });
  el.replaceChildren(
    h('p', {class: 'prediction-summary', id: 'try-summary'}, h('strong', {}, name), ': ', summary),
    boxes.length ? h('label', {class: 'row score-filter'}, 'Show objects scored ', slider, sliderText) : '',
    view,
    h('details', {}, h('summary', {}, 'The answer as JSON'),
      h('pre', {class: 'json', id: 'try-json'}, JSON.stringify(prediction, null, 2))));
}
