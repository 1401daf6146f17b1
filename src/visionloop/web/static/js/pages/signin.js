// Sign in with a user name and password; then on to the page that asked for it (or the projects).
import { ApiError, api, takeNextPage, token, session } from '../api.js';
import { h, replaceChildren } from '../ui.js';

function message(error) {
  if (!(error instanceof ApiError)) return `Signing in failed: ${error.message || error}`;
  if (error.status === 401) return 'Wrong user name or password. Check both and try again (passwords are case-sensitive).';
  if (error.status === 429) {
    const found = /(\d+)\s*s\b/.exec(error.detail || '');
    const seconds = found ? Number(found[1]) : null;
    const wait = seconds === null ? 'a few minutes' : seconds < 90 ? `${seconds} seconds`
      : `about ${Math.ceil(seconds / 60)} minutes`;
    return `Too many failed sign-ins from this computer. Wait ${wait} and try again, or ask an admin to reset your password.`;
  }
  if (error.status === 0) return 'The server cannot be reached. Check that visionloop is running, then try again.';
  return `Signing in failed: ${error.detail}`;
}

export async function render(root) {
  if (token.get()) {
    // already signed in (a bookmark of #/signin): check the token still holds
    try {
      await session.get();
      location.hash = takeNextPage();
      return;
    } catch {
      token.clear();
    }
  }
  const user = h('input', { id: 'signin-user', name: 'username', autocomplete: 'username', required: true,
    autocapitalize: 'none', spellcheck: 'false' });
  const password = h('input', { id: 'signin-password', name: 'password', type: 'password',
    autocomplete: 'current-password', required: true });
  const error = h('div', { class: 'error-box form-message', role: 'alert', hidden: true });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h('form', { novalidate: true, onsubmit: onSubmit },
    error,
    h('div', { class: 'field' }, h('label', { for: 'signin-user' }, 'User name'), user),
    h('div', { class: 'field' }, h('label', { for: 'signin-password' }, 'Password'), password),
    submit);

  async function onSubmit(event) {
    event.preventDefault();
    error.hidden = true;
    if (!user.value.trim() || !password.value) {
      error.textContent = 'Enter your user name and your password.';
      error.hidden = false;
      (user.value.trim() ? password : user).focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = 'Signing in…';
    try {
      await api.signIn(user.value.trim(), password.value);
      location.hash = takeNextPage();
    } catch (e) {
      error.textContent = message(e);
      error.hidden = false;
      password.value = '';
      password.focus();
    } finally {
      submit.disabled = false;
      submit.textContent = 'Sign in';
    }
  }

  replaceChildren(root, h('div', { class: 'signin-wrap' }, h('div', { class: 'signin-card' },
    h('div', { class: 'brand' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }), 'visionloop'),
    h('p', { class: 'lead' }, 'Sign in to see your projects.'),
    form,
    h('p', { class: 'signin-foot' },
      'No account or lost your password? Ask your admin. The first admin\u2019s password is printed when the server first starts.'))));
  user.focus();
}
