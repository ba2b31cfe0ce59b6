/**
 * The shipped infra/nginx/nginx.conf (nginx stream, UDP) run for real with Debian's nginx on loopback in front of
 * two udp-echo processes. The file's compose addresses (udp-echo-N:7, listen 7) are replaced by loopback ports;
 * nothing else changes (its include of /etc/nginx/modules-enabled loads Debian's dynamic stream module).
 */
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  freePort,
  hasCommand,
  infraDir,
  type Managed,
  portOf,
  type ServiceProcess,
  startProcess,
  startService,
} from './support.js';

const STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';
const enabled = hasCommand('nginx') && existsSync(STREAM_MODULE);

/** Sends one datagram from a fresh socket (a new client port: nginx hashes on address and port) and awaits the reply. */
function udpExchange(port: number, payload: Buffer, timeoutMs = 3000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error(`no reply within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('message', (msg) => {
      clearTimeout(timer);
      socket.close();
      resolve(msg);
    });
    socket.send(payload, port, '127.0.0.1');
  });
}

describe.skipIf(!enabled)('nginx stream in front of two udp-echo replicas (infra/nginx/nginx.conf)', () => {
  const replicas: ServiceProcess[] = [];
  let nginx: Managed | undefined;
  let lbPort = 0;
  let dir = '';

  beforeAll(async () => {
    for (const name of ['udp-echo-1', 'udp-echo-2']) {
      // As in compose: the per-source limits are off on the replicas, nginx is their only source.
      replicas.push(
        await startService('udp-echo', [
          '--host',
          '127.0.0.1',
          '--port',
          '0',
          '--instance',
          name,
          '--admin-port',
          '0',
          '--rate-limit-packets',
          '0',
          '--rate-limit-bytes',
          '0',
        ]),
      );
    }
    lbPort = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'net-infra-nginx-'));
    let conf = readFileSync(join(infraDir, 'nginx', 'nginx.conf'), 'utf8');
    const substitutions: Array<[string, string]> = [
      ['server udp-echo-1:7 ', `server 127.0.0.1:${portOf(replicas[0]?.endpoints[0] ?? '')} `],
      ['server udp-echo-2:7 ', `server 127.0.0.1:${portOf(replicas[1]?.endpoints[0] ?? '')} `],
      ['listen 7 udp', `listen 127.0.0.1:${lbPort} udp`],
      ['pid /tmp/nginx-udp-echo.pid;', `pid ${join(dir, 'nginx.pid')};`],
    ];
    for (const [from, to] of substitutions) {
      expect(conf.includes(from), `nginx.conf contains "${from}"`).toBe(true);
      conf = conf.replace(from, to);
    }
    // The file's own `include /etc/nginx/modules-enabled/*.conf` loads Debian's dynamic stream module, by a path
    // relative to the prefix (`modules/ngx_stream_module.so`): the prefix here is `dir`, so link its modules there.
    writeFileSync(join(dir, 'nginx.conf'), conf);
    symlinkSync(dirname(STREAM_MODULE), join(dir, 'modules'));
    nginx = startProcess('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', 'stderr', '-g', 'daemon off;']);
    // nginx prints nothing when it starts well: the first answered datagram is the readiness signal.
    const proxy = nginx;
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (proxy.child.exitCode !== null) throw new Error(`nginx exited: ${proxy.lines.join('\n')}`);
      try {
        await udpExchange(lbPort, Buffer.from('ready?'), 500);
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
      }
    }
  });

  afterAll(async () => {
    await nginx?.stop('SIGQUIT');
    await Promise.all(replicas.map((r) => r.stop('SIGKILL')));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('echoes every datagram byte-exact through nginx and spreads clients over both replicas', async () => {
    for (let i = 0; i < 40; i++) {
      const payload = Buffer.from(`datagram ${i} ${'x'.repeat(i * 37)}`);
      expect((await udpExchange(lbPort, payload)).equals(payload)).toBe(true);
    }
    const received = await Promise.all(replicas.map((r) => datagramsSent(r)));
    console.log('infra nginx: datagrams per replica', received);
    expect(received.every((n) => n > 0)).toBe(true);
  });

  it('keeps echoing after a replica dies: at most max_fails (2) clients get a zero-length reply, then nginx avoids it', async () => {
    await replicas[1]?.stop('SIGKILL');
    // Clients whose port hashes to the dead replica get an empty datagram (never someone else's echo) until
    // max_fails=2 failed sessions mark it failed for fail_timeout; from then on every client is echoed.
    const replies: number[] = [];
    for (let i = 0; i < 20; i++) {
      const payload = Buffer.from(`after the kill ${i}`);
      const reply = await udpExchange(lbPort, payload).catch(() => undefined);
      if (reply !== undefined) {
        expect(reply.length === 0 || reply.equals(payload)).toBe(true);
        replies.push(reply.length);
      }
    }
    console.log(
      `infra nginx: after a replica died, ${replies.filter((n) => n > 0).length}/20 echoed, ${replies.filter((n) => n === 0).length} empty replies`,
    );
    const empty = replies.filter((n) => n === 0).length;
    expect(empty).toBeLessThanOrEqual(2);
    expect(replies.length).toBe(20);
  });

  /** The replica's `net_datagrams_sent_total`, from its admin endpoint's /metrics. */
  async function datagramsSent(replica: ServiceProcess): Promise<number> {
    const text = await (await fetch(`${String(replica.adminUrl)}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('net_datagrams_sent_total'));
    return Number(line?.split(' ').pop() ?? Number.NaN);
  }
});
