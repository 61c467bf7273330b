// Dataplanes: a server-side page at a time (size ≤ 100, offset, the name
// filter; on global a zone filter), with each one's status; and one dataplane
// with its spec, status, certificate, matched policies and generated config.
//
// Status comes from GET /meshes/{m}/dataplanes/_overview (Kuma's
// DataplaneOverview list) when the control plane serves it; else from the page
// of dataplanes plus each one's DataplaneInsight — requests bounded by the page
// size, at most 6 at a time.

import * as api from '../api.js';
import { h, fill, kv, table, td, link, json, pager, note, status, time, lazy, displayName } from '../ui.js';
import { dataplane as D, services, address } from '../status.js';

const SIZES = [10, 25, 50, 100];
const DEFAULT_SIZE = 25;
let overviewList; // whether GET …/dataplanes/_overview answers (learned once)

function isOverviewList(r) {
  return r && Array.isArray(r.items) && typeof r.total === 'number' && r.items.every((o) => o && typeof o.dataplane === 'object');
}

/** One page: rows of {name, mesh, labels, spec, insight}. */
async function page(mesh, { offset, size, name, zone }) {
  const base = `/meshes/${api.seg(mesh)}/dataplanes`;
  const q = api.query({ size, offset, name, 'filter[labels.kuma.io/zone]': zone });
  if (overviewList !== false) {
    try {
      const r = await api.get(`${base}/_overview${q}`);
      if (isOverviewList(r)) {
        overviewList = true;
        return {
          total: r.total,
          source: 'GET /meshes/{mesh}/dataplanes/_overview',
          rows: r.items.map((o) => ({ name: o.name ?? o.dataplane?.name, mesh: o.mesh ?? mesh, labels: o.labels ?? o.dataplane?.labels ?? {}, spec: D.spec(o), insight: o.dataplaneInsight })),
        };
      }
    } catch (e) {
      if (!(e instanceof api.ApiError) || ![400, 404, 405].includes(e.status)) throw e;
    }
    overviewList = false;
  }
  const r = await api.get(`${base}${q}`);
  const insights = await api.mapLimit(r.items, 6, (dp) => api.optional(`/meshes/${api.seg(mesh)}/dataplane-insights/${api.seg(dp.name)}`));
  return {
    total: r.total,
    source: 'GET /meshes/{mesh}/dataplanes and each one\'s DataplaneInsight',
    rows: r.items.map((dp, i) => ({ name: dp.name, mesh: dp.mesh, labels: dp.labels || {}, spec: dp, insight: insights[i] })),
  };
}

export async function list(section, ctx) {
  const mesh = ctx.params.mesh;
  const q = ctx.query;
  const size = SIZES.includes(Number(q.size)) ? Number(q.size) : DEFAULT_SIZE;
  const offset = Math.max(0, Number(q.offset) || 0);
  const filters = { name: q.name || '', zone: q.zone || '' };
  const r = await page(mesh, { offset, size, ...filters });
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
  const showZone = r.rows.some((d) => d.labels['kuma.io/zone']);
  const showCert = r.rows.some((d) => D.certExpiry(d.insight));
  fill(
    section,
    h('h1', {}, 'Dataplanes in mesh ', mesh),
    form,
    table(
      ['name', showZone ? 'zone' : null, 'services', 'address', 'status', 'last connected', showCert ? 'certificate expires' : null].filter(Boolean),
      r.rows.map((d) =>
        [
          td({ 'data-field': 'name' }, link(['meshes', mesh, 'dataplanes', d.name], displayName(d))),
          showZone ? d.labels['kuma.io/zone'] || '—' : undefined,
          services(d.spec).join(', ') || '—',
          address(d.spec) || '—',
          td({ 'data-field': 'status' }, status(D.online(d.insight), d.insight ? '' : '(never connected)')),
          time(D.connectTime(d.insight)),
          showCert ? time(D.certExpiry(d.insight)) : undefined,
        ].filter((c) => c !== undefined),
      ),
      (i) => ({ 'data-dataplane': r.rows[i].name }),
    ),
    pager({ offset, size, total: r.total, go: (o) => ctx.go(hash(o)) }),
    h('p', { class: 'muted' }, `Status from ${r.source}.`),
  );
}

function policiesSection(p) {
  const list = Array.isArray(p.policies) ? p.policies : [];
  return table(
    ['kind', 'from policies', 'conf'],
    list.map((x) => [x.kind || x.type || '', (x.origins || []).map((o) => o.kri || o.name || JSON.stringify(o)).join(', '), h('details', {}, h('summary', {}, 'conf'), json(x.conf ?? x.rules ?? x))]),
  );
}

