// #/p/:project/train — choose a dataset version, see the task's defaults and the auto choice, start a training run
// (admin), then follow it live: progress, loss and validation curves, cancel.
import {api, projectPath, roleAllows, session} from '../api.js';
import {confirmDialog, fmtDate, fmtMetric as fmt, h, pageHeader, projectHref, toast, toastError} from '../ui.js';
import {historyCharts, historyRecords} from '../charts.js';
import {FINAL_STATES, jobProgress, watchJob} from '../job_watch.js';
import {headlineText, newestFirst} from '../metrics_view.js';

let cleanups = [];

export function dispose() {
  cleanups.forEach((f) => f());
  cleanups = [];
}

const runOf = (job) => job?.result?.run || job?.progress?.run || null;

export async function render(root, {project}) {
  dispose();
  const p = (rest) => projectPath(project, rest);
  const [role, versions, jobs, runs] = await Promise.all([
    session.role(project), api.get(p('versions')), api.get(p('jobs'), {params: {kind: 'train', limit: 5}}).catch(() => []), api.get(p('runs')).catch(() => []),
  ]);
  const admin = roleAllows(role, 'admin');
  const live = h('section', {class: 'card train-live', hidden: true});
  const form = h('section', {class: 'card train-form'});
  const runList = h('section', {class: 'card'});
  root.replaceChildren(h('div', {class: 'train-page'},
    pageHeader('Train a model', 'Pick a dataset version and start: the defaults for this task make a good first '
      + 'model. The run trains in the background; you can leave this page and come back.'),
    live, form, runList));

  renderRuns(runList, project, runs);
  buildForm(form, project, versions, admin, (job) => follow(live, project, job, admin, () => refreshRuns()));
  async function refreshRuns() {
    renderRuns(runList, project, await api.get(p('runs')).catch(() => []));
  }
  const current = jobs.find((j) => !FINAL_STATES.has(j.state));
  if (current) follow(live, project, current, admin, refreshRuns);
}

