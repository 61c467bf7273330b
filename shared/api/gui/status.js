// Readers of Kuma 2.14's overview shapes (ZoneOverview, DataplaneOverview),
// as both control planes answer them.

/** The newest subscription of an insight (Kuma keeps the newest last). */
export function lastSubscription(insight) {
  const subs = insight && Array.isArray(insight.subscriptions) ? insight.subscriptions : [];
  return subs.length ? subs[subs.length - 1] : null;
}

/** A subscription that has started and not ended. */
const open = (sub) => Boolean(sub && sub.connectTime && !sub.disconnectTime);

/** A ZoneOverview (`/zones/_overview` items, `/zones/{z}/_overview`). */
export const zone = {
  enabled: (o) => o.zone?.enabled !== false,
  /** Online as kumactl says it: enabled, and its newest KDS subscription open. */
  online: (o) => zone.enabled(o) && open(lastSubscription(o.zoneInsight)),
  version: (o) => lastSubscription(o.zoneInsight)?.version?.kumaCp?.version || '',
  compatible: (o) => lastSubscription(o.zoneInsight)?.version?.kumaCp?.kumaCpGlobalCompatible,
  connectTime: (o) => lastSubscription(o.zoneInsight)?.connectTime,
  disconnectTime: (o) => lastSubscription(o.zoneInsight)?.disconnectTime,
  /** The newest subscription's totals: {responsesSent, responsesAcknowledged, responsesRejected}. */
  total: (o) => lastSubscription(o.zoneInsight)?.status?.total || {},
  /** Per resource type of the newest subscription (`status.stat`), with the
   *  last NACK's reason where Weft's live view (`sent`) has one. */
  stat: (o) => {
    const stat = lastSubscription(o.zoneInsight)?.status?.stat || {};
    const sent = o.zoneInsight?.sent || {};
    return Object.entries(stat).map(([type, s]) => ({ type, ...s, reason: sent[type]?.lastNackReason }));
  },
};

/** A DataplaneOverview's `dataplaneInsight`. */
export const dataplane = {
  /** `connected` (a zone's live stream), else the newest subscription open. */
  online: (i) => (typeof i?.connected === 'boolean' ? i.connected : open(lastSubscription(i))),
  connectTime: (i) => lastSubscription(i)?.connectTime,
  disconnectTime: (i) => lastSubscription(i)?.disconnectTime,
  certExpiry: (i) => i?.mTLS?.certificateExpirationTime,
};

/** The `kuma.io/service` tags of a Dataplane's inbounds (or its gateway). */
export function services(dp) {
  const n = dp?.networking || {};
  const tags = [...(n.inbound || []).map((i) => i.tags || {}), n.gateway?.tags || {}];
  return [...new Set(tags.map((t) => t['kuma.io/service']).filter(Boolean))];
}

/** `address` and the inbound ports. */
export function address(dp) {
  const n = dp?.networking || {};
  const ports = (n.inbound || []).map((i) => i.port).filter((p) => p !== undefined);
  return n.address ? `${n.address}${ports.length ? ':' + ports.join(',') : ''}` : '';
}
