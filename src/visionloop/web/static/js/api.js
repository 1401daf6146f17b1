// The only way in or out: JSON calls to /api/v1 with the bearer token, and the signed-in session.
//
//   api.get(path, {params}), api.post(path, body), api.put, api.patch, api.del, api.upload(path, formData, onProgress)
//   `path` is relative to /api/v1 ("projects/bccd/images"); a non-2xx answer throws ApiError {status, detail, body};
//   a server that cannot be reached throws ApiError with status 0. A 401 sends the page to #/signin (and back after).
//   session.get() -> {user, projects: [{name, role, task}]} (cached; session.refresh() reloads it).
//   The bearer lives in sessionStorage under "vl_token"; the server also sets the vl_session cookie at sign-in, which
//   <img> and <a> use for GET (thumbnails, tiles, reports, downloads).

export const API_BASE = '/api/v1';
const TOKEN_KEY = 'vl_token';
const NEXT_KEY = 'vl_next';

export class ApiError extends Error {
  constructor(status, detail, body = null) {
    super(detail);
    this.name = 'ApiError';
    this.status = status;
    this.detail = detail;
    this.body = body;
  }
  get offline() { return this.status === 0; }
}

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

/** A URL under /api/v1 with query parameters (null, undefined and '' are left out; arrays repeat the key). */
export function apiUrl(path, params) {
  const url = `${API_BASE}/${String(path).replace(/^\/+/, '')}`;
  if (!params) return url;
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === null || value === undefined || value === '') continue;
    for (const v of Array.isArray(value) ? value : [value]) query.append(key, String(v));
  }
  const text = query.toString();
  return text ? `${url}?${text}` : url;
}

/** A person-readable message from an error body: FastAPI's `detail` string or its list of field problems. */
export function detailOf(body, fallback) {
  if (!body) return fallback;
  if (typeof body.detail === 'string') return body.detail;
  if (Array.isArray(body.detail)) {
    return body.detail.map((e) => `${(e.loc || []).slice(1).join('.') || 'request'}: ${e.msg}`).join('; ');
  }
  return fallback;
}

function goToSignIn() {
  token.clear();
  session.clear();
  const here = location.hash || '#/';
  if (!here.startsWith('#/signin')) {
    sessionStorage.setItem(NEXT_KEY, here);
    location.hash = '#/signin';
  }
}

/** Where to go after signing in (the page a 401 interrupted), once. */
export function takeNextPage() {
  const next = sessionStorage.getItem(NEXT_KEY);
  sessionStorage.removeItem(NEXT_KEY);
  return next && !next.startsWith('#/signin') ? next : '#/';
}

function authHeaders(extra) {
  const headers = new Headers(extra || {});
  const t = token.get();
  if (t && !headers.has('Authorization')) headers.set('Authorization', `Bearer ${t}`);
  return headers;
}

async function readBody(response) {
  if (response.status === 204) return null;
  const type = response.headers.get('Content-Type') || '';
  if (type.includes('json')) return response.json();
  return response.text();
}

async function request(method, path, { params, body, headers, signal, redirectOn401 = true } = {}) {
  const init = { method, headers: authHeaders(headers), signal, credentials: 'same-origin' };
  if (body instanceof FormData || body instanceof URLSearchParams || body instanceof Blob) {
    init.body = body;
  } else if (body !== undefined) {
    init.headers.set('Content-Type', 'application/json');
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(apiUrl(path, params), init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'The server cannot be reached. Check that it is running; your work is kept and sent when it is back.');
  }
  const data = await readBody(response).catch(() => null);
  if (!response.ok) {
    if (response.status === 401 && redirectOn401) goToSignIn();
    throw new ApiError(response.status, detailOf(data, `${response.status} ${response.statusText}`), data);
  }
  return data;
}

function upload(path, formData, onProgress, { params } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', apiUrl(path, params));
    const t = token.get();
    if (t) xhr.setRequestHeader('Authorization', `Bearer ${t}`);
    xhr.responseType = 'json';
    if (onProgress) {
      xhr.upload.onprogress = (e) => onProgress(e.lengthComputable ? e.loaded / e.total : null, e.loaded, e.total);
    }
    xhr.onerror = () => reject(new ApiError(0, 'The server cannot be reached; the upload did not finish.'));
    xhr.onload = () => {
      const data = xhr.response;
      if (xhr.status >= 200 && xhr.status < 300) return resolve(data);
      if (xhr.status === 401) goToSignIn();
      reject(new ApiError(xhr.status, detailOf(data, `${xhr.status} ${xhr.statusText}`), data));
    };
    xhr.send(formData);
  });
}

export const api = {
  url: apiUrl,
  get: (path, opts = {}) => request('GET', path, opts),
  post: (path, body, opts = {}) => request('POST', path, { ...opts, body }),
  put: (path, body, opts = {}) => request('PUT', path, { ...opts, body }),
  patch: (path, body, opts = {}) => request('PATCH', path, { ...opts, body }),
  del: (path, opts = {}) => request('DELETE', path, opts),
  upload,

  /** Sign in with a user name and password: stores the bearer (the server sets the cookie). Throws ApiError. */
  async signIn(username, password) {
    const form = new URLSearchParams({ username, password });
    const answer = await request('POST', 'auth/token', { body: form, redirectOn401: false, headers: {} });
    token.set(answer.access_token);
    session.clear();
    return answer;
  },

  /** Sign out: revoke the token (and the cookie) on the server, forget it here. */
  async signOut() {
    try {
      if (token.get()) await request('DELETE', 'auth/token', { redirectOn401: false });
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
    } finally {
      token.clear();
      session.clear();
    }
  },
};

let cached = null;

async function loadSession() {
  try {
    return await api.get('session');
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 404) throw e;
  }
  // A server without GET /session: the projects list and the user's role in each.
  const projects = await api.get('projects');
  const roles = await Promise.all(projects.map((p) => api.get(`projects/${encodeURIComponent(p.name)}/me`)));
  return {
    user: roles[0] ? roles[0].name : '',
    projects: projects.map((p, i) => ({ name: p.name, task: p.task, role: roles[i].role })),
  };
}

export const session = {
  /** The signed-in user and their projects with role and task; null when not signed in. Cached. */
  async get() {
    if (!token.get()) return null;
    if (!cached) cached = loadSession().catch((e) => { cached = null; throw e; });
    return cached;
  },
  refresh() { cached = null; return this.get(); },
  clear() { cached = null; },
  /** The user's role in `project` ('' when none). */
  async role(project) {
    const s = await this.get();
    const p = s && s.projects.find((x) => x.name === project);
    return p ? p.role : '';
  },
};

const RANK = { viewer: 0, annotator: 1, reviewer: 2, admin: 3 };

/** True when `role` is `needed` or stronger (viewer < annotator < reviewer < admin). */
export function roleAllows(role, needed) {
  return role in RANK && RANK[role] >= RANK[needed];
}

/** `projects/<name>/<rest>` with the name escaped. */
export function projectPath(project, rest = '') {
  return `projects/${encodeURIComponent(project)}${rest ? `/${rest}` : ''}`;
}
