// DOM helpers. Data from the API only ever becomes text nodes or attribute
// values (never HTML), so a resource name cannot inject markup.

import { ApiError } from './api.js';

/** `h('a', {href: '#/x', class: 'y'}, 'text', child, ...)`. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A hash link: `link(['meshes', m, 'dataplanes', n], text)` (segments encoded). */
export function link(segments, text, params) {
  return h('a', { href: href(segments, params) }, text);
}

export function href(segments, params) {
  const path = '#/' + segments.map(encodeURIComponent).join('/');
  const q = params
    ? Object.entries(params)
        .filter(([, v]) => v !== undefined && v !== null && v !== '')
        .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
        .join('&')
    : '';
  return q ? `${path}?${q}` : path;
}

/** A table: `columns` are header texts, `rows` arrays of cells (text or nodes);
 *  `rowAttrs(i)` gives each row's attributes. */
export function table(columns, rows, rowAttrs = () => ({})) {
  return h(
    'table',
    {},
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', {}, c)))),
    h(
      'tbody',
      {},
      rows.length
        ? rows.map((r, i) => h('tr', rowAttrs(i), r.map((c) => (c instanceof Node && c.tagName === 'TD' ? c : h('td', {}, c)))))
        : h('tr', {}, h('td', { colspan: columns.length, class: 'muted' }, 'none')),
    ),
  );
}

/** A cell with attributes (`td({'data-field': 'status'}, 'online')`). */
export const td = (attrs, ...c) => h('td', attrs, ...c);

/** A definition list of [label, value, field] (field → data-field, for tests). */
export function kv(pairs) {
  return h(
    'dl',
    { class: 'kv' },
    pairs
      .filter((p) => p)
      .map(([k, v, field]) => [h('dt', {}, k), h('dd', { 'data-field': field }, v ?? '—')]),
  );
}

/** Online / offline badge. */
export function status(online, extra) {
  return h('span', { class: `badge ${online ? 'ok' : 'bad'}` }, online ? 'online' : 'offline', extra ? ` ${extra}` : '');
}

/** Pretty JSON in a <pre>. */
export function json(value, attrs = {}) {
  return h('pre', { class: 'code', ...attrs }, JSON.stringify(value, null, 2));
}

/** A collapsible section whose content is built (and fetched) when first opened. */
export function lazy(summary, build, attrs = {}) {
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const d = h('details', attrs, h('summary', {}, summary), body);
  let done = false;
  d.addEventListener('toggle', async () => {
    if (!d.open || done) return;
    done = true;
    try {
      fill(body, await build());
    } catch (e) {
      fill(body, errorBox(e));
    }
  });
  return d;
}

/** An API error with its `detail` and every `invalid_parameters` entry. */
export function errorBox(e) {
  if (e instanceof ApiError) {
    const b = e.body && typeof e.body === 'object' ? e.body : {};
    const params = Array.isArray(b.invalid_parameters) ? b.invalid_parameters : [];
    return h(
      'div',
      { class: 'error', role: 'alert' },
      h('strong', {}, `${e.status} ${b.title || ''}`.trim()),
      ' ',
      h('code', {}, e.path),
      h('p', { class: 'detail' }, b.detail || (typeof e.body === 'string' ? e.body : '')),
      params.length
        ? h('ul', { class: 'invalid' }, params.map((p) => h('li', {}, h('code', {}, p.field), ': ', p.reason)))
        : null,
    );
  }
  return h('div', { class: 'error', role: 'alert' }, String(e && e.message ? e.message : e));
}

/** A note (what this control plane does not serve, say). */
export const note = (...c) => h('p', { class: 'note' }, ...c);

/** Prev / next buttons over a server-side page. */
export function pager({ offset, size, total, go }) {
  const first = total === 0 ? 0 : offset + 1;
  const last = Math.min(offset + size, total);
  return h(
    'div',
    { class: 'pager' },
    h('button', { type: 'button', id: 'prev', disabled: offset <= 0, onclick: () => go(Math.max(0, offset - size)) }, '‹ Prev'),
    h('span', { class: 'range', 'data-field': 'range' }, `${first}–${last} of ${total}`),
    h('button', { type: 'button', id: 'next', disabled: offset + size >= total, onclick: () => go(offset + size) }, 'Next ›'),
  );
}

/** `2024-05-01T12:00:00Z` → local date and time; absent → em dash. */
export function time(t) {
  if (!t) return '—';
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? String(t) : d.toLocaleString();
}

/** The name a resource has where it lives (global stores zone resources hashed). */
export function displayName(r) {
  return (r.labels && r.labels['kuma.io/display-name']) || r.name;
}
