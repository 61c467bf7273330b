// Meshes: the list, and one mesh with its mTLS: the backends and the enabled
// one; on a zone the CA state the zone runs (GET /meshes/{m}/_mtls); on global
// the names of the mesh's CA Secrets (never their data).

import * as api from '../api.js';
import { h, fill, kv, table, td, link, json, pager, note, time } from '../ui.js';

const SIZE = 50;

export async function list(section, ctx) {
  const offset = Number(ctx.query.offset) || 0;
  const r = await api.get(`/meshes${api.query({ size: SIZE, offset })}`);
  fill(
    section,
    h('h1', {}, 'Meshes'),
    table(
      ['mesh', 'mTLS backend', 'backends', 'created', 'views'],
      r.items.map((m) => [
        td({ 'data-field': 'name' }, link(['meshes', m.name], m.name)),
        m.mtls?.enabledBackend || h('span', { class: 'muted' }, 'off'),
        (m.mtls?.backends || []).map((b) => `${b.name} (${b.type})`).join(', ') || '—',
        time(m.creationTime),
        h('span', {}, link(['meshes', m.name, 'dataplanes'], 'dataplanes'), ' · ', link(['meshes', m.name, 'services'], 'services'), ' · ', link(['meshes', m.name, 'policies'], 'policies')),
      ]),
    ),
    pager({ offset, size: SIZE, total: r.total, go: (o) => ctx.go(`#/meshes?offset=${o}`) }),
  );
}

/** The Secrets a mesh's CAs are kept in: builtin `<mesh>.ca-builtin-*`, and the
 *  ones a provided backend names. Names only. */
async function caSecretNames(mesh, spec) {
  const builtin = await api.get(`/meshes/${api.seg(mesh)}/secrets${api.query({ size: 100, name: '.ca-builtin-' })}`);
  const names = new Set(builtin.items.map((s) => s.name));
  for (const b of spec.mtls?.backends || []) {
    for (const part of ['cert', 'key']) {
      const ref = b.conf?.[part]?.secret;
      if (ref) names.add(ref);
    }
  }
  return [...names].sort();
}

async function zoneCa(mesh) {
  const t = await api.optional(`/meshes/${api.seg(mesh)}/_mtls`);
  if (!t) return note('This zone runs no mTLS for this mesh (no enabled backend), or does not serve GET /meshes/{mesh}/_mtls.');
  return [
    kv([
      ['Enabled backend', t.enabledBackend, 'enabledBackend'],
      ['Mode', t.mode],
      ['Issuing backend', t.issuingBackend || '—', 'issuingBackend'],
      ['CA rotation', t.rotating ? h('span', { class: 'badge warn' }, 'rotating') : 'no', 'rotating'],
      ['Trusted backends', (t.trusted || []).join(', ')],
      ['Trust domains', (t.trustDomains || []).join(', ') || '—'],
    ]),
    h('h3', {}, 'Per proxy'),
    table(
      ['proxy', 'issued by', 'holds (ACKed)', 'trusts'],
      (t.proxies || []).map((p) => [p.name, p.issuedBy || '—', p.holds || '—', (p.trusts || []).join(', ')]),
    ),
  ];
}

export async function one(section, ctx) {
  const mesh = ctx.params.mesh;
  const m = await api.get(`/meshes/${api.seg(mesh)}`);
  const backends = m.mtls?.backends || [];
  const isGlobal = ctx.info.mode === 'global';
  const ca = h('div', { id: 'ca' }, h('p', { class: 'muted' }, 'Loading…'));
  fill(
    section,
    h('h1', {}, 'Mesh ', h('span', { 'data-field': 'title' }, m.name)),
    h('p', {}, link(['meshes', mesh, 'dataplanes'], 'Dataplanes'), ' · ', link(['meshes', mesh, 'services'], 'Services'), ' · ', link(['meshes', mesh, 'policies'], 'Policies')),
    kv([
      ['Name', m.name, 'name'],
      ['mTLS', m.mtls?.enabledBackend ? `on, backend ${m.mtls.enabledBackend}` : 'off', 'mtls'],
      ['Created', time(m.creationTime)],
      ['Modified', time(m.modificationTime)],
    ]),
    h('h2', {}, 'mTLS backends'),
    table(
      ['backend', 'type', 'enabled', 'mode', 'conf'],
      backends.map((b) => [b.name, b.type, b.name === m.mtls?.enabledBackend ? 'yes' : '', b.mode || '', b.conf ? json(b.conf) : '']),
    ),
    h('h2', {}, isGlobal ? 'CA Secrets' : 'CA state in this zone'),
    ca,
    h('details', {}, h('summary', {}, 'Mesh as stored'), json(m, { id: 'mesh-spec' })),
  );
  if (isGlobal) {
    const names = await caSecretNames(mesh, m);
    fill(
      ca,
      names.length ? h('ul', { id: 'ca-secrets' }, names.map((n) => h('li', {}, h('code', {}, n)))) : note('No CA Secrets: the mesh has no builtin or provided mTLS backend.'),
      h('p', { class: 'muted' }, 'Names only: a Secret\'s data is never shown here.'),
    );
  } else {
    fill(ca, await zoneCa(mesh));
  }
}