function buildForm(form, project, versions, admin, onStarted) {
  const p = (rest) => projectPath(project, rest);
  const versionSelect = h('select', {id: 'train-version', name: 'version'});
  const options = h('div', {class: 'train-options'}, h('p', {class: 'muted'}, 'Loading the defaults (the first time takes a few seconds)…'));
  const modelSelect = h('select', {id: 'train-model', name: 'model'});
  // past a few dozen models (timm's classifiers: over a thousand) a list to scroll is no help: type to search
  const modelList = h('datalist', {id: 'train-model-list'});
  const modelSearch = h('input', {id: 'train-model-search', name: 'model', list: 'train-model-list', hidden: true,
    autocomplete: 'off', spellcheck: 'false'});
  let modelNames = new Set();
  const strategySelect = h('select', {id: 'train-strategy', name: 'strategy'});
  const strategyRow = [h('label', {for: 'train-strategy'}, 'Strategy'), strategySelect];
  const epochsInput = h('input', {id: 'train-epochs', name: 'epochs', type: 'number', min: 1, max: 1000, step: 1,
    placeholder: 'default'});
  const sizeInput = h('input', {id: 'train-image-size', name: 'image_size', type: 'number', min: 32, max: 4096,
    step: 32, placeholder: 'from the data'});
  const start = h('button', {class: 'primary', id: 'train-start', type: 'submit'}, 'Start training');
  const deploy = h('input', {type: 'checkbox', id: 'train-deploy', name: 'deploy', checked: true});
  const newVersion = h('button', {type: 'button', id: 'version-create'}, 'New version from current labels');

  function fillVersions(list, selected) {
    versionSelect.replaceChildren(...[...list].reverse().map((v) => h('option', {value: v.name},
      `${v.name} · ${v.summary?.images ?? '?'} images${splitText(v.summary?.splits)}`)));
    if (selected) versionSelect.value = selected;
  }
  fillVersions(versions);

  newVersion.addEventListener('click', async () => {
    newVersion.disabled = true;
    try {
      const v = await api.post(p('versions'), {});
      versions = await api.get(p('versions'));
      fillVersions(versions, v.name);
      toast(`Version ${v.name} created: ${v.summary?.images ?? '?'} images${splitText(v.summary?.splits)}`, 'success');
      (v.warnings || []).forEach((w) => toast(w, 'info', {timeout: 10000}));
      loadOptions();
    } catch (e) {
      toastError(e);
    } finally {
      newVersion.disabled = false;
    }
  });

  async function loadOptions() {
    const version = versionSelect.value;
    if (!version) {
      options.replaceChildren(h('p', {class: 'muted'}, 'No dataset version yet: create one from the current labels.'));
      start.disabled = true;
      return;
    }
    start.disabled = !admin;
    try {
      const o = await api.get(p('train/options'), {params: {version}});
      showOptions(options, o);
      const describe = (m) => [m.description, m.offline_pretrained ? '' : 'downloads its pretrained weights']
        .filter(Boolean).join('; ');
      modelNames = new Set(o.models.map((m) => m.name));
      const many = o.models.length > MAX_SELECT;
      modelSelect.hidden = many;
      modelSearch.hidden = !many;
      if (many) {
        modelSearch.placeholder = `auto: ${o.default_model} (or type to search ${o.models.length} models)`;
        modelList.replaceChildren(...o.models.map((m) => h('option', {value: m.name}, describe(m))));
      } else {
        fillChoices(modelSelect, o.models, `auto: ${o.default_model}`, o.default_model, describe);
      }
      fillChoices(strategySelect, o.strategies, `auto${o.auto?.strategy ? `: ${o.auto.strategy}` : ''}`, null);
      strategyRow.forEach((el) => { el.hidden = !o.strategies.length; });
      const epochs = o.auto?.epochs;
      epochsInput.placeholder = epochs ? `default: ${epochs}` : 'default';
    } catch (e) {
      options.replaceChildren(h('p', {class: 'error'}, e.detail || String(e)));
    }
  }
  versionSelect.addEventListener('change', loadOptions);

  const body = h('form', {class: 'form-rows', id: 'train-form'},
    h('label', {for: 'train-version'}, 'Dataset version'),
    h('div', {class: 'row'}, versionSelect, admin ? newVersion : null),
    h('div', {class: 'span2'}, options),
    h('details', {class: 'span2 advanced'},
      h('summary', {}, 'Choose the model, strategy, epochs or image size yourself'),
      h('div', {class: 'form-rows'},
        h('label', {for: 'train-model'}, 'Model'), h('div', {}, modelSelect, modelSearch, modelList),
        ...strategyRow,
        h('label', {for: 'train-epochs'}, 'Epochs'), epochsInput,
        h('label', {for: 'train-image-size'}, 'Image size (px)'), sizeInput)),
    admin ? h('label', {class: 'check wrap span2'}, deploy, ' Deploy it when trained: evaluate it on the test ',
      'split, export its package and put it on the model server, so its predictions show in the editor') : null,
    h('div', {class: 'span2 actions'}, admin ? start
      : h('p', {class: 'muted'}, 'Only an admin of this project can start a training run.')));
  body.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!admin) return;
    const request = {version: versionSelect.value};
    const model = modelSearch.hidden ? modelSelect.value : modelSearch.value.trim();
    if (model && !modelNames.has(model)) {
      toast(`No model is named ${model}: pick one from the list, or leave it empty for the default`, 'error');
      return;
    }
    if (model) request.model = model;
    if (strategySelect.value) request.strategy = strategySelect.value;
    if (epochsInput.value) request.epochs = Number(epochsInput.value);
    if (sizeInput.value) request.image_size = Number(sizeInput.value);
    if (deploy.checked) request.deploy = true;
    start.disabled = true;
    try {
      const job = await api.post(p('runs'), request);
      toast('Training started', 'success');
      onStarted(job);
    } catch (e) {
      toastError(e);
    } finally {
      start.disabled = false;
    }
  });
  form.replaceChildren(h('h2', {}, 'New training run'), body);
  loadOptions();
}

function splitText(splits) {
  if (!splits) return '';
  const parts = Object.entries(splits).map(([s, n]) => `${n} ${s}`);
  return parts.length ? ` (${parts.join(', ')})` : '';
}

const MAX_SELECT = 40;

