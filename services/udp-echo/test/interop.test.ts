import { spawn, spawnSync } from 'node:child_process';
import { stopAllServices } from '@net/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { startEcho } from './helpers.js';

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/** Runs a command with `input` on stdin; resolves with its stdout once it exits (killed after `timeoutMs`). */
function runWithInput(
  cmd: string,
  args: string[],
  input: string,
  timeoutMs = 5000,
): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      stdout += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout });
    });
    child.stdin.end(input);
  });
}

afterEach(stopAllServices);

describe('interoperation with Debian clients', () => {
  it.skipIf(!has('socat'))('socat UDP client gets its line back (skipped when socat is not installed)', async () => {
    const s = await startEcho();
    // -t 1: after stdin's EOF, wait up to 1 s for the echo before exiting.
    const r = await runWithInput('socat', ['-t', '1', '-', `UDP:127.0.0.1:${s.port}`], 'hello from socat\n');
    expect(r.stdout).toBe('hello from socat\n');
  });

  it.skipIf(!has('socat'))('socat over IPv6 gets its line back (skipped when socat is not installed)', async () => {
    const s = await startEcho(['--host', '::1']);
    const r = await runWithInput('socat', ['-t', '1', '-', `UDP6:[::1]:${s.port}`], 'hello over IPv6\n');
    expect(r.stdout).toBe('hello over IPv6\n');
  });

  // netcat-openbsd by the name its Debian package installs: plain `nc` may be ncat or busybox nc, whose -w and
  // UDP behaviour differ (ncat quits at stdin's EOF, before the echo arrives).
  it.skipIf(!has('nc.openbsd'))(
    'nc.openbsd -u (netcat-openbsd) gets its line back (skipped when netcat-openbsd is not installed)',
    async () => {
      const s = await startEcho();
      // -w 1: exit after 1 s without traffic. (-q would quit at stdin's EOF before the echo is read, in UDP mode.)
      const r = await runWithInput('nc.openbsd', ['-u', '-w', '1', '127.0.0.1', String(s.port)], 'hello from nc\n');
      expect(r.stdout).toBe('hello from nc\n');
    },
  );
});
