import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { portOf, type ServiceProcess, stopAllServices } from '@net/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEcho } from './helpers.js';

const hasSocat = spawnSync('socat', ['-V'], { stdio: 'ignore' }).status === 0;
// netcat-openbsd by the name its Debian package installs: plain `nc` may be ncat or busybox nc, which lack -N.
const hasNc = spawnSync('sh', ['-c', 'nc.openbsd -h 2>&1 | grep -q -- -N'], { stdio: 'ignore' }).status === 0;

/** Runs a tool with `input` on stdin; resolves with its exit code and stdout. */
function run(cmd: string, args: string[], input: Buffer): Promise<{ code: number | null; stdout: Buffer }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    const out: Buffer[] = [];
    proc.stdout.on('data', (c: Buffer) => out.push(c));
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${cmd} did not exit within 10 s`));
    }, 10_000);
    proc.on('error', reject);
    proc.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out) });
    });
    proc.stdin.on('error', () => {});
    proc.stdin.end(input);
  });
}

describe('interoperation with Debian clients', () => {
  let service: ServiceProcess;
  let dir: string;
  let socketPath: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'echo-tcp-interop-'));
    socketPath = join(dir, 'echo.sock');
    service = await startEcho(['--listen', '[::1]:0', '--listen', `unix:${socketPath}`]);
  });
  afterAll(async () => {
    await stopAllServices();
    rmSync(dir, { recursive: true, force: true });
  });

  it.skipIf(!hasSocat)(
    'socat gets back every byte of 8 MiB over IPv4, IPv6 and a Unix socket [needs socat]',
    async () => {
      const v6 = portOf(service.endpoints[1] ?? '');
      const targets = [`TCP4:127.0.0.1:${service.port}`, `TCP6:[::1]:${v6}`, `UNIX-CONNECT:${socketPath}`];
      await Promise.all(
        targets.map(async (target) => {
          const payload = randomBytes(8 << 20);
          // -t 5: after stdin's EOF socat half-closes and waits up to 5 s for the echo to end.
          const r = await run('socat', ['-t', '5', '-', target], payload);
          expect(r.code, target).toBe(0);
          expect(r.stdout.length, target).toBe(payload.length);
          expect(r.stdout.equals(payload), target).toBe(true);
        }),
      );
    },
  );

  it.skipIf(!hasNc)('netcat-openbsd (-N: shutdown after EOF) gets back every byte [needs nc.openbsd]', async () => {
    const payload = randomBytes(1 << 20);
    const r = await run('nc.openbsd', ['-N', '127.0.0.1', String(service.port)], payload);
    expect(r.code).toBe(0);
    expect(r.stdout.equals(payload)).toBe(true);
  });
});
