// Meshes: the list with each mesh's dataplanes and policies (GET
// /mesh-insights, Kuma's MeshInsight), and one mesh with its mTLS: the
// backends and the enabled one, which backend issued how many proxies'
// certificates (GET /mesh-insights/{m}, `mTLS.issuedBackends`), and on a zone
// the CA state the zone runs (GET /meshes/{m}/_mtls).

import * as api from '../api.js';
import { h, fill, kv, table, td, link, json, pager, note, time } from '../ui.js';

const SIZE = 50;

export async function list(section, ctx) {
  const offset = Number(ctx.query.offset) || 0;
  const q = api.query({ size: SIZE, offset });
  const [r, insights] = await Promise.all([api.get(`/meshes${q}`), api.get(`/mesh-insights${q}`)]);
  const byName = Object.fromEntries(insights.items.map((i) => [i.name, i]));
  fill(
    section,
    h('h1', {}, 'Meshes'),
    table(
      ['mesh', 'mTLS backend', 'backends', 'dataplanes', 'policies', 'created', 'views'],
      r.items.map((m) => [
        td({ 'data-field': 'name' }, link(['meshes', m.name], m.name)),
        m.mtls?.enabledBackend || h('span', { class: 'muted' }, 'off'),
        (m.mtls?.backends || []).map((b) => `${b.name} (${b.type})`).join(', ') || '—',
        dataplaneCount(byName[m.name]),
        policyCount(byName[m.name]),
        time(m.creationTime),
        h('span', {}, link(['meshes', m.name, 'dataplanes'], 'dataplanes'), ' · ', link(['meshes', m.name, 'services'], 'services'), ' · ', link(['meshes', m.name, 'policies'], 'policies')),
      ]),
    ),
    pager({ offset, size: SIZE, total: r.total, go: (o) => ctx.go(`#/meshes?offset=${o}`) }),
  );
}

const dataplaneCount = (i) => (i ? `${i.dataplanes.total} (${i.dataplanes.online} online)` : '—');
const policyCount = (i) => (i ? Object.values(i.policies || {}).reduce((a, p) => a + p.total, 0) : '—');

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
  const [m, insight] = await Promise.all([api.get(`/meshes/${api.seg(mesh)}`), api.get(`/mesh-insights/${api.seg(mesh)}`)]);
  const backends = m.mtls?.backends || [];
  const issued = Object.entries(insight.mTLS?.issuedBackends || {});
  const ca = h('div', { id: 'ca' }, h('p', { class: 'muted' }, 'Loading…'));
  const isZone = ctx.info.mode === 'zone';
  fill(
    section,
    h('h1', {}, 'Mesh ', h('span', { 'data-field': 'title' }, m.name)),
    h('p', {}, link(['meshes', mesh, 'dataplanes'], 'Dataplanes'), ' · ', link(['meshes', mesh, 'services'], 'Services'), ' · ', link(['meshes', mesh, 'policies'], 'Policies')),
    kv([
      ['Name', m.name, 'name'],
      ['mTLS', m.mtls?.enabledBackend ? `on, backend ${m.mtls.enabledBackend}` : 'off', 'mtls'],
      ['Dataplanes', dataplaneCount(insight), 'dataplanes'],
      ['Services', `${insight.services?.total ?? 0} (${insight.services?.internal ?? 0} internal, ${insight.services?.external ?? 0} external)`],
      ['Policies', policyCount(insight), 'policies'],
      ['Created', time(m.creationTime)],
      ['Modified', time(m.modificationTime)],
    ]),
    h('h2', {}, 'mTLS backends'),
    table(
      ['backend', 'type', 'enabled', 'mode', 'conf'],
      backends.map((b) => [b.name, b.type, b.name === m.mtls?.enabledBackend ? 'yes' : '', b.mode || '', b.conf ? json(b.conf) : '']),
    ),
    h('h2', {}, 'Certificates issued, per backend'),
    issued.length
      ? table(
          ['backend', 'proxies', 'online', 'offline'],
          issued.map(([b, s]) => [td({ 'data-field': 'issued-backend' }, b), s.total, s.online, s.offline]),
          (i) => ({ 'data-backend': issued[i][0] }),
        )
      : note('No proxy holds a certificate of this mesh (mTLS off, or no proxy connected yet).'),
    isZone ? [h('h2', {}, 'CA state in this zone'), ca] : null,
    h('details', {}, h('summary', {}, 'Mesh as stored'), json(m, { id: 'mesh-spec' })),
  );
  if (isZone) fill(ca, await zoneCa(mesh));
}