function rulesSection(mesh, r, plurals) {
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
  const c = await api.optional(`${base}/_config`);
  if (!c) return note('This control plane does not generate this proxy\'s config (GET …/_config is served by the zone the proxy connects to).');
  const types = Object.entries(c.resources || c.xds || {});
  return [
    h('p', { class: 'muted' }, `${types.reduce((a, [, v]) => a + (Array.isArray(v) ? v.length : 1), 0)} resources.`),
    types.map(([type, items]) =>
      h(
        'details',
        { class: 'xds-type' },
        h('summary', {}, `${type.split('.').pop()} (${Array.isArray(items) ? items.length : 1})`),
        Array.isArray(items) ? items.map((it) => lazy(it.name || 'resource', async () => json(it))) : json(items),
      ),
    ),
  ];
}

export async function one(section, ctx) {
  const { mesh, name } = ctx.params;
  const base = `/meshes/${api.seg(mesh)}/dataplanes/${api.seg(name)}`;
  const [dp, ov] = await Promise.all([api.get(base), api.optional(`${base}/_overview`)]);
  let insight = ov?.dataplaneInsight;
  let source = 'GET …/_overview';
  if (!ov) {
    insight = await api.optional(`/meshes/${api.seg(mesh)}/dataplane-insights/${api.seg(name)}`);
    source = 'the DataplaneInsight';
  }
  const online = D.online(insight);
  const mtls = insight?.mTLS;
  const n = dp.networking || {};
  const policies = h('div', { id: 'matched-policies' }, h('p', { class: 'muted' }, 'Loading…'));
  fill(
    section,
    h('h1', {}, 'Dataplane ', h('span', { 'data-field': 'title' }, displayName(dp))),
    kv([
      ['Name', displayName(dp), 'name'],
      dp.labels?.['kuma.io/display-name'] ? ['Name on global', dp.name, 'storedName'] : null,
      ['Mesh', dp.mesh, 'mesh'],
      dp.labels?.['kuma.io/zone'] ? ['Zone', dp.labels['kuma.io/zone'], 'zone'] : null,
      ['Status', status(online, insight ? '' : '(never connected)'), 'status'],
      ['Connected', time(D.connectTime(insight))],
      ['Disconnected', time(D.disconnectTime(insight))],
      insight?.streamKind ? ['ADS', insight.streamKind] : null,
      ['Certificate expires', mtls ? time(mtls.certificateExpirationTime) : 'no certificate (mTLS off, or not issued yet)', 'certExpiry'],
      mtls?.spiffeId ? ['SPIFFE id', mtls.spiffeId] : null,
      mtls?.issuedBackend ? ['Issued by backend', mtls.issuedBackend] : null,
      ['Status from', source],
    ]),
    h('h2', {}, 'Inbounds'),
    table(['port', 'service port', 'address', 'tags'], (n.inbound || []).map((i) => [i.port, i.servicePort ?? '', i.address || n.address || '', Object.entries(i.tags || {}).map(([k, v]) => `${k}=${v}`).join(' ')])),
    (n.outbound || []).length
      ? [h('h2', {}, 'Outbounds'), table(['address', 'port', 'to'], n.outbound.map((o) => [o.address || '127.0.0.1', o.port, o.tags?.['kuma.io/service'] || JSON.stringify(o.backendRef || o.tags || {})]))]
      : null,
    insight?.types
      ? [
          h('h2', {}, 'xDS, per type'),
          table(['type', 'sent', 'ACKed', 'NACKed', 'last NACK'], Object.entries(insight.types).map(([t, s]) => [t.split('.').pop(), s.responsesSent, s.acked, td({ class: s.nacked ? 'bad' : '' }, s.nacked), s.lastNackReason || ''])),
        ]
      : null,
    h('h2', {}, 'Matched policies'),
    policies,
    h('h2', {}, 'Generated Envoy config'),
    lazy('Show the config (can be large)', () => configSection(base), { id: 'xds-config' }),
    h('details', {}, h('summary', {}, 'Dataplane as stored'), json(dp, { id: 'dp-spec' })),
  );
  const [pol, rules, types] = await Promise.all([api.optional(`${base}/_policies`), api.optional(`${base}/_rules`), api.get('/_resources')]);
  if (!ctx.alive()) return;
  const plurals = Object.fromEntries((types.resources || []).map((t) => [t.name, t.path]));
  fill(
    policies,
    pol ? [h('h3', {}, 'Proxy policies (_policies)'), policiesSection(pol)] : null,
    rules ? rulesSection(mesh, rules, plurals) : null,
    !pol && !rules ? note('This control plane does not compute this proxy\'s policies (GET …/_rules and …/_policies are served by the zone the proxy connects to).') : null,
  );
}
