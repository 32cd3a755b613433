// The console's shell: views by URL hash, the theme, the token, the one
// event stream shared by every view, and the pipeline description they read.

import { api, setToken, stream, token } from './api.js';
import * as playground from './playground.js';
import * as windows from './windows.js';
import * as pipeline from './pipeline.js';

const VIEWS = { playground, windows, pipeline };

/** What every view shares. */
const ctx = {
  /** `records`, `dead_letter`, `stats`, `lagged`, `reloaded` and `theme` events. */
  bus: new EventTarget(),
  description: null,
  /** The pipeline's description (`GET /api/v1/pipeline`), fetched once per reload. */
  async pipeline(refresh = false) {
    if (refresh || !this.description) this.description = api('/pipeline');
    try {
      return await this.description;
    } catch (error) {
      this.description = null;
      throw error;
    }
  },
  /** Show an error that concerns the whole page (e.g. a missing token). */
  fail(error) {
    const box = document.getElementById('page-error');
    box.textContent = error.status === 401
      ? 'The admin API needs a token (admin.token): use the Token button.'
      : `Error: ${error.message}`;
    box.hidden = false;
  },
};

function show() {
  const name = location.hash.slice(1) in VIEWS ? location.hash.slice(1) : 'playground';
  for (const view of Object.keys(VIEWS)) {
    document.getElementById(`view-${view}`).hidden = view !== name;
    const link = document.querySelector(`nav a[data-view="${view}"]`);
    if (view === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  VIEWS[name].show?.();
}

function theme() {
  const button = document.getElementById('theme');
  const apply = (dark) => {
    document.documentElement.dataset.theme = dark ? 'dark' : 'light';
    button.setAttribute('aria-pressed', String(dark));
  };
  const saved = localStorage.getItem('weir.theme');
  apply(saved ? saved === 'dark' : matchMedia('(prefers-color-scheme: dark)').matches);
  button.addEventListener('click', () => {
    const dark = document.documentElement.dataset.theme !== 'dark';
    localStorage.setItem('weir.theme', dark ? 'dark' : 'light');
    apply(dark);
    ctx.bus.dispatchEvent(new CustomEvent('theme'));
  });
}

function tokenDialog() {
  const dialog = document.getElementById('token-dialog');
  const input = document.getElementById('token-input');
  document.getElementById('token-open').addEventListener('click', () => {
    input.value = token();
    dialog.showModal();
  });
  dialog.addEventListener('close', () => {
    if (dialog.returnValue === 'save') {
      setToken(input.value.trim());
      location.reload();
    }
  });
}

/** The stream carries the records of the tags the windows view charts. */
async function connect() {
  const status = document.getElementById('connection');
  let tags = [];
  try {
    tags = windows.tags(await ctx.pipeline());
  } catch (error) {
    ctx.fail(error);
  }
  stream(
    tags,
    (name, data) => ctx.bus.dispatchEvent(new CustomEvent(name, { detail: data })),
    (text) => {
      status.textContent = text;
      status.dataset.state = text;
    },
  );
}

theme();
tokenDialog();
for (const view of Object.values(VIEWS)) view.init(ctx);
window.addEventListener('hashchange', show);
show();
connect();
