// Every data call of the GUI: a fetch to the REST API on this origin with the
// admin token in the Authorization header. The token lives in this tab's
// sessionStorage only and never goes into a URL.

const KEY = 'weft.adminToken';

export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (t) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

/** An answer other than 2xx, with the std-errors body when there is one. */
export class ApiError extends Error {
  constructor(status, body, path) {
    const detail = body && typeof body === 'object' ? body.detail : body;
    super(`${path}: ${status}${detail ? ' ' + detail : ''}`);
    this.status = status;
    this.body = body;
    this.path = path;
  }
}

function headers(t, accept) {
  const h = { Accept: accept };
  if (t) h.Authorization = `Bearer ${t}`;
  return h;
}

async function send(path, { accept = 'application/json', tok = token.get(), method = 'GET', body } = {}) {
  const h = headers(tok, accept);
  if (body !== undefined) h['Content-Type'] = 'application/json';
  return fetch(path, {
    method,
    headers: h,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
    credentials: 'omit',
    referrerPolicy: 'no-referrer',
  });
}

async function bodyOf(resp) {
  const text = await resp.text();
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** GET `path` as JSON; throws ApiError on any non-2xx (401 also logs out). */
export async function get(path, opts = {}) {
  const resp = await send(path, opts);
  if (resp.status === 401) {
    window.dispatchEvent(new CustomEvent('weft:unauthorized'));
  }
  if (!resp.ok) throw new ApiError(resp.status, await bodyOf(resp), path);
  return opts.accept && opts.accept !== 'application/json' ? resp.text() : resp.json();
}

/** PUT `body` (JSON) to `path`; the answer's JSON (warnings), or ApiError. */
export async function put(path, body) {
  const resp = await send(path, { method: 'PUT', body });
  if (resp.status === 401) window.dispatchEvent(new CustomEvent('weft:unauthorized'));
  if (!resp.ok) throw new ApiError(resp.status, await bodyOf(resp), path);
  return bodyOf(resp);
}

/** Like get, but a 404 (an endpoint this control plane does not serve, or no
 *  such resource) is `null`. */
export async function optional(path, opts = {}) {
  try {
    return await get(path, opts);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return null;
    throw e;
  }
}

/** An unauthenticated call whose non-2xx body still matters (`/ready`'s 503). */
export async function open(path) {
  const resp = await send(path, { tok: null });
  return { status: resp.status, body: await bodyOf(resp) };
}

/** Whether the control plane accepts `t` (an authenticated call with it). */
export async function checkToken(t) {
  const resp = await send('/meshes?size=1', { tok: t });
  if (resp.status === 401) return false;
  if (!resp.ok) throw new ApiError(resp.status, await bodyOf(resp), '/meshes?size=1');
  return true;
}

/** `?k=v&...` of the defined entries, encoded. */
export function query(params) {
  const parts = Object.entries(params)
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  return parts.length ? '?' + parts.join('&') : '';
}

/** A path segment, encoded. */
export const seg = encodeURIComponent;

/** Every item of a list, read page by page (`size` ≤ 100), with `progress(n, total)`
 *  after each page; stops after `max` items. */
export async function pages(path, { size = 100, max = 10000, progress, alive = () => true } = {}) {
  const items = [];
  let total = 0;
  for (let offset = 0; offset < max; offset += size) {
    const sep = path.includes('?') ? '&' : '?';
    const page = await get(`${path}${sep}size=${size}&offset=${offset}`);
    if (!alive()) return { items, total, truncated: false };
    items.push(...page.items);
    total = page.total;
    if (progress) progress(items.length, total);
    if (!page.next || items.length >= total || page.items.length === 0) break;
  }
  return { items, total, truncated: items.length < total };
}
