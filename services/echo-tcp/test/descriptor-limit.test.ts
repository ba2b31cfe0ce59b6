/**
 * echo-tcp under a small descriptor limit (RLIMIT_NOFILE 256, set with prlimit): --max-connections is lowered to
 * what the descriptors allow, so connections past it are refused and counted instead of being closed silently by
 * libuv's EMFILE handling, and the service keeps serving.
 */
import { spawnSync } from 'node:child_process';
import type net from 'node:net';
import { httpGet, sampleValue, scrapeMetrics, startService, stopAllServices } from '@net/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { BIN, connectTo, echo, receive } from './helpers.js';

const hasPrlimit = spawnSync('prlimit', ['--version']).status === 0;

afterEach(stopAllServices);

/** Starts `echo-tcp serve` under `prlimit --nofile=N:N` (prlimit execs node: same pid) and waits for its ready line. */
async function startUnderLimit(nofile: number, args: string[]) {
  const service = await startService(BIN, ['serve', '--port', '0', '--log-format', 'json', ...args], {
    wrapper: ['prlimit', `--nofile=${nofile}:${nofile}`, '--'],
  });
  return { ...service, admin: service.adminUrl as string };
}

/** Resolves true once `socket` echoes a byte, false when it closes first (refused) or after 5 s. */
function served(socket: net.Socket): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), 5000);
    socket.once('data', () => {
      clearTimeout(timer);
      resolve(true);
    });
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(false);
    });
    socket.on('error', () => {});
    socket.write('x');
  });
}

describe('descriptor limit', () => {
  it.skipIf(!hasPrlimit)(
    'under RLIMIT_NOFILE 256 with --max-connections 10000: warns once, serves 192, refuses and counts the rest of 400 clients, and serves new ones after others leave',
    async () => {
      const service = await startUnderLimit(256, ['--max-connections', '10000', '--admin-port', '0']);
      const starting = service.lines.find((l) => l.msg === 'starting');
      expect(starting?.descriptorLimit).toEqual({ soft: 256, hard: 256 });
      const warnings = service.lines.filter((l) => String(l.msg).startsWith('--max-connections 10000 exceeds'));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatchObject({ level: 40, effective: 192 });

      // 400 clients, in batches of 50 so that the accept queue never overflows.
      const clients: net.Socket[] = [];
      const outcomes: boolean[] = [];
      for (let batch = 0; batch < 8; batch++) {
        const sockets = await Promise.all(Array.from({ length: 50 }, () => connectTo(service.port)));
        clients.push(...sockets);
        outcomes.push(...(await Promise.all(sockets.map(served))));
      }
      const kept = clients.filter((_, i) => outcomes[i]);
      expect(kept).toHaveLength(192);

      const metrics = await scrapeMetrics(`${service.admin}/metrics`);
      expect(sampleValue(metrics, 'net_connections_rejected_total', { reason: 'max_connections' })).toBe(208);
      expect(sampleValue(metrics, 'net_connections_open')).toBe(192);
      expect(sampleValue(metrics, 'net_accept_errors_total') ?? 0).toBe(0);
      expect((await httpGet(`${service.admin}/healthz`)).status).toBe(200);
      // The limit warning is rate-limited: one line for the whole burst.
      expect(service.lines.filter((l) => String(l.msg).includes('--max-connections (192) reached'))).toHaveLength(1);

      // 50 leave; 50 newcomers are served, each byte for byte.
      const leaving = kept.splice(0, 50);
      await Promise.all(leaving.map((s) => new Promise((resolve) => s.once('close', resolve).destroy())));
      for (let i = 0; i < 100; i++) {
        const open = sampleValue(await scrapeMetrics(`${service.admin}/metrics`), 'net_connections_open');
        if (open === 142) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const newcomers = await Promise.all(Array.from({ length: 50 }, () => connectTo(service.port)));
      for (const s of newcomers) {
        const back = receive(s, 4);
        s.write('next');
        expect((await back).toString()).toBe('next');
      }
      expect((await echo(await connectTo(service.port), Buffer.from('one too many'))).data.length).toBe(0);
      for (const s of [...kept, ...newcomers, ...clients]) s.destroy();
    },
  );
});
