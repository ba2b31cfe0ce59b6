/**
 * The built bin on loopback: bad keepalive values stop every role with exit code 2 and a message naming the flag or
 * variable; `serve` logs the settings it read back, holds connections in both modes and enforces its limit.
 */
import net from 'node:net';
import { parseConfig } from '@net/core';
import { stopAllServices } from '@net/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { demoOptions, serveOptions, watchOptions } from '../src/config.js';
import { BIN, run, startServe } from './helpers.js';

afterEach(() => stopAllServices());

describe('invalid keepalive settings', () => {
  const cases: { args: string[]; env?: Record<string, string>; names: string; value: string }[] = [
    { args: ['--idle', '0'], names: '--idle', value: '0' },
    { args: ['--idle', '-1'], names: '--idle', value: '-1' },
    { args: ['--idle', '32768'], names: '--idle', value: '32768' },
    { args: ['--idle', '1.5'], names: '--idle', value: '1.5' },
    { args: ['--interval', '0'], names: '--interval', value: '0' },
    { args: ['--interval', '32768'], names: '--interval', value: '32768' },
    { args: ['--count', '0'], names: '--count', value: '0' },
    { args: ['--count', '128'], names: '--count', value: '128' },
    { args: ['--count', '-3'], names: '--count', value: '-3' },
    { args: ['--user-timeout', '-1'], names: '--user-timeout', value: '-1' },
    { args: ['--user-timeout', '2147483648'], names: '--user-timeout', value: '2147483648' },
    { args: [], env: { KEEPALIVE_PROBE_COUNT: '0' }, names: 'KEEPALIVE_PROBE_COUNT', value: '0' },
    { args: [], env: { KEEPALIVE_PROBE_IDLE: '99999' }, names: 'KEEPALIVE_PROBE_IDLE', value: '99999' },
  ];
  // Every case against every role's schema, in-process (the runtime turns a ConfigError into exit code 2)...
  const schemas = { serve: serveOptions(), watch: watchOptions(), demo: demoOptions() };
  for (const [role, schema] of Object.entries(schemas)) {
    it(`${role} refuses each value naming the flag or variable, the value and the accepted range`, () => {
      for (const c of cases) {
        expect(() => parseConfig(schema, { argv: c.args, env: c.env ?? {}, prefix: 'KEEPALIVE_PROBE' })).toThrow(
          new RegExp(`^invalid ${c.names} "${c.value.replace('.', '\\.')}": expected an integer from \\d+ to \\d+`),
        );
      }
    });
  }

  // ... and the real bin for a few, each role once.
  const spawned: [string, (typeof cases)[number]][] = [
    ['serve', cases[0] as (typeof cases)[number]],
    ['serve', cases[11] as (typeof cases)[number]],
    ['watch', cases[7] as (typeof cases)[number]],
    ['demo', cases[5] as (typeof cases)[number]],
  ];
  for (const [role, c] of spawned) {
    const shown = [...c.args, ...Object.entries(c.env ?? {}).map(([k, v]) => `${k}=${v}`)].join(' ');
    it(`${role} exits 2 naming ${c.names} for ${shown}`, async () => {
      const extra = role === 'watch' ? ['127.0.0.1:9'] : [];
      const r = await run(process.execPath, [BIN, role, ...c.args, ...extra], c.env ? { env: c.env } : {});
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`invalid ${c.names} "${c.value}"`);
      expect(r.stderr).toMatch(/expected an integer from \d+ to \d+/);
    });
  }
});

