// Policies: the policy types (GET /_resources, the ones with a `policy`
// section) with their count in the mesh (GET /mesh-insights/{m}), a page of one
// type, and one policy (JSON or YAML) with the dataplanes it affects, a page
// at a time (GET /meshes/{m}/{type}/{name}/_resources/dataplanes).

import * as api from '../api.js';
import { h, fill, kv, table, td, link, json, pager, note, time, displayName, errorBox } from '../ui.js';

const SIZE = 50;
const AFFECTED_SIZE = 25;

async function policyTypes() {
  const r = await api.get('/_resources');
  return (r.resources || []).filter((t) => t.policy);
}

export async function types(section, ctx) {
  const mesh = ctx.params.mesh;
  const [ts, insight] = await Promise.all([policyTypes(), api.get(`/mesh-insights/${api.seg(mesh)}`)]);
  const counts = ts.map((t) => insight.policies?.[t.name]?.total ?? 0);
  fill(
    section,
    h('h1', {}, 'Policies in mesh ', mesh),
    table(
      ['type', 'policies', 'sections'],
      ts.map((t, i) => [
        td({ 'data-field': 'type' }, link(['meshes', mesh, 'policies', t.path], t.name)),
        counts[i],
        ['to', 'from', 'rules'].filter((s) => t.policy[`has${s[0].toUpperCase()}${s.slice(1)}TargetRef`]).join(', '),
      ]),
      (i) => ({ 'data-type': ts[i].path }),
    ),
  );
}

function targetRef(tr) {
  if (!tr) return '—';
  return [tr.kind, tr.name, tr.labels ? JSON.stringify(tr.labels) : null, tr.tags ? JSON.stringify(tr.tags) : null].filter(Boolean).join(' ');
}

export async function list(section, ctx) {
  const { mesh, type } = ctx.params;
  const offset = Number(ctx.query.offset) || 0;
  const name = ctx.query.name || '';
  const ts = await policyTypes();
  const t = ts.find((x) => x.path === type);
  const r = await api.get(`/meshes/${api.seg(mesh)}/${api.seg(type)}${api.query({ size: SIZE, offset, name })}`);
  const input = h('input', { id: 'filter-name', type: 'search', value: name, placeholder: 'name contains' });
  const form = h('form', { class: 'filters' }, h('label', {}, 'Name ', input), h('button', { type: 'submit' }, 'Filter'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    ctx.go(`#/meshes/${encodeURIComponent(mesh)}/policies/${encodeURIComponent(type)}${api.query({ name: input.value.trim() })}`);
  });
  fill(
    section,
    h('h1', {}, t ? t.pluralDisplayName : type, ' in mesh ', mesh),
    t?.readOnly ? note('Read-only on this control plane.') : null,
    form,
    table(
      ['name', 'origin', 'zone', 'top-level targetRef', 'modified'],
      r.items.map((p) => [
        td({ 'data-field': 'name' }, link(['meshes', mesh, 'policies', type, p.name], displayName(p))),
        p.labels?.['kuma.io/origin'] || '—',
        p.labels?.['kuma.io/zone'] || '—',
        targetRef(p.spec?.targetRef),
        time(p.modificationTime),
      ]),
      (i) => ({ 'data-policy': r.items[i].name }),
    ),
    pager({ offset, size: SIZE, total: r.total, go: (o) => ctx.go(`#/meshes/${encodeURIComponent(mesh)}/policies/${encodeURIComponent(type)}${api.query({ offset: o, name })}`) }),
  );
}

/** The dataplanes a policy affects, a page at a time. */
async function affected(box, mesh, type, name, offset) {
  const path = `/meshes/${api.seg(mesh)}/${api.seg(type)}/${api.seg(name)}/_resources/dataplanes`;
  let r;
  try {
    r = await api.get(`${path}${api.query({ size: AFFECTED_SIZE, offset })}`);
  } catch (e) {
    fill(box, errorBox(e));
    box.dataset.state = 'error';
    return;
  }
  const items = r.items || [];
  fill(
    box,
    h('p', { class: 'muted', 'data-field': 'affected-total' }, `${r.total} dataplanes.`),
    table(
      ['dataplane', 'mesh', 'zone'],
      items.map((d) => [
        td({ 'data-field': 'affected-name' }, link(['meshes', d.mesh || mesh, 'dataplanes', d.name], displayName(d))),
        d.mesh || mesh,
        d.labels?.['kuma.io/zone'] || '—',
      ]),
    ),
    r.total > AFFECTED_SIZE ? pager({ offset, size: AFFECTED_SIZE, total: r.total, go: (o) => affected(box, mesh, type, name, o) }) : null,
  );
  box.dataset.state = 'listed';
}

export async function one(section, ctx) {
  const { mesh, type, name } = ctx.params;
  const path = `/meshes/${api.seg(mesh)}/${api.seg(type)}/${api.seg(name)}`;
  const p = await api.get(path);
  const code = h('pre', { class: 'code', id: 'policy-spec' }, JSON.stringify(p.spec ?? p, null, 2));
  let yaml = null;
  const toggle = h('button', { type: 'button', id: 'as-yaml' }, 'Show as YAML');
  toggle.addEventListener('click', async () => {
    if (toggle.dataset.showing === 'yaml') {
      fill(code, JSON.stringify(p.spec ?? p, null, 2));
      toggle.dataset.showing = 'json';
      fill(toggle, 'Show as YAML');
      return;
    }
    try {
      yaml = yaml ?? (await api.get(path, { accept: 'application/yaml' }));
      fill(code, yaml);
      toggle.dataset.showing = 'yaml';
      fill(toggle, 'Show the spec as JSON');
    } catch (e) {
      code.after(errorBox(e));
    }
  });
  const box = h('div', { id: 'affected', 'data-state': 'loading' }, h('p', { class: 'muted' }, 'Loading…'));
  fill(
    section,
    h('h1', {}, p.type || type, ' ', h('span', { 'data-field': 'title' }, displayName(p))),
    kv([
      ['Name', displayName(p), 'name'],
      p.labels?.['kuma.io/display-name'] ? ['Name on global', p.name] : null,
      ['Type', p.type, 'type'],
      ['Mesh', p.mesh, 'mesh'],
      ['Labels', Object.entries(p.labels || {}).map(([k, v]) => `${k}=${v}`).join(' ') || '—'],
      ['Created', time(p.creationTime)],
      ['Modified', time(p.modificationTime)],
    ]),
    h('h2', {}, 'Spec ', toggle),
    code,
    h('h2', {}, 'Dataplanes it affects'),
    box,
  );
  await affected(box, mesh, type, name, 0);
}