function fillChoices(select, list, autoText, recommended, describe = () => '') {
  select.replaceChildren(h('option', {value: ''}, autoText), ...list.map((c) => {
    const name = typeof c === 'string' ? c : c.name;
    const about = describe(c);
    const mark = name === recommended ? ' (the default)' : '';
    const short = about.length > 70 ? `${about.slice(0, 68)}…` : about;
    return h('option', {value: name, title: about}, `${name}${mark}${short ? ` — ${short}` : ''}`);
  }));
}

function showOptions(el, o) {
  const auto = o.auto || {};
  const model = o.models.find((m) => m.name === o.default_model);
  const facts = [['model', `${o.default_model}${model?.description ? ` (${model.description})` : ''}`]];
  if (auto.strategy) facts.push(['strategy', auto.strategy]);
  if (auto.epochs) facts.push(['epochs', String(auto.epochs)]);
  if (auto.image_size) facts.push(['input size', `${auto.image_size} px (shorter side)`]);
  if (o.training_images !== null && o.training_images !== undefined) facts.push(['training images', String(o.training_images)]);
  el.replaceChildren(
    h('div', {class: 'auto-choice'},
      h('h3', {}, `What "auto" trains for ${o.task}`),
      h('dl', {class: 'facts'}, ...facts.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
      auto.reason ? h('div', {class: 'reason'}, h('strong', {}, 'Why'),
        h('ul', {}, ...auto.reason.split('; ').map((r) => h('li', {}, r)))) : null));
}

/** Follow training job `job` in `panel`; `onEnd()` when its run appears and when the job ends (to refresh lists). */
function follow(panel, project, job, admin, onEnd) {
  dispose();
  const p = (rest) => projectPath(project, rest);
  const title = h('h2', {}, 'Training');
  const progress = jobProgress();
  const epochLine = h('p', {class: 'epoch-line muted'});
  const charts = h('div', {class: 'charts'});
  const after = h('div', {class: 'train-after'});
  const cancel = h('button', {class: 'danger', id: 'train-cancel', type: 'button'}, 'Cancel training');
  cancel.addEventListener('click', async () => {
    if (!(await confirmDialog('The run stops now. Its last checkpoint is kept: you can resume it later from there.',
      {title: 'Stop this training run?', confirm: 'Stop training', cancel: 'Keep training', danger: true}))) return;
    try {
      await api.post(p(`jobs/${job.id}/cancel`), {});
      toast('Cancelling…');
    } catch (e) {
      toastError(e);
    }
  });
  panel.hidden = false;
  panel.replaceChildren(h('div', {class: 'live-head'}, title, admin ? cancel : null), progress.el, epochLine, charts,
    after);
  const chart = historyCharts(charts);
  let runId = null;
  let records = [];
  async function update(j) {
    progress.set(j);
    if (!runId && runOf(j)) onEnd?.();  // the run now exists: list it
    runId = runOf(j) || runId;
    if (runId) {
      title.replaceChildren('Training run ', h('a', {href: projectHref(project, `runs/${encodeURIComponent(runId)}`)}, runId));
      // the history changes once per epoch: fetched when the job's progress names a newer epoch (and at the end)
      const logged = j.progress?.record?.epoch;
      if (FINAL_STATES.has(j.state) || logged === undefined || logged > records.length) {
        try {
          records = historyRecords(await api.get(p(`runs/${encodeURIComponent(runId)}/history`)));
        } catch {
          // not written yet
        }
      }
      if (records.length) chart.update(records, {epochs: j.progress?.epochs || j.params?.epochs || 0});
    }
    const epochs = j.progress?.epochs;
    const last = records[records.length - 1];
    epochLine.textContent = last
      ? `epoch ${last.epoch}${epochs ? ` of ${epochs}` : ''} · training loss ${fmt(last.train_loss)}`
        + (headlineText(last, 2) ? ` · ${headlineText(last, 2)}` : '')
      : (records.length === 0 && j.state === 'running' ? 'the first epoch is running: curves appear when it ends' : '');
    if (FINAL_STATES.has(j.state)) {
      cancel.remove();
      finished(j);
    }
  }
  function finished(j) {
    if (j.state === 'done') {
      toast('Training finished', 'success');
      const chain = h('div', {class: 'chain', id: 'train-chain'});
      after.replaceChildren(h('div', {class: 'done-box'},
        h('p', {}, h('strong', {}, 'The run is done. '), headlineText(j.result || {}, 3)),
        runId ? h('a', {class: runId && j.result?.follow_up_job ? '' : 'primary',
          href: projectHref(project, `runs/${encodeURIComponent(runId)}`)}, 'Open the run: metrics, report, export')
          : null, chain));
      if (j.result?.follow_up_job) followChain(chain, j.result.follow_up_job);
    } else {
      const resume = h('button', {type: 'button', id: 'train-resume'}, 'Resume from the last checkpoint');
      resume.addEventListener('click', async () => {
        resume.disabled = true;
        try {
          follow(panel, project, await api.post(p(`jobs/${j.id}/resume`), {}), admin, onEnd);
        } catch (e) {
          toastError(e);
          resume.disabled = false;
        }
      });
      const why = {failed: `Training failed: ${j.error || 'see the log on the jobs page'}`,
        cancelled: 'Training was stopped.', interrupted: 'Training was interrupted: the server restarted.'}[j.state];
      after.replaceChildren(h('div', {class: 'row'}, h('p', {class: j.state === 'failed' ? 'error' : 'muted'}, why),
        admin && runId ? resume : null));
    }
    onEnd?.();
  }
  /** The jobs a run trained with "deploy" queues (evaluate, then package, which deploys), one line each. */
  function followChain(el, jobId) {
    const label = h('p', {class: 'chain-name'}, 'Next step…');
    const bar = jobProgress();
    const line = h('div', {class: 'chain-step'}, label, bar.el);
    el.append(line);
    const w = watchJob(project, jobId, async (k) => {
      label.textContent = CHAIN_RUNNING[k.kind] || k.kind;
      bar.set(k);
      if (!FINAL_STATES.has(k.state)) return;
      const name = CHAIN_STEP[k.kind] || k.kind;
      if (k.state !== 'done') {
        line.replaceChildren(h('p', {class: 'error'}, `${name}: ${k.state}${k.error ? ` (${k.error})` : ''}`));
      } else if (k.result?.follow_up_job) {
        line.replaceChildren(h('p', {class: 'muted'}, `${name}: done`));
        followChain(el, k.result.follow_up_job);
      } else if (k.kind === 'package') {
        line.replaceChildren(h('p', {}, h('strong', {}, 'Deployed. '),
          'The model server predicts with it, and the editor shows its predictions (press O). '),
          h('a', {class: 'primary', id: 'train-try', href: projectHref(project, 'models')}, 'Try it on an image'));
      }
    });
    cleanups.push(() => w.stop());
  }
  const watch = watchJob(project, job.id, update);
  cleanups.push(() => watch.stop(), () => chart.destroy());
}

const CHAIN_RUNNING = {evaluate: 'Evaluating it on the test split', package: 'Exporting its package and deploying it'};
const CHAIN_STEP = {evaluate: 'Evaluated on the test split', package: 'Package exported'};

const STATE_BADGE = {done: 'ok', running: 'info', stopped: 'warn', failed: 'bad'};

function renderRuns(el, project, runs) {
  if (!runs.length) {
    el.replaceChildren(h('h2', {}, 'Runs'), h('p', {class: 'muted'}, 'No training run yet.'));
    return;
  }
  const href = (id) => projectHref(project, `runs/${encodeURIComponent(id)}`);
  el.replaceChildren(h('h2', {}, 'Runs'), h('table', {class: 'table runs', id: 'runs'},
    h('thead', {}, h('tr', {}, ...['run', 'model', 'version', 'epochs', 'state', 'main metrics', 'created']
      .map((t) => h('th', {}, t)))),
    h('tbody', {}, ...newestFirst(runs).map((r) => h('tr', {},
      h('td', {}, h('a', {href: href(r.id)}, r.id)),
      h('td', {}, r.model),
      h('td', {}, r.version || '–'),
      h('td', {class: 'num'}, r.epochs),
      h('td', {}, h('span', {class: `badge ${STATE_BADGE[r.state] || ''}`}, r.state)),
      h('td', {}, headlineText(r.metrics, 2) || '–'),
      h('td', {}, fmtDate(r.created_at)))))));
}
