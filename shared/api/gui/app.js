// Weft's GUI: login, hash routing (`#/…`), the top bar. Each view is a module
// that fills a <section> with what it read from the REST API.

import * as api from './api.js';
import { h, fill, errorBox } from './ui.js';
import * as home from './views/home.js';
import * as zones from './views/zones.js';
import * as meshes from './views/meshes.js';
import * as services from './views/services.js';
import * as dataplanes from './views/dataplanes.js';
import * as policies from './views/policies.js';

const main = () => document.getElementById('main');
let info = null; // GET / (mode, zone, version)
let currentMesh = null;
let generation = 0;
let loginMessage = '';

// [pattern over the path segments, view, name for the nav]
const ROUTES = [
  [[], home.render, 'home'],
  [['zones'], zones.list, 'zones', { global: true }],
  [['zones', ':zone'], zones.one, 'zones', { global: true }],
  [['meshes'], meshes.list, 'meshes'],
  [['meshes', ':mesh'], meshes.one, 'meshes'],
  [['meshes', ':mesh', 'services'], services.render, 'services'],
  [['meshes', ':mesh', 'dataplanes'], dataplanes.list, 'dataplanes'],
  [['meshes', ':mesh', 'dataplanes', ':name'], dataplanes.one, 'dataplanes'],
  [['meshes', ':mesh', 'policies'], policies.types, 'policies'],
  [['meshes', ':mesh', 'policies', ':type'], policies.list, 'policies'],
  [['meshes', ':mesh', 'policies', ':type', ':name'], policies.one, 'policies'],
];

/** `#/a/b?x=1` → {segments: ['a','b'], query: {x: '1'}}. */
function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, q = ''] = raw.split('?');
  const segments = path.split('/').filter(Boolean).map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  });
  return { segments, query: Object.fromEntries(new URLSearchParams(q)) };
}

function match(segments) {
  for (const [pattern, view, nav, opts] of ROUTES) {
    if (pattern.length !== segments.length) continue;
    const params = {};
    if (pattern.every((p, i) => (p.startsWith(':') ? ((params[p.slice(1)] = segments[i]), true) : p === segments[i]))) {
      return { view, nav, params, opts: opts || {} };
    }
  }
  return null;
}

async function loadInfo() {
  const r = await api.open('/');
  if (r.status !== 200 || typeof r.body !== 'object') throw new Error(`GET / answered ${r.status}`);
  info = r.body;
  const label = info.mode === 'global' ? 'global' : `zone${info.zone ? ' ' + info.zone : ''}`;
  fill(document.getElementById('mode'), `${label} · ${info.version}`);
  document.title = `Weft ${label}`;
}

function showChrome(loggedIn) {
  document.getElementById('nav').hidden = !loggedIn;
  document.getElementById('logout').hidden = !loggedIn;
  document.getElementById('mesh-picker').hidden = !loggedIn;
  for (const a of document.querySelectorAll('[data-global-only]')) a.hidden = info?.mode !== 'global';
}

async function loadMeshes() {
  const select = document.getElementById('mesh-select');
  const list = await api.get('/meshes?size=100');
  const names = list.items.map((m) => m.name);
  if (!currentMesh || !names.includes(currentMesh)) currentMesh = names.includes('default') ? 'default' : names[0] || null;
  fill(select, names.map((n) => h('option', { value: n, selected: n === currentMesh }, n)));
}

