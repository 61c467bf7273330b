// Home: what is running (GET /), its components (GET /ready) and counts
// (GET /global-insight, Kuma's GlobalInsight: one request).

import * as api from '../api.js';
import { h, fill, kv, table, time, errorBox } from '../ui.js';

/** The cards of Kuma's GlobalInsight: [label, total, online]. */
function counts(gi, info) {
  const dp = gi.dataplanes?.standard || {};
  return [
    ['Meshes', gi.meshes?.total],
    info.mode === 'global' ? ['Zones', gi.zones?.controlPlanes?.total, gi.zones?.controlPlanes?.online] : null,
    ['Dataplanes', dp.total, dp.online],
    ['Zone ingresses', gi.zones?.zoneIngresses?.total, gi.zones?.zoneIngresses?.online],
    ['Zone egresses', gi.zones?.zoneEgresses?.total, gi.zones?.zoneEgresses?.online],
    ['Services', gi.services?.total],
    ['Policies', gi.policies?.total],
  ].filter(Boolean);
}

export async function render(section, ctx) {
  const { info } = ctx;
  const ready = await api.open('/ready');
  const comps = ready.body?.components || {};
  const countsBox = h('div', { class: 'cards', id: 'counts' }, h('p', { class: 'muted' }, 'Counting…'));
  fill(
    section,
    h('h1', {}, info.mode === 'global' ? 'Global control plane' : `Zone control plane${info.zone ? ' ' + info.zone : ''}`),
    kv([
      ['Product', info.product, 'product'],
      ['Version', info.version, 'version'],
      ['Mode', info.mode, 'mode'],
      info.mode === 'zone' ? ['Zone', info.zone ?? '(standalone, unnamed)', 'zone'] : null,
      ['Based on Kuma', info.basedOnKuma, 'basedOnKuma'],
      ['Instance', info.instanceId],
      ['Ready', h('span', { class: `badge ${ready.body?.ready ? 'ok' : 'bad'}` }, ready.body?.ready ? 'ready' : 'not ready'), 'ready'],
      ['Reason', ready.body?.reason],
    ]),
    h('h2', {}, 'Counts'),
    countsBox,
    h('h2', {}, 'Components'),
    table(
      ['component', 'state', 'since', 'restarts', 'reason'],
      Object.entries(comps).map(([name, c]) => [
        name,
        h('span', { class: `badge ${c.state === 'ready' ? 'ok' : c.state === 'degraded' ? 'warn' : 'bad'}` }, c.state),
        time(c.since),
        c.restarts ?? 0,
        c.reason || '',
      ]),
    ),
  );
  try {
    const gi = await api.get('/global-insight');
    if (!ctx.alive()) return;
    const cs = counts(gi, info);
    fill(
      countsBox,
      cs.map(([label, total, online]) =>
        h('div', { class: 'card count', 'data-count': label }, h('div', { class: 'n' }, total ?? '—'), h('div', {}, label), online !== undefined ? h('div', { class: 'muted' }, `${online} online`) : null),
      ),
    );
  } catch (e) {
    fill(countsBox, errorBox(e));
  }
}
