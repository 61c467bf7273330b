// Readers tolerant of both shapes the overviews come in: Weft's own fields
// (`zoneInsight.online`, `sent`, `dataplaneInsight.connected`, ...) and Kuma's
// (`zoneInsight.subscriptions[].status.stat`, `dataplaneInsight.subscriptions`).

/** The newest subscription of a Kuma-shaped insight. */
export function lastSubscription(insight) {
  const subs = insight && Array.isArray(insight.subscriptions) ? insight.subscriptions : [];
  return subs.length ? subs[subs.length - 1] : null;
}

/** Connected: Weft's flag, else any subscription without a disconnect time. */
function connected(insight, flag) {
  if (!insight) return false;
  if (typeof insight[flag] === 'boolean') return insight[flag];
  const subs = Array.isArray(insight.subscriptions) ? insight.subscriptions : [];
  return subs.some((s) => s.connectTime && !s.disconnectTime);
}

export const zone = {
  name: (item) => item.name ?? item.zone?.name,
  enabled: (item) => item.zone?.enabled ?? item.enabled ?? true,
  online: (item) => connected(item.zoneInsight, 'online'),
  version: (item) => {
    const zi = item.zoneInsight || {};
    if (typeof zi.version === 'string') return zi.version;
    return lastSubscription(zi)?.version?.kumaCp?.version;
  },
  connectTime: (item) => item.zoneInsight?.connectTime ?? lastSubscription(item.zoneInsight)?.connectTime,
  disconnectTime: (item) => item.zoneInsight?.disconnectTime ?? lastSubscription(item.zoneInsight)?.disconnectTime,
  /** Per type: {type, sent, acked, nacked, reason}. */
  sync: (item) => {
    const zi = item.zoneInsight || {};
    if (zi.sent && typeof zi.sent === 'object') {
      return Object.entries(zi.sent).map(([type, s]) => ({
        type,
        sent: s.responsesSent,
        acked: s.acked ?? s.responsesAcknowledged,
        nacked: s.nacked ?? s.responsesRejected,
        reason: s.lastNackReason,
      }));
    }
    const stat = lastSubscription(zi)?.status?.stat || {};
    return Object.entries(stat).map(([type, s]) => ({
      type,
      sent: s.responsesSent,
      acked: s.responsesAcknowledged,
      nacked: s.responsesRejected,
    }));
  },
};

/** A DataplaneInsight: Weft's live one (`connected`), Kuma's (`subscriptions`),
 *  or the stored resource (`subscriptions` at the top). */
export const dataplane = {
  online: (insight) => connected(insight, 'connected'),
  connectTime: (i) => i?.connectTime ?? lastSubscription(i)?.connectTime,
  disconnectTime: (i) => i?.disconnectTime ?? lastSubscription(i)?.disconnectTime,
  certExpiry: (i) => i?.mTLS?.certificateExpirationTime,
  /** Kuma's DataplaneOverview carries the spec only; Weft's the whole resource. */
  spec: (overview) => overview?.dataplane ?? {},
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
