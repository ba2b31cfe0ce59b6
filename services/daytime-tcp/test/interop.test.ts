import { execFile, spawnSync } from 'node:child_process';
import { clientExitCode, parseEndpoint } from '@net/core';
import { spawnLogged, stopAllServices } from '@net/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { fetchDaytime, printable } from '../src/client.js';
import { BIN, startServer } from './helpers.js';

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
// netcat-openbsd by the name its Debian package installs: plain `nc` may be ncat or busybox, whose flags differ.
const NC = 'nc.openbsd';
const HAS_NC = has(NC);
const HAS_SOCAT = has('socat');
const IS_ROOT = process.getuid?.() === 0;
const HAS_SETPRIV = has('setpriv');

afterEach(() => stopAllServices());

/** Runs a command with a time limit; resolves with its exit code and output (bytes as latin1). */
function run(cmd: string, args: string[], input?: string) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    const child = execFile(cmd, args, { timeout: 10_000, encoding: 'latin1' }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    if (input === undefined) child.stdin?.end();
    else child.stdin?.end(input);
  });
}

const CTIME = /^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}\r\n$/;

describe('interoperation with Debian clients and servers', () => {
  it.skipIf(!HAS_NC)(
    'answers netcat-openbsd, which reads until the server closes (skipped without nc.openbsd)',
    async () => {
      const { port } = await startServer();
      const r = await run(NC, ['127.0.0.1', String(port)]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(CTIME);
    },
  );

  it.skipIf(!HAS_NC)(
    'answers netcat-openbsd over IPv6 after it sent a line and shut down (skipped without nc.openbsd)',
    async () => {
      const { port } = await startServer(['--host', '::1']);
      const r = await run(NC, ['-N', '::1', String(port)], 'hello\r\n');
      expect(r.stdout).toMatch(CTIME);
    },
  );

  it.skipIf(!HAS_SOCAT)('answers socat in read-only mode (skipped without socat)', async () => {
    const { port } = await startServer(['--format', 'rfc3339']);
    const r = await run('socat', ['-u', `TCP:127.0.0.1:${port}`, 'STDOUT']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d\r\n$/);
  });

  it.skipIf(!HAS_SOCAT)('our client reads the date from a socat daytime server (skipped without socat)', async () => {
    // socat needs a fixed port: one below the ephemeral range (docs/measurements.md §8), unlikely to be taken.
    const port = 21_313;
    spawnLogged('socat', [`TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork`, 'SYSTEM:"date; exit 0"']);
    let result = { code: 69, out: '' };
    // Wait for socat to listen: retry while the connection is refused (bounded: 50 x 50 ms).
    for (let i = 0; i < 50 && result.code === 69; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 50));
      try {
        const answer = await fetchDaytime(parseEndpoint(`127.0.0.1:${port}`), {
          timeoutMs: 2000,
          maxBytes: 1024,
          family: 0,
        });
        result = { code: 0, out: printable(answer) };
      } catch (e) {
        result = { code: clientExitCode(e), out: (e as Error).message };
      }
    }
    expect(result.code).toBe(0);
    expect(result.out).toMatch(/\d\d:\d\d:\d\d/);
  });

  it.skipIf(!HAS_SOCAT)('answers socat over UDP with --udp (skipped without socat)', async () => {
    const { port } = await startServer(['--udp']);
    const r = await run('socat', ['-T', '2', '-', `UDP:127.0.0.1:${port}`], 'what time is it?\n');
    expect(r.stdout).toMatch(CTIME);
  });
});

describe('binding the privileged daytime port', () => {
  // Root without CAP_NET_BIND_SERVICE is refused a port below ip_unprivileged_port_start exactly as an ordinary
  // user is (capabilities(7)), and unlike a switch to uid 65534 it can still read a checkout that other users cannot
  // traverse (a clone under root's home or a mode-0700 temporary directory). Dropping the capability from the
  // bounding and inheritable sets keeps it out of the service's permitted set across execve.
  it.skipIf(!IS_ROOT || !HAS_SETPRIV)(
    'explains how to bind port 13 when the process lacks CAP_NET_BIND_SERVICE (needs root and setpriv to drop it)',
    async () => {
      const r = await run('setpriv', [
        '--bounding-set=-net_bind_service',
        '--inh-caps=-net_bind_service',
        process.execPath,
        BIN,
        '--port',
        '13',
        '--log-level',
        'silent',
      ]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/cannot listen on 127\.0\.0\.1:13: permission denied/);
      expect(r.stderr).toMatch(/CAP_NET_BIND_SERVICE/);
      expect(r.stderr).toMatch(/ip_unprivileged_port_start/);
      expect(r.stderr).toMatch(/--port 1313 or DAYTIME_TCP_PORT=1313/);
    },
  );
});
