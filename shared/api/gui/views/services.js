// Services: a mesh's dataplanes grouped by their `kuma.io/service` tag, with how
// many are online. Read from the DataplaneOverview list, 100 per page, never
// one request per dataplane.

import * as api from '../api.js';
import { h, fill, table, td, link, note, displayName } from '../ui.js';
import { services as servicesOf, dataplane as D } from '../status.js';

export async function render(section, ctx) {
  const mesh = ctx.params.mesh;
  const progress = h('p', { class: 'muted', id: 'progress' }, 'Reading dataplanes…');
  fill(section, h('h1', {}, 'Services in mesh ', mesh), progress);
  const base = `/meshes/${api.seg(mesh)}`;
  const dps = await api.pages(`${base}/dataplanes/_overview`, { alive: ctx.alive, progress: (n, t) => fill(progress, `Read ${n} of ${t} dataplanes…`) });
  if (!ctx.alive()) return;
  let onlineCount = 0;
  const groups = new Map();
  for (const dp of dps.items) {
    const up = D.online(dp.dataplaneInsight);
    if (up) onlineCount += 1;
    const names = servicesOf(dp.dataplane);
    for (const s of names.length ? names : ['(no service)']) {
      const g = groups.get(s) || { total: 0, online: 0, zones: new Set(), sample: [] };
      g.total += 1;
      if (up) g.online += 1;
      const zone = dp.labels?.['kuma.io/zone'];
      if (zone) g.zones.add(zone);
      if (g.sample.length < 10) g.sample.push(dp);
      groups.set(s, g);
    }
  }
  const rows = [...groups.entries()].sort(([a], [b]) => a.localeCompare(b));
  fill(
    section,
    h('h1', {}, 'Services in mesh ', mesh),
    h('p', { class: 'muted' }, `${dps.total} dataplanes, ${onlineCount} online.`),
    dps.truncated ? note(`Only the first ${dps.items.length} dataplanes were read.`) : null,
    table(
      ['service', 'instances', 'online', 'offline', 'zones', 'some instances'],
      rows.map(([s, g]) => [
        td({ 'data-field': 'service' }, s),
        g.total,
        td({ class: g.online ? 'ok' : 'bad' }, g.online),
        g.total - g.online,
        [...g.zones].join(', ') || '—',
        h('span', {}, g.sample.map((dp, i) => [i ? ', ' : '', link(['meshes', mesh, 'dataplanes', dp.name], displayName(dp))]), g.total > g.sample.length ? ' …' : ''),
      ]),
      (i) => ({ 'data-service': rows[i][0] }),
    ),
  );
}
