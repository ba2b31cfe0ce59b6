import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { portOf, type ServiceProcess, stopAllServices } from '@net/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, startEcho } from './helpers.js';

const hasOpenssl = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;

/** A self-signed P-256 certificate for `cn`, written to dir/name.{crt,key}. */
function makeCert(dir: string, name: string, cn: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  const r = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      `/CN=${cn}`,
    ],
    { stdio: 'ignore' },
  );
  if (r.status !== 0) throw new Error('openssl req failed');
  return { cert, key };
}

function connectTls(port: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => resolve(socket));
    socket.once('error', reject);
  });
}

describe.skipIf(!hasOpenssl)('TLS listener [needs openssl to make a test certificate]', () => {
  let dir: string;
  let files: { cert: string; key: string };
  let service: ServiceProcess;
  let tlsPort: number;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'echo-tcp-tls-'));
    files = makeCert(dir, 'live', 'first.test');
    service = await startEcho(['--tls-listen', '127.0.0.1:0', '--tls-cert', files.cert, '--tls-key', files.key]);
    tlsPort = portOf(service.endpoints[1] ?? '');
  });
  afterAll(async () => {
    await stopAllServices();
    rmSync(dir, { recursive: true, force: true });
  });

  it('echoes every byte over TLS beside the plain listener, through the client half-close', async () => {
    const socket = await connectTls(tlsPort);
    expect(socket.getPeerCertificate().subject?.CN).toBe('first.test');
    const payload = randomBytes(2 << 20);
    const got = collect(socket);
    socket.end(payload);
    const result = await got;
    expect(result.data.length).toBe(payload.length);
    expect(result.data.equals(payload)).toBe(true);
  });

  it('picks up a renewed certificate on SIGHUP without a restart', async () => {
    const next = makeCert(dir, 'next', 'second.test');
    renameSync(next.cert, files.cert);
    renameSync(next.key, files.key);
    service.kill('SIGHUP');
    await service.waitForLine((l) => l.msg === 'reloaded', 5000);
    const socket = await connectTls(tlsPort);
    expect(socket.getPeerCertificate().subject?.CN).toBe('second.test');
    socket.destroy();
  });

  it('keeps the previous certificate when the reload fails', async () => {
    rmSync(files.key);
    service.kill('SIGHUP');
    const line = await service.waitForLine((l) => l.msg === 'reload failed; keeping the previous state', 5000);
    expect(JSON.stringify(line.err)).toContain('--tls-key');
    const socket = await connectTls(tlsPort);
    expect(socket.getPeerCertificate().subject?.CN).toBe('second.test');
    socket.destroy();
  });
});