describe('serve', () => {
  it('logs at start the keepalive settings read back from the listening socket, and the detection window', async () => {
    const server = await startServe([
      '--port',
      '0',
      '--idle',
      '5',
      '--interval',
      '2',
      '--count',
      '4',
      '--user-timeout',
      '13000',
    ]);
    const line = await server.waitForLine((l) => typeof l.detectionSeconds === 'object');
    expect(line).toMatchObject({
      level: 30,
      keepalive: { idle: 5, interval: 2, count: 4 },
      userTimeoutMs: 13000,
      detectionSeconds: { earliest: 11, latest: 15 },
    });
    // Nothing per connection at info.
    const client = net.connect(server.port, '127.0.0.1');
    await new Promise((resolve) => client.once('connect', resolve));
    client.destroy();
    await server.stop();
    expect(server.lines.filter((l) => l.level === 30 && String(l.msg).startsWith('connection'))).toEqual([]);
  });

  it('echoes what a client sends with --mode echo and discards it by default', async () => {
    const echo = await startServe(['--port', '0', '--mode', 'echo']);
    const discard = await startServe(['--port', '0']);
    const exchange = (port: number) =>
      new Promise<string>((resolve, reject) => {
        const chunks: Buffer[] = [];
        const s = net.connect(port, '127.0.0.1', () => s.end('hello keepalive'));
        s.on('data', (c: Buffer) => chunks.push(c));
        s.on('error', reject);
        s.on('close', () => resolve(Buffer.concat(chunks).toString()));
      });
    expect(await exchange(echo.port)).toBe('hello keepalive');
    expect(await exchange(discard.port)).toBe('');
  });

  it('closes connections past --max-connections at once, counts them and warns once', async () => {
    const server = await startServe(['--port', '0', '--max-connections', '2', '--admin-port', '0']);
    const held: net.Socket[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const s = net.connect(server.port, '127.0.0.1');
        held.push(s);
        await new Promise((resolve) => s.once('connect', resolve));
      }
      for (let i = 0; i < 3; i++) {
        const extra = net.connect(server.port, '127.0.0.1');
        extra.on('error', () => {});
        await new Promise((resolve) => extra.once('close', resolve));
      }
      const warn = server.lines.filter((l) => l.level === 40 && l.limit === 'max_connections');
      expect(warn).toHaveLength(1);
      const admin = server.lines.find((l) => typeof l.admin === 'string')?.admin as string;
      const body = await (await fetch(`${admin}/metrics`)).text();
      expect(body).toMatch(/^net_connections_rejected_total\{[^}]*reason="max_connections"[^}]*\} 3$/m);
      expect(body).toMatch(/^net_connections_open 2$/m);
    } finally {
      for (const s of held) s.destroy();
    }
  });
  it('counts --max-connections over every listener: Node drops past it per listener, the service over the sum', async () => {
    const server = await startServe([
      '--port',
      '0',
      '--listen',
      '127.0.0.1:0',
      '--max-connections',
      '2',
      '--admin-port',
      '0',
      '--log-level',
      'debug',
    ]);
    const ready = server.lines.find((l) => String(l.msg).startsWith('ready:'));
    const ports = ((ready?.endpoints ?? []) as string[]).map((e) => Number(/:(\d+)$/.exec(e)?.[1]));
    expect(ports).toHaveLength(2);
    const held: net.Socket[] = [];
    const closed = (s: net.Socket) => new Promise((resolve) => s.once('close', resolve));
    try {
      // One on each listener: neither listener is at its own limit of 2, the service is.
      for (const port of ports) {
        const s = net.connect(port, '127.0.0.1');
        held.push(s);
        await new Promise((resolve) => s.once('connect', resolve));
      }
      // A client's connect completes before the server accepts: wait until the service holds both (debug lines).
      let accepted = 0;
      await server.waitForLine((l) => l.msg === 'connection: keepalive read back' && ++accepted === 2);
      for (const port of [ports[0], ports[1], ports[0]] as number[]) {
        const extra = net.connect(port, '127.0.0.1');
        extra.on('error', () => {});
        await closed(extra);
      }
      const admin = server.lines.find((l) => typeof l.admin === 'string')?.admin as string;
      const body = await (await fetch(`${admin}/metrics`)).text();
      expect(body).toMatch(/^net_connections_rejected_total\{[^}]*reason="max_connections"[^}]*\} 3$/m);
      expect(body).toMatch(/^net_connections_open 2$/m);
    } finally {
      for (const s of held) s.destroy();
    }
  });
});