function loginView() {
  showChrome(false);
  const input = h('input', { id: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true, size: 70 });
  const error = h('div', { id: 'login-error', role: 'alert' }, loginMessage ? h('p', { class: 'error' }, loginMessage) : null);
  loginMessage = '';
  const form = h(
    'form',
    { id: 'login', method: 'post', action: '#', class: 'card' },
    h('h1', {}, 'Log in to Weft'),
    h('p', {}, 'Paste the admin token of this control plane. The operator reads it from ', h('code', {}, '<data-dir>/admin.token'), ' on its host (', h('code', {}, 'cat weft-global-data/admin.token'), ' for a global with the default data dir, ', h('code', {}, 'weft-zone-data/admin.token'), ' for a zone).'),
    h('p', { class: 'muted' }, 'The token stays in this browser tab (sessionStorage) and is sent only in the Authorization header of the API calls; it never goes into a URL. Log out, or close the tab, to forget it.'),
    h('label', {}, 'Admin token ', input),
    h('button', { type: 'submit', id: 'login-submit' }, 'Log in'),
    error,
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const t = input.value.trim();
    if (!t) return;
    fill(error, h('p', { class: 'muted' }, 'Checking…'));
    try {
      if (await api.checkToken(t)) {
        api.token.set(t);
        input.value = '';
        await route();
      } else {
        fill(error, h('p', { class: 'error' }, 'This token was refused (401): check that it is the admin token of this control plane.'));
      }
    } catch (e) {
      fill(error, errorBox(e));
    }
  });
  fill(main(), h('section', { 'data-view': 'login', 'data-state': 'ready' }, form));
  input.focus();
}

async function route() {
  const gen = ++generation;
  if (!info) {
    try {
      await loadInfo();
    } catch (e) {
      fill(main(), errorBox(e));
      return;
    }
  }
  if (!api.token.get()) return loginView();
  showChrome(true);
  if (!currentMesh) {
    try {
      await loadMeshes();
    } catch (e) {
      if (e instanceof api.ApiError && e.status === 401) return;
      fill(main(), errorBox(e));
      return;
    }
  }
  let { segments, query } = parseHash();
  // Mesh-scoped shortcuts: #/services → #/meshes/<current>/services.
  if (segments.length === 1 && ['services', 'dataplanes', 'policies'].includes(segments[0])) {
    location.replace(`#/meshes/${encodeURIComponent(currentMesh || 'default')}/${segments[0]}`);
    return;
  }
  const m = match(segments);
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', m && a.dataset.nav === m.nav);
  const section = h('section', { 'data-view': m ? m.nav : 'not-found', 'data-state': 'loading' }, h('p', { class: 'muted' }, 'Loading…'));
  fill(main(), section);
  if (!m) {
    fill(section, h('h1', {}, 'Not found'), h('p', {}, 'No such view: ', h('code', {}, location.hash)));
    section.dataset.state = 'ready';
    return;
  }
  if (m.opts.global && info.mode !== 'global') {
    fill(section, h('h1', {}, 'Zones'), h('p', { class: 'note' }, 'Zones are shown by the global control plane; this is a zone.'));
    section.dataset.state = 'ready';
    return;
  }
  if (m.params.mesh && m.params.mesh !== currentMesh) {
    currentMesh = m.params.mesh;
    document.getElementById('mesh-select').value = currentMesh;
  }
  const ctx = {
    info,
    params: m.params,
    query,
    mesh: currentMesh,
    alive: () => gen === generation,
    go: (hash) => {
      location.hash = hash;
    },
    // Renders the current view again (after a write, say).
    reload: () => route(),
  };
  try {
    await m.view(section, ctx);
    if (ctx.alive()) section.dataset.state = 'ready';
  } catch (e) {
    if (!ctx.alive()) return;
    fill(section, errorBox(e));
    section.dataset.state = 'error';
  }
}

window.addEventListener('weft:unauthorized', () => {
  if (!api.token.get()) return;
  api.token.clear();
  currentMesh = null;
  loginMessage = 'The control plane refused the token (401): log in again.';
  route();
});

document.getElementById('logout').addEventListener('click', () => {
  api.token.clear();
  currentMesh = null;
  location.hash = '#/';
  route();
});

document.getElementById('mesh-select').addEventListener('change', (ev) => {
  currentMesh = ev.target.value;
  const { segments } = parseHash();
  // Stay on the same kind of view, in the new mesh.
  const kind = segments[0] === 'meshes' && segments.length >= 3 ? segments[2] : null;
  location.hash = kind ? `#/meshes/${encodeURIComponent(currentMesh)}/${kind}` : `#/meshes/${encodeURIComponent(currentMesh)}`;
});

window.addEventListener('hashchange', route);
route();
