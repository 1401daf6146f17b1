// Following a background job (GET projects/{p}/jobs/{id}) until it ends, and showing its progress.
import {api, projectPath} from './api.js';
import {h, progressBar} from './ui.js';

export const FINAL_STATES = new Set(['done', 'failed', 'cancelled', 'interrupted']);

/** Poll the job every `interval` ms; `onChange(job)` after each answer; stops by itself once the job has ended.
 * Returns {stop(), done: Promise<job>} (done resolves with the last job seen, also when stopped). */
export function watchJob(project, jobId, onChange, {interval = 2000} = {}) {
  let timer = null;
  let stopped = false;
  let last = null;
  let finish;
  const done = new Promise((resolve) => { finish = resolve; });
  async function tick() {
    if (stopped) return;
    try {
      last = await api.get(projectPath(project, `jobs/${jobId}`));
      if (stopped) return;
      await onChange(last);
      if (FINAL_STATES.has(last.state)) { stopped = true; finish(last); return; }
    } catch (err) {
      if (err?.status === 404) { stopped = true; finish(last); return; }
      // a network blip: keep polling
    }
    if (!stopped) timer = setTimeout(tick, interval);
  }
  tick();
  return {
    stop() { stopped = true; clearTimeout(timer); finish(last); },
    done,
  };
}

/** A progress bar and a line of text for a job, updated in place by `set(job)`. */
export function jobProgress() {
  const text = h('span', {class: 'job-text'}, 'waiting…');
  const el = h('div', {class: 'job-progress'}, progressBar(null), text);
  return {
    el,
    set(job) {
      const p = job.progress || {};
      const known = typeof p.fraction === 'number';
      el.dataset.state = job.state;
      let fraction = known ? p.fraction : null;
      if (job.state === 'queued') {
        text.textContent = 'queued: starts when the job before it ends';
      } else if (job.state === 'running') {
        text.textContent = `${known ? `${Math.round(p.fraction * 100)} % · ` : ''}${p.message || 'running'}`;
      } else {
        fraction = job.state === 'done' ? 1 : (fraction ?? 0);
        const what = {done: 'done', failed: 'failed', cancelled: 'cancelled',
          interrupted: 'interrupted (the server restarted)'}[job.state] || job.state;
        text.textContent = job.error ? `${what}: ${job.error}` : what;
      }
      el.firstChild.replaceWith(progressBar(fraction, 'job progress'));
    },
  };
}
