// Zones (global only): GET /zones/_overview and /zones/{name}/_overview, in
// Weft's shape (zoneInsight.online, sent, proxies) or Kuma's ZoneOverview
// (zoneInsight.subscriptions[].status.stat, version.kumaCp).

import * as api from '../api.js';
import { h, fill, kv, table, td, status, time, link, json, pager, note } from '../ui.js';
import { zone as Z } from '../status.js';

const SIZE = 50;

function syncTotals(item) {
  const rows = Z.sync(item);
  const sum = (k) => rows.reduce((a, r) => a + (Number(r[k]) || 0), 0);
  return `${sum('sent')} sent · ${sum('acked')} ACKed · ${sum('nacked')} NACKed`;
}

export async function list(section, ctx) {
  const offset = Number(ctx.query.offset) || 0;
  const r = await api.get(`/zones/_overview${api.query({ size: SIZE, offset })}`);
  // Weft answers every zone at once; page here when it did.
  const items = r.items.length > SIZE ? r.items.slice(offset, offset + SIZE) : r.items;
  const total = r.total ?? items.length;
  fill(
    section,
    h('h1', {}, 'Zones'),
    table(
      ['zone', 'status', 'enabled', 'version', 'connected', 'disconnected', 'dataplanes', 'sync (global → zone)'],
      items.map((z) => {
        const name = Z.name(z);
        const dps = z.proxies?.dataplanes;
        return [
          td({ 'data-field': 'name' }, link(['zones', name], name)),
          td({ 'data-field': 'status' }, status(Z.online(z))),
          Z.enabled(z) ? 'yes' : 'no',
          Z.version(z) || '—',
          time(Z.connectTime(z)),
          time(Z.disconnectTime(z)),
          dps ? `${dps.total} (${dps.online ?? '?'} online)` : '—',
          syncTotals(z),
        ];
      }),
      (i) => ({ 'data-zone': Z.name(items[i]) }),
    ),
    total > SIZE ? pager({ offset, size: SIZE, total, go: (o) => ctx.go(`#/zones?offset=${o}`) }) : null,
  );
}

export async function one(section, ctx) {
  const name = ctx.params.zone;
  const z = await api.get(`/zones/${api.seg(name)}/_overview`);
  const online = Z.online(z);
  const p = z.proxies || {};
  const subs = z.zoneInsight?.subscriptions;
  fill(
    section,
    h('h1', {}, 'Zone ', h('span', { 'data-field': 'title' }, Z.name(z))),
    kv([
      ['Name', Z.name(z), 'name'],
      ['Status', status(online), 'status'],
      ['Enabled', Z.enabled(z) ? 'yes' : 'no'],
      ['Version', Z.version(z) || '—', 'version'],
      ['Connected', time(Z.connectTime(z))],
      ['Disconnected', time(Z.disconnectTime(z))],
      p.dataplanes ? ['Dataplanes', `${p.dataplanes.total} (${p.dataplanes.online ?? '?'} online, ${p.dataplanes.offline ?? '?'} offline)`] : null,
    ]),
    (p.notes || []).map((n) => note(n)),
    h('h2', {}, 'Sync state, per type (global → zone)'),
    table(
      ['type', 'responses sent', 'ACKed', 'NACKed', 'last NACK'],
      Z.sync(z).map((s) => [s.type, s.sent ?? 0, s.acked ?? 0, td({ class: s.nacked ? 'bad' : '' }, s.nacked ?? 0), s.reason || '']),
    ),
    z.zoneInsight?.received
      ? [
          h('h2', {}, 'Received from the zone, per type'),
          table(
            ['type', 'responses', 'resources', 'removals', 'rejected'],
            Object.entries(z.zoneInsight.received).map(([t, c]) => [t, c.responsesReceived, c.resourcesReceived, c.removalsReceived, c.resourcesRejected]),
          ),
        ]
      : null,
    Array.isArray(subs) && subs.length
      ? [
          h('h2', {}, 'KDS subscriptions'),
          table(
            ['id', 'global instance', 'connected', 'disconnected', 'version'],
            subs.map((s) => [s.id, s.globalInstanceId || '', time(s.connectTime), time(s.disconnectTime), s.version?.kumaCp?.version || '']),
          ),
        ]
      : null,
    h('h2', {}, 'Proxies'),
    p.ingresses
      ? table(
          ['zone ingress', 'advertised', 'services', 'instances'],
          p.ingresses.map((i) => [i.name, i.advertised || '—', i.availableServices ?? '', i.instances ?? '']),
        )
      : null,
    p.egresses && p.egresses.length ? table(['zone egress', 'address'], p.egresses.map((e) => [e.name, e.address || '—'])) : null,
    p.dataplanes
      ? table(
          ['mesh', 'dataplanes of this zone'],
          Object.entries(p.dataplanes.byMesh || {}).map(([mesh, n]) => [
            mesh,
            link(['meshes', mesh, 'dataplanes'], String(n), { zone: Z.name(z) }),
          ]),
        )
      : note('This control plane does not list the zone\'s proxies in its overview.'),
    h('details', {}, h('summary', {}, 'Raw overview'), json(z)),
  );
}
