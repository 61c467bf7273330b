// Zones (global only), in Kuma's ZoneOverview shape: GET /zones/_overview and
// /zones/{name}/_overview (KDS subscriptions, the zone's version, per-type
// `stat`), what global holds of the zone's proxies (`proxies`), and the
// enable / disable toggle (a PUT of the Zone with `enabled`, once confirmed).

import * as api from '../api.js';
import { h, fill, kv, table, td, status, time, link, json, note, errorBox } from '../ui.js';
import { zone as Z } from '../status.js';

const counters = (t) => `${t.responsesSent ?? 0} sent · ${t.responsesAcknowledged ?? 0} ACKed · ${t.responsesRejected ?? 0} NACKed`;

export async function list(section, ctx) {
  // Global answers every zone in one list (zones are few).
  const r = await api.get('/zones/_overview');
  fill(
    section,
    h('h1', {}, 'Zones'),
    table(
      ['zone', 'status', 'enabled', 'version', 'connected', 'disconnected', 'dataplanes', 'KDS (global → zone)'],
      r.items.map((z) => {
        const dps = z.proxies?.dataplanes;
        return [
          td({ 'data-field': 'name' }, link(['zones', z.name], z.name)),
          td({ 'data-field': 'status' }, status(Z.online(z))),
          td({ 'data-field': 'enabled' }, Z.enabled(z) ? 'yes' : 'no'),
          td({ 'data-field': 'version' }, Z.version(z) || '—'),
          time(Z.connectTime(z)),
          time(Z.disconnectTime(z)),
          dps ? `${dps.total} (${dps.online} online)` : '—',
          counters(Z.total(z)),
        ];
      }),
      (i) => ({ 'data-zone': r.items[i].name }),
    ),
    h('p', { class: 'muted' }, `${r.total} zones.`),
  );
}

/** The enable / disable button and its confirmation. */
function toggle(z, ctx) {
  const enabled = Z.enabled(z);
  const box = h('div', { id: 'zone-toggle-box' });
  const action = enabled ? 'Disable' : 'Enable';
  const warning = enabled
    ? `Disable zone ${z.name}? Global ends its KDS streams at once and refuses it until it is enabled again; its proxies keep the configuration they have.`
    : `Enable zone ${z.name}? Global accepts its KDS streams again; the zone reconnects on its next attempt.`;
  const ask = () =>
    fill(
      box,
      h(
        'div',
        { class: 'note', id: 'zone-confirm', role: 'alertdialog' },
        h('p', {}, warning),
        h('button', { type: 'button', id: 'zone-confirm-yes', onclick: apply }, `${action} ${z.name}`),
        ' ',
        h('button', { type: 'button', id: 'zone-confirm-no', onclick: idle }, 'Cancel'),
      ),
    );
  async function apply() {
    fill(box, h('p', { class: 'muted' }, 'Saving…'));
    try {
      const path = `/zones/${api.seg(z.name)}`;
      const current = await api.get(path);
      await api.put(path, { type: 'Zone', name: current.name, labels: current.labels, enabled: !enabled });
      ctx.reload();
    } catch (e) {
      fill(box, errorBox(e), h('button', { type: 'button', onclick: idle }, 'Back'));
    }
  }
  function idle() {
    fill(box, h('button', { type: 'button', id: 'zone-toggle', onclick: ask }, `${action} zone`));
  }
  idle();
  return box;
}

export async function one(section, ctx) {
  const name = ctx.params.zone;
  const z = await api.get(`/zones/${api.seg(name)}/_overview`);
  const p = z.proxies || {};
  const subs = z.zoneInsight?.subscriptions || [];
  const received = z.zoneInsight?.received || {};
  fill(
    section,
    h('h1', {}, 'Zone ', h('span', { 'data-field': 'title' }, z.name)),
    kv([
      ['Name', z.name, 'name'],
      ['Status', status(Z.online(z)), 'status'],
      ['Enabled', Z.enabled(z) ? 'yes' : 'no (global refuses it)', 'enabled'],
      ['Version', Z.version(z) || '—', 'version'],
      ['Compatible with global', Z.compatible(z) === undefined ? '—' : Z.compatible(z) ? 'yes' : 'no'],
      ['Connected', time(Z.connectTime(z))],
      ['Disconnected', time(Z.disconnectTime(z))],
      ['KDS (global → zone)', counters(Z.total(z)), 'total'],
      p.dataplanes ? ['Dataplanes', `${p.dataplanes.total} (${p.dataplanes.online} online, ${p.dataplanes.offline} offline)`, 'dataplanes'] : null,
    ]),
    toggle(z, ctx),
    (p.notes || []).map((n) => note(n)),
    h('h2', {}, 'Per resource type, newest subscription (global → zone)'),
    table(
      ['type', 'responses sent', 'ACKed', 'NACKed', 'last NACK'],
      Z.stat(z).map((s) => [s.type, s.responsesSent ?? 0, s.responsesAcknowledged ?? 0, td({ class: s.responsesRejected ? 'bad' : '' }, s.responsesRejected ?? 0), s.reason || '']),
      (i) => ({ 'data-type': Z.stat(z)[i].type }),
    ),
    Object.keys(received).length
      ? [
          h('h2', {}, 'Received from the zone, per type'),
          table(
            ['type', 'responses', 'resources', 'removals', 'rejected'],
            Object.entries(received).map(([t, c]) => [t, c.responsesReceived, c.resourcesReceived, c.removalsReceived, c.resourcesRejected]),
          ),
        ]
      : null,
    h('h2', {}, 'KDS subscriptions (newest last)'),
    table(
      ['id', 'global instance', 'connected', 'disconnected', 'version', 'updates'],
      subs.map((s) => [s.id, s.globalInstanceId || '', time(s.connectTime), time(s.disconnectTime), s.version?.kumaCp?.version || '', counters(s.status?.total || {})]),
      () => ({ class: 'subscription' }),
    ),
    h('h2', {}, 'Proxies'),
    table(
      ['zone ingress', 'advertised', 'services', 'instances'],
      (p.ingresses || []).map((i) => [i.name, i.advertised || '—', i.availableServices ?? '', i.instances ?? '']),
    ),
    (p.egresses || []).length ? table(['zone egress', 'address'], p.egresses.map((e) => [e.name, e.address || '—'])) : null,
    table(
      ['mesh', 'dataplanes of this zone'],
      Object.entries(p.dataplanes?.byMesh || {}).map(([mesh, n]) => [mesh, link(['meshes', mesh, 'dataplanes'], String(n), { zone: z.name })]),
    ),
    h('details', {}, h('summary', {}, 'Raw overview'), json(z)),
  );
}
