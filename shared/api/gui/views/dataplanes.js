// Dataplanes: Kuma's DataplaneOverview list, one request per page
// (GET /meshes/{m}/dataplanes/_overview with size ≤ 100, offset, the name
// filter; on global a zone filter), each row with its status and certificate
// expiry; and one dataplane from its `_overview`, with (on a zone) the
// policies the zone computes for it (`_policies`, `_rules`) and the Envoy
// config it generates (`_config`).

import * as api from '../api.js';
import { h, fill, kv, table, td, link, json, pager, note, status, time, lazy, displayName } from '../ui.js';
import { dataplane as D, lastSubscription, services, address } from '../status.js';

const SIZES = [10, 25, 50, 100];
const DEFAULT_SIZE = 25;

export async function list(section, ctx) {
  const mesh = ctx.params.mesh;
  const q = ctx.query;
  const size = SIZES.includes(Number(q.size)) ? Number(q.size) : DEFAULT_SIZE;
  const offset = Math.max(0, Number(q.offset) || 0);
  const filters = { name: q.name || '', zone: q.zone || '' };
  const r = await api.get(
    `/meshes/${api.seg(mesh)}/dataplanes/_overview${api.query({ size, offset, name: filters.name, 'filter[labels.kuma.io/zone]': filters.zone })}`,
  );
  const hash = (o, f = filters, s = size) => `#/meshes/${encodeURIComponent(mesh)}/dataplanes${api.query({ offset: o || undefined, size: s === DEFAULT_SIZE ? undefined : s, name: f.name, zone: f.zone })}`;
  const nameInput = h('input', { id: 'filter-name', type: 'search', value: filters.name, placeholder: 'name contains' });
  const zoneInput = h('input', { id: 'filter-zone', type: 'search', value: filters.zone, placeholder: 'zone' });
  const sizeSelect = h('select', { id: 'page-size' }, SIZES.map((s) => h('option', { value: s, selected: s === size }, `${s} per page`)));
  const form = h(
    'form',
    { class: 'filters', id: 'dp-filter' },
    h('label', {}, 'Name ', nameInput),
    ctx.info.mode === 'global' ? h('label', {}, 'Zone ', zoneInput) : null,
    sizeSelect,
    h('button', { type: 'submit' }, 'Filter'),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    ctx.go(hash(0, { name: nameInput.value.trim(), zone: zoneInput.value.trim() }, Number(sizeSelect.value)));
  });
  const global = ctx.info.mode === 'global';
  const pagesTotal = Math.max(1, Math.ceil(r.total / size));
  fill(
    section,
    h('h1', {}, 'Dataplanes in mesh ', mesh),
    form,
    table(
      ['name', global ? 'zone' : null, 'services', 'address', 'status', 'last connected', 'certificate expires'].filter(Boolean),
      r.items.map((o) => {
        const i = o.dataplaneInsight;
        return [
          td({ 'data-field': 'name' }, link(['meshes', mesh, 'dataplanes', o.name], displayName(o))),
          global ? o.labels?.['kuma.io/zone'] || '—' : undefined,
          services(o.dataplane).join(', ') || '—',
          address(o.dataplane) || '—',
          td({ 'data-field': 'status' }, status(D.online(i), lastSubscription(i) ? '' : '(never connected)')),
          time(D.connectTime(i)),
          td({ 'data-field': 'certExpiry' }, D.certExpiry(i) ? time(D.certExpiry(i)) : '—'),
        ].filter((c) => c !== undefined);
      }),
      (i) => ({ 'data-dataplane': r.items[i].name }),
    ),
    pager({ offset, size, total: r.total, go: (o) => ctx.go(hash(o)) }),
    h('p', { class: 'muted', id: 'page-of' }, `Page ${Math.floor(offset / size) + 1} of ${pagesTotal}.`),
  );
}

/** Kuma's PoliciesList (`{policies: [{kind, conf, origins: [{kri}]}]}`). */
function policiesTable(p) {
  const list = Array.isArray(p.policies) ? p.policies : [];
  return table(
    ['kind', 'from policies', 'conf'],
    list.map((x) => [x.kind, (x.origins || []).map((o) => o.kri).join(', '), h('details', {}, h('summary', {}, 'conf'), json(x.conf ?? x.rules))]),
    (i) => ({ 'data-kind': list[i].kind }),
  );
}

function rulesTable(mesh, r, plurals) {
  const rows = (Array.isArray(r.rules) ? r.rules : []).filter((t) => (t.matched || []).length);
  return table(
    ['policy type', 'matched policies (weakest first)', 'rules'],
    rows.map((t) => [
      t.type,
      h('span', { 'data-field': 'matched' }, t.matched.map((n, i) => [i ? ', ' : '', plurals[t.type] ? link(['meshes', mesh, 'policies', plurals[t.type], n], n) : n])),
      h('details', {}, h('summary', {}, 'merged rules'), json({ to: t.to, from: t.from, single: t.single })),
    ]),
  );
}

async function configSection(base) {
  const c = await api.get(`${base}/_config`);
  const types = Object.entries(c.resources || {});
  return [
    h('p', { class: 'muted' }, `${types.reduce((a, [, v]) => a + v.length, 0)} resources.`),
    types.map(([type, items]) =>
      h(
        'details',
        { class: 'xds-type' },
        h('summary', {}, `${type.split('.').pop()} (${items.length})`),
        items.map((it) => lazy(it.name || 'resource', async () => json(it))),
      ),
    ),
  ];
}

/** The zone's view of the proxy: its policies, matched rules, per-inbound
 *  policies (lazily) and generated config. */
