#!/usr/bin/env node
// The README's start command (`npm start`): installs and builds what is missing, then starts every service that
// exists on loopback with working defaults, as a non-root user (nobody, when started as root), prints where each
// listens, and stops them all on Ctrl-C (SIGINT) or SIGTERM, letting each drain.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { pnpm } from './pnpm.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);

// Ports below 32768 (the ephemeral range starts there) that a non-root user may bind.
const SERVICES = [
  { name: 'echo-tcp', args: ['--port', '15000', '--admin-port', '19000'], proto: 'tcp' },
  { name: 'daytime-tcp', args: ['--port', '1313', '--admin-port', '19001'], proto: 'tcp' },
  { name: 'udp-echo', args: ['--port', '15000', '--admin-port', '19002'], proto: 'udp' },
  { name: 'keepalive-probe', args: ['--port', '15001', '--admin-port', '19003'], proto: 'tcp' },
];

if (!process.argv.includes('--no-install')) {
  pnpm(['install', '--frozen-lockfile']);
  pnpm(['exec', 'turbo', 'run', 'build', '--output-logs=errors-only']);
}

// Never run network services as root: drop to nobody when we are root and nobody can read the checkout.
let credentials = {};
if (process.getuid?.() === 0) {
  const probe = spawnSync(
    process.execPath,
    ['-e', `require('fs').accessSync(${JSON.stringify(join(root, 'package.json'))})`],
    {
      uid: 65534,
      gid: 65534,
    },
  );
  if (probe.status === 0) credentials = { uid: 65534, gid: 65534 };
  else console.error('start: running as root, but user nobody cannot read this checkout; services run as root');
}

const host = process.env.NET_START_HOST ?? '127.0.0.1';
const children = [];
const ready = [];
for (const svc of SERVICES) {
  const bin = join(root, 'services', svc.name, 'dist', 'main.js');
  if (!existsSync(bin)) continue;
  const child = spawn(process.execPath, [bin, 'serve', '--host', host, ...svc.args, '--log-format', 'json'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    // A process group of its own: Ctrl-C reaches only this script, which sends each service one SIGTERM (a
    // service that got the terminal's SIGINT and then our SIGTERM would take it as a second signal and stop at once).
    detached: true,
    ...credentials,
  });
  children.push(child);
  ready.push(
    new Promise((resolve) => {
      const lines = createInterface({ input: child.stdout });
      lines.on('line', (line) => {
        let rec;
        try {
          rec = JSON.parse(line);
        } catch {
          rec = undefined;
        }
        if (rec && typeof rec.msg === 'string' && rec.msg.startsWith('ready:')) {
          resolve({ ...svc, endpoints: rec.endpoints, admin: rec.admin });
        } else if (rec && rec.level >= 40) {
          process.stdout.write(`${svc.name}: ${line}\n`);
        } else if (process.env.NET_START_VERBOSE) {
          process.stdout.write(`${svc.name}: ${line}\n`);
        }
      });
      child.once('exit', (code) => resolve({ ...svc, failed: code }));
    }),
  );
}

if (children.length === 0) {
  console.error('start: no service is built yet (services/*/dist/main.js)');
  process.exit(1);
}
const user = credentials.uid === 65534 ? 'nobody' : (process.env.USER ?? `uid ${process.getuid?.()}`);
console.log(`\nServices (running as ${user}; Ctrl-C stops them all):`);
for (const r of await Promise.all(ready)) {
  if (r.failed !== undefined) console.log(`  ${r.name.padEnd(16)} FAILED to start (exit ${r.failed})`);
  else console.log(`  ${r.name.padEnd(16)} ${r.proto} ${(r.endpoints ?? []).join(', ')}   admin ${r.admin ?? 'off'}`);
}
console.log('\nTry: node services/echo-tcp/dist/main.js client 127.0.0.1:15000 hello');

let stopping = false;
const stop = (signal) => {
  if (stopping) return;
  stopping = true;
  for (const c of children) c.kill(signal);
};
process.on('SIGINT', () => stop('SIGTERM'));
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('exit', () => stop('SIGTERM'));
await Promise.all(children.map((c) => (c.exitCode !== null ? null : new Promise((r) => c.once('exit', r)))));
