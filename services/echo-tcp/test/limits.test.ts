import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ServiceProcess, sampleValue, scrapeMetrics, stopAllServices } from '@net/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { collect, connectTo, echo, receive, rssOf, startEcho } from './helpers.js';

async function metric(service: ServiceProcess, name: string, labels: Record<string, string> = {}): Promise<number> {
  return sampleValue(await scrapeMetrics(`${service.adminUrl}/metrics`), name, labels) ?? 0;
}

/** Polls a metric until `pred` holds (bounded): metrics are updated by events the test cannot await directly. */
async function metricUntil(
  service: ServiceProcess,
  name: string,
  labels: Record<string, string>,
  pred: (v: number) => boolean,
): Promise<number> {
  let value = 0;
  for (let i = 0; i < 100; i++) {
    value = await metric(service, name, labels);
    if (pred(value)) return value;
    await sleep(50);
  }
  return value;
}

describe('limits', () => {
  afterEach(stopAllServices);

  it('counts clients that reset their connection as net_errors_total{code="ECONNRESET"} and frees them', async () => {
    const service = await startEcho(['--admin-port', '0']);
    for (let i = 0; i < 3; i++) {
      const s = await connectTo(service.port);
      const back = receive(s, 4);
      s.write('ping');
      expect((await back).toString()).toBe('ping');
      s.resetAndDestroy();
    }
    expect(await metricUntil(service, 'net_errors_total', { code: 'ECONNRESET' }, (v) => v >= 3)).toBe(3);
    expect(await metricUntil(service, 'net_connections_open', {}, (v) => v === 0)).toBe(0);
    expect(await metric(service, 'net_connections_total')).toBe(3);
  });

  it('closes a connection idle for --idle-timeout and counts it', async () => {
    const service = await startEcho(['--idle-timeout', '0.3', '--admin-port', '0']);
    const idle = await connectTo(service.port);
    const busy = await connectTo(service.port);
    const idleEnd = collect(idle);
    // A connection with traffic every 100 ms outlives the 300 ms timeout.
    for (let i = 0; i < 6; i++) {
      const back = receive(busy, 1);
      busy.write('x');
      await back;
      await sleep(100);
    }
    expect(busy.destroyed).toBe(false);
    expect((await idleEnd).data.length).toBe(0);
    expect(await metricUntil(service, 'net_limit_hits_total', { limit: 'idle_timeout' }, (v) => v >= 1)).toBe(1);
    busy.destroy();
  });

  it('closes an idle PROXY connection too, after its move to the fast path, and counts it', async () => {
    const header = Buffer.from('PROXY TCP4 192.0.2.100 192.0.2.2 40684 7100\r\n', 'latin1');
    const service = await startEcho(['--proxy-protocol', '--idle-timeout', '0.3', '--admin-port', '0']);
    const socket = await connectTo(service.port);
    const ended = collect(socket);
    const back = receive(socket, 2);
    socket.write(Buffer.concat([header, Buffer.from('hi')]));
    expect((await back).toString()).toBe('hi');
    expect((await ended).data.toString()).toBe('hi'); // then closed by the sweep, nothing more sent
    expect(await metricUntil(service, 'net_limit_hits_total', { limit: 'idle_timeout' }, (v) => v >= 1)).toBe(1);
    expect(await metricUntil(service, 'net_connections_open', {}, (v) => v === 0)).toBe(0);
  });

  it('closes connections past --max-connections at once, counts them, and accepts again when one closes', async () => {
    const service = await startEcho(['--max-connections', '5', '--admin-port', '0']);
    const open = await Promise.all(Array.from({ length: 5 }, () => connectTo(service.port)));
    // Each is really being served (not just queued in the backlog).
    for (const s of open) {
      const back = receive(s, 2);
      s.write('ok');
      expect((await back).toString()).toBe('ok');
    }
    const extra = await connectTo(service.port);
    const refused = await collect(extra);
    expect(refused.data.length).toBe(0);
    expect(['eof', 'reset']).toContain(refused.how);
    expect(await metric(service, 'net_connections_rejected_total', { reason: 'max_connections' })).toBe(1);
    expect(service.lines.filter((l) => String(l.msg).includes('--max-connections (5) reached'))).toHaveLength(1);

    const first = open.shift();
    first?.end();
    await metricUntil(service, 'net_connections_open', {}, (v) => v === 4);
    const again = await echo(await connectTo(service.port), Buffer.from('back'));
    expect(again.data.toString()).toBe('back');
    for (const s of open) s.destroy();
  });

  it('stops reading from a client that sends and never reads: RSS stays bounded while others are served', async () => {
    const service = await startEcho(['--max-buffered', String(1 << 20), '--admin-port', '0']);
    const pid = service.proc.pid as number;
    // Warm up (JIT, buffers) so the baseline is not the bare start.
    await echo(await connectTo(service.port), randomBytes(8 << 20));
    const baseline = await rssOf(pid);

    const hog = await connectTo(service.port);
    hog.on('error', () => {});
    const chunk = randomBytes(1 << 20);
    const offerLimit = 256 << 20;
    let offered = 0;
    const started = Date.now();
    // Offer up to 256 MiB, for at most 10 s; stop when the service has not taken anything for 500 ms.
    while (offered < offerLimit && Date.now() - started < 10_000) {
      offered += chunk.length;
      if (hog.write(chunk)) continue;
      const drained = await Promise.race([
        new Promise<boolean>((r) => hog.once('drain', () => r(true))),
        sleep(500).then(() => false),
      ]);
      if (!drained) break;
    }
    const during = await rssOf(pid);
    // The service took at most its bound plus the kernel's socket buffers, not the offer.
    expect(offered).toBeLessThan(offerLimit);
    expect(during - baseline).toBeLessThan(64 << 20);
    expect(await metric(service, 'net_limit_hits_total', { limit: 'max_buffered' })).toBeGreaterThanOrEqual(1);

    // Another client is served normally meanwhile.
    const payload = randomBytes(256 * 1024);
    const other = await echo(await connectTo(service.port), payload);
    expect(other.data.equals(payload)).toBe(true);
    hog.destroy();
  });
});