async function zoneSections(box, ctx, base, spec) {
  const { mesh } = ctx.params;
  const [pol, rules, types] = await Promise.all([api.get(`${base}/_policies`), api.get(`${base}/_rules`), api.get('/_resources')]);
  if (!ctx.alive()) return;
  const plurals = Object.fromEntries((types.resources || []).map((t) => [t.name, t.path]));
  const inbounds = spec.networking?.inbound || [];
  fill(
    box,
    h('h3', {}, 'Proxy-wide (', h('code', {}, '_policies'), ')'),
    policiesTable(pol),
    h('h3', {}, 'Matched policies per type (', h('code', {}, '_rules'), ')'),
    rulesTable(mesh, rules, plurals),
    inbounds.length
      ? [
          h('h3', {}, 'Per inbound'),
          inbounds.map((i) => {
            const section = i.name || String(i.port);
            return lazy(`inbound ${section}`, async () => policiesTable(await api.get(`${base}/_inbounds/${api.seg(section)}/_policies`)));
          }),
        ]
      : null,
    h('h2', {}, 'Generated Envoy config'),
    lazy('Show the config (can be large)', () => configSection(base), { id: 'xds-config' }),
  );
}

export async function one(section, ctx) {
  const { mesh, name } = ctx.params;
  const base = `/meshes/${api.seg(mesh)}/dataplanes/${api.seg(name)}`;
  const o = await api.get(`${base}/_overview`);
  const insight = o.dataplaneInsight || {};
  const last = lastSubscription(insight);
  const mtls = insight.mTLS;
  const spec = o.dataplane || {};
  const n = spec.networking || {};
  const zone = o.labels?.['kuma.io/zone'];
  const global = ctx.info.mode === 'global';
  const policies = h('div', { id: 'matched-policies' }, h('p', { class: 'muted' }, 'Loading…'));
  const xds = last?.status ? Object.entries(last.status).filter(([k]) => k !== 'lastUpdateTime') : [];
  fill(
    section,
    h('h1', {}, 'Dataplane ', h('span', { 'data-field': 'title' }, displayName(o))),
    kv([
      ['Name', displayName(o), 'name'],
      o.labels?.['kuma.io/display-name'] ? ['Name on global', o.name, 'storedName'] : null,
      ['Mesh', o.mesh, 'mesh'],
      zone ? ['Zone', global ? link(['zones', zone], zone) : zone, 'zone'] : null,
      ['Status', status(D.online(insight), last ? '' : '(never connected)'), 'status'],
      ['Connected', time(D.connectTime(insight)), 'connectTime'],
      ['Disconnected', time(D.disconnectTime(insight))],
      last?.controlPlaneInstanceId ? ['Control plane instance', last.controlPlaneInstanceId] : null,
      insight.streamKind ? ['ADS', insight.streamKind] : null,
      ['Certificate expires', mtls ? time(mtls.certificateExpirationTime) : 'no certificate (mTLS off, or not issued yet)', 'certExpiry'],
      mtls ? ['Certificate regenerated', `${time(mtls.lastCertificateRegeneration)} (${mtls.certificateRegenerations ?? 0} times)`] : null,
      mtls?.spiffeId ? ['SPIFFE id', mtls.spiffeId] : null,
      mtls?.issuedBackend ? ['Issued by backend', mtls.issuedBackend, 'issuedBackend'] : null,
    ]),
    h('h2', {}, 'Inbounds'),
    table(['port', 'service port', 'address', 'tags'], (n.inbound || []).map((i) => [i.port, i.servicePort ?? '', i.address || n.address || '', Object.entries(i.tags || {}).map(([k, v]) => `${k}=${v}`).join(' ')])),
    (n.outbound || []).length
      ? [h('h2', {}, 'Outbounds'), table(['address', 'port', 'to'], n.outbound.map((x) => [x.address || '127.0.0.1', x.port, x.tags?.['kuma.io/service'] || JSON.stringify(x.backendRef || x.tags || {})]))]
      : null,
    xds.length
      ? [
          h('h2', {}, 'xDS of the current stream'),
          table(['', 'sent', 'ACKed', 'NACKed'], xds.map(([k, s]) => [k, s.responsesSent, s.responsesAcknowledged, td({ class: s.responsesRejected ? 'bad' : '' }, s.responsesRejected)])),
        ]
      : null,
    h('h2', {}, 'Policies'),
    policies,
    h('h2', {}, 'Envoy, live'),
    h(
      'p',
      { class: 'muted' },
      global
        ? 'Read from the proxy\'s Envoy admin through its zone (over KDS): what Envoy holds now.'
        : 'Read from the proxy\'s Envoy admin through weft-dp: what Envoy holds now.',
    ),
    lazy('Stats', async () => h('pre', { class: 'code' }, await api.get(`${base}/stats`, { accept: 'text/plain' })), { id: 'envoy-stats' }),
    lazy('Clusters', async () => h('pre', { class: 'code' }, await api.get(`${base}/clusters`, { accept: 'text/plain' })), { id: 'envoy-clusters' }),
    lazy('Config dump (can be large)', async () => json(await api.get(`${base}/xds`)), { id: 'envoy-xds' }),
    h('details', {}, h('summary', {}, 'Overview as served'), json(o, { id: 'dp-spec' })),
  );
  if (global) {
    fill(
      policies,
      note(
        'The policies that apply to this proxy, its matched rules and the Envoy config it gets are computed by ',
        zone ? ['zone ', h('strong', { 'data-field': 'served-by' }, zone)] : 'the zone it connects to',
        ' (GET …/_policies, …/_rules, …/_config on that zone\'s API, or its GUI).',
      ),
    );
    return;
  }
  await zoneSections(policies, ctx, base, spec);
}
