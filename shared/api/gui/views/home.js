// Home: what is running (GET /), its components (GET /ready) and counts
// (GET /global-insight when served, else each list's `total` read with size=1).

import * as api from '../api.js';
import { h, fill, kv, table, time, errorBox } from '../ui.js';

async function policyTypes() {
  const r = await api.get('/_resources');
  return (r.resources || []).filter((t) => t.policy);
}

/** Counts from Kuma's GlobalInsight, when the control plane serves it. */
function fromGlobalInsight(gi) {
  const dp = gi.dataplanes?.standard || gi.dataplanes || {};
  return [
    ['Meshes', gi.meshes?.total],
    ['Zones', gi.zones?.controlPlanes?.total, gi.zones?.controlPlanes?.online],
    ['Dataplanes', dp.total, dp.online],
    ['Zone ingresses', gi.zones?.zoneIngresses?.total, gi.zones?.zoneIngresses?.online],
    ['Zone egresses', gi.zones?.zoneEgresses?.total, gi.zones?.zoneEgresses?.online],
    ['Policies', gi.policies?.total],
    ['Services', gi.services?.total],
  ];
}

async function counts(info) {
  const gi = await api.optional('/global-insight');
  if (gi) return fromGlobalInsight(gi);
  const lists = [
    ['Meshes', '/meshes'],
    info.mode === 'global' ? ['Zones', '/zones'] : null,
    ['Dataplanes', '/dataplanes'],
    ['Zone ingresses', '/zoneingresses'],
    ['Zone egresses', '/zoneegresses'],
  ].filter(Boolean);
  const types = await policyTypes();
  const [plain, perType] = await Promise.all([
    Promise.all(lists.map(async ([label, path]) => [label, await api.count(path)])),
    api.mapLimit(types, 6, (t) => api.count(`/${t.path}`)),
  ]);
  return [...plain, ['Policies', perType.reduce((a, b) => a + b, 0)]];
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
    const cs = await counts(info);
    if (!ctx.alive()) return;
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
