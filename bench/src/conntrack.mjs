// Netfilter's connection table is shared by the whole machine: when it is full the kernel drops new connections
// for everyone ("nf_conntrack: table full, dropping packet"). A churn run at tens of thousands of connections per
// second filled it here (262,144 entries, 120 s per TIME_WAIT entry). So the load generator closes with resets
// (10 s entries) and stops at a connection budget, and every run first waits until its budget leaves a quarter of the
// table's room.
import { readFileSync } from 'node:fs';

export function conntrackUse() {
  try {
    const count = Number(readFileSync('/proc/sys/net/netfilter/nf_conntrack_count', 'utf8'));
    const max = Number(readFileSync('/proc/sys/net/netfilter/nf_conntrack_max', 'utf8'));
    return { count, max };
  } catch {
    return undefined; // no conntrack loaded: nothing to protect
  }
}

/** Waits (at most timeoutMs) until `need` more entries would leave a quarter of the table free. */
export async function waitForConntrackRoom(need, { timeoutMs = 60_000, log = () => {} } = {}) {
  const deadline = Date.now() + timeoutMs;
  let logged = false;
  for (;;) {
    const use = conntrackUse();
    if (!use || use.count + need <= use.max * 0.75) return { ok: true };
    if (Date.now() >= deadline) return { ok: false, use };
    if (!logged)
      log(`waiting for the connection-tracking table to drain (${use.count}/${use.max} entries, need ${need})`);
    logged = true;
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}
