import { fileURLToPath } from 'node:url';
import { runToExit, stopAllServices } from '@net/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { BIN, connectTo, echo, randomPayload, startEcho } from './helpers.js';

/** Preloaded to stand for a Node without process.binding: the fast path's internals are then missing. */
const NO_BINDING = ['--require', fileURLToPath(new URL('./fixtures/no-process-binding.cjs', import.meta.url))];

afterEach(() => stopAllServices());

/** The engine a started service logged ('TCP I/O', once per process). */
async function engineOf(service: Awaited<ReturnType<typeof startEcho>>): Promise<unknown> {
  return (await service.waitForLine((l) => l.msg === 'TCP I/O')).io;
}

async function echoesBack(port: number): Promise<void> {
  const payload = randomPayload(200_000, 300_000);
  const result = await echo(await connectTo(port), payload);
  expect(result.how).toBe('eof');
  expect(result.data.equals(payload)).toBe(true);
}

describe('echo-tcp --io', () => {
  it('auto takes raw handles on this Node, and raw, fast and stream do what they say', async () => {
    for (const io of ['auto', 'raw', 'fast', 'stream'] as const) {
      const service = await startEcho(['--io', io]);
      expect(await engineOf(service), io).toBe(io === 'auto' ? 'raw' : io);
      expect(service.lines.filter((l) => l.level === 40)).toEqual([]);
      await echoesBack(service.port);
    }
  });

  it('stream needs none of the internals: no warning where they are missing, and it echoes', async () => {
    const service = await startEcho(['--io', 'stream'], { execArgv: NO_BINDING });
    expect(await engineOf(service)).toBe('stream');
    expect(service.lines.filter((l) => l.level === 40)).toEqual([]);
    await echoesBack(service.port);
  });

  it('follows ECHO_TCP_IO without a flag: this suite runs once on each engine (vitest.config.ts, vitest.fast.config.ts, vitest.stream.config.ts)', async () => {
    const service = await startEcho([]);
    expect(['raw', 'fast', 'stream']).toContain(process.env.ECHO_TCP_IO);
    expect(await engineOf(service)).toBe(process.env.ECHO_TCP_IO);
  });

  it('auto falls back to streams with one warning that says what is missing, and still echoes', async () => {
    const service = await startEcho(['--io', 'auto'], { execArgv: NO_BINDING });
    expect(await engineOf(service)).toBe('stream');
    const warnings = service.lines.filter((l) => l.msg?.startsWith('fast path unavailable'));
    expect(warnings).toHaveLength(1);
    expect(String(warnings[0]?.reason)).toMatch(/stream_wrap/);
    await echoesBack(service.port);
  });

  it('refuses fast where the internals are missing (exit 2), naming the flag or the variable and the reason', async () => {
    const flag = await runToExit(BIN, ['serve', '--port', '0', '--io', 'fast'], { execArgv: NO_BINDING });
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/invalid --io "fast": expected auto or stream on this Node v\d+.*stream_wrap/);
    const env = await runToExit(BIN, ['serve', '--port', '0'], { execArgv: NO_BINDING, env: { ECHO_TCP_IO: 'fast' } });
    expect(env.code).toBe(2);
    expect(env.stderr).toMatch(/invalid ECHO_TCP_IO "fast"/);
  });

  it('auto falls back to streams where the fence says no (NET_NODE_INTERNALS=off): one warning naming it, and it echoes', async () => {
    const service = await startEcho(['--io', 'auto'], { env: { NET_NODE_INTERNALS: 'off' } });
    expect(await engineOf(service)).toBe('stream');
    const warnings = service.lines.filter((l) => l.level === 40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.msg).toMatch(/^fast path unavailable/);
    expect(String(warnings[0]?.reason)).toMatch(/NET_NODE_INTERNALS=off/);
    await echoesBack(service.port);
  });

  it('refuses fast where the fence says no (NET_NODE_INTERNALS=off), exit 2 with the reason', async () => {
    const r = await runToExit(BIN, ['serve', '--port', '0', '--io', 'fast'], { env: { NET_NODE_INTERNALS: 'off' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/invalid --io "fast": expected auto or stream on this Node v\d+.*NET_NODE_INTERNALS=off/);
  });

  it('refuses raw where the internals are missing or the fence says no, exit 2 with the reason', async () => {
    const off = await runToExit(BIN, ['serve', '--port', '0', '--io', 'raw'], { env: { NET_NODE_INTERNALS: 'off' } });
    expect(off.code).toBe(2);
    expect(off.stderr).toMatch(/invalid --io "raw": expected auto or stream on this Node v\d+.*NET_NODE_INTERNALS=off/);
    const env = await runToExit(BIN, ['serve', '--port', '0'], { execArgv: NO_BINDING, env: { ECHO_TCP_IO: 'raw' } });
    expect(env.code).toBe(2);
    expect(env.stderr).toMatch(/invalid ECHO_TCP_IO "raw": expected auto or stream on this Node v\d+.*stream_wrap/);
  });

  it('refuses an unknown engine with the accepted values (exit 2)', async () => {
    const r = await runToExit(BIN, ['serve', '--io', 'turbo']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--io "turbo": expected one of auto, stream, fast/);
  });
});
