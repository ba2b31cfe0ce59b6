#!/usr/bin/env node
// The README's start command (`npm start`): installs and builds what is missing, then starts every service that
// exists on loopback with working defaults, as a non-root user (nobody, when started as root), prints where each
// listens, and stops them all on SIGINT or SIGTERM, letting each drain.
//
// It behaves as a process manager (systemd, tmux, foreman, a container runtime) expects of one process:
// - SIGINT or SIGTERM to this process alone stops every service: each runs in a process group of its own, so only
//   this script forwards the stop (one SIGTERM each) and then waits for all of them. The package.json script
//   `exec`s node, so npm's own forwarding of SIGINT/SIGTERM (npm 7 and later) reaches this process, not a `sh -c`
//   that would die and leave the services behind. Should the parent vanish anyway (npm killed with SIGKILL), the
//   services are stopped too.
// - A service that exits on its own is reported (name, exit code or signal) and the rest are stopped, as foreman
//   does: the run ends with status 1, so the manager sees the failure.
// - While they drain it says which are still draining and when each stopped; a second Ctrl-C (SIGINT) forces
//   them (SIGKILL) and says so.
// Exit status: 0 when every service started and stopped cleanly on request, else 1.
// Environment: NET_START_PORTS=0 gives every service and admin port to the kernel (port 0), for tests and for a
// machine where the default ports are taken; NET_START_HOST (default 127.0.0.1); NET_START_VERBOSE=1 prints every
// log line.
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
  { name: 'echo-tcp', port: 15000, adminPort: 19000, proto: 'tcp' },
  { name: 'daytime-tcp', port: 1313, adminPort: 19001, proto: 'tcp' },
  { name: 'udp-echo', port: 15000, adminPort: 19002, proto: 'udp' },
  { name: 'keepalive-probe', port: 15001, adminPort: 19003, proto: 'tcp' },
];

const portsOverride = process.env.NET_START_PORTS;
if (portsOverride !== undefined && portsOverride !== '' && portsOverride !== '0') {
  console.error(
    `start: invalid NET_START_PORTS "${portsOverride}": expected 0 (every port chosen by the kernel) or unset (the defaults)`,
  );
  process.exit(2);
}
const anyPort = portsOverride === '0';

// Between the first SIGINT and a second one that forces: a Ctrl-C in a terminal reaches this process twice, once
// from the terminal (same process group as npm) and once forwarded by npm, within milliseconds of each other.
const FORCE_AFTER_MS = 1000;
// How often the drain progress line is printed.
const PROGRESS_EVERY_MS = 2000;

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
    { uid: 65534, gid: 65534, stdio: 'ignore' },
  );
  if (probe.error === undefined && probe.status === 0) credentials = { uid: 65534, gid: 65534 };
  else console.error('start: running as root, but user nobody cannot read this checkout; services run as root');
}

/** How a child ended, for people: "exit 3" or "signal SIGKILL". */
const ending = (code, signal) => (signal ? `signal ${signal}` : `exit ${code}`);

const host = process.env.NET_START_HOST ?? '127.0.0.1';
/** @type {{ name: string, proto: string, child: import('node:child_process').ChildProcess, exited: Promise<void>, ended?: string, clean?: boolean }[]} */
const running = [];
let stopping = false;
let forced = false;
let failed = false;

for (const svc of SERVICES) {
  const bin = join(root, 'services', svc.name, 'dist', 'main.js');
  if (!existsSync(bin)) continue;
  const port = String(anyPort ? 0 : svc.port);
  const adminPort = String(anyPort ? 0 : svc.adminPort);
  const args = [bin, 'serve', '--host', host, '--port', port, '--admin-port', adminPort, '--log-format', 'json'];
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'inherit'],
    // A process group of its own: a terminal's Ctrl-C reaches only this script, which sends each service one
    // SIGTERM (a service that got the terminal's SIGINT and then our SIGTERM would take it as a second signal and
    // stop at once, without draining).
    detached: true,
    ...credentials,
  });
  const entry = { ...svc, child, ready: undefined, exited: undefined };
  entry.ready = new Promise((resolve) => {
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      let rec;
      try {
        rec = JSON.parse(line);
      } catch {
        rec = undefined;
      }
      if (rec && typeof rec.msg === 'string' && rec.msg.startsWith('ready:')) {
        resolve({ endpoints: rec.endpoints, admin: rec.admin });
      } else if ((rec && rec.level >= 40) || process.env.NET_START_VERBOSE) {
        process.stdout.write(`${svc.name}: ${line}\n`);
      }
    });
    child.once('exit', () => resolve(undefined));
  });
  entry.exited = new Promise((resolve) => {
    child.once('error', (err) => {
      entry.ended = `not started (${err.message})`;
      entry.clean = false;
      resolve();
    });
    child.once('exit', (code, signal) => {
      entry.ended = ending(code, signal);
      entry.clean = stopping && !forced && code === 0;
      if (!stopping) {
        failed = true;
        console.error(`start: ${svc.name} exited on its own (${entry.ended}); stopping the others`);
        stop('a service exited');
      } else if (!forced) {
        console.log(`  ${svc.name} stopped (${entry.ended})`);
      }
      resolve();
    });
  });
  running.push(entry);
}

if (running.length === 0) {
  console.error('start: no service is built yet (services/*/dist/main.js)');
  process.exit(1);
}

/** Sends every live service one SIGTERM and reports the drain until all have exited. */
function stop(reason) {
  if (stopping) return;
  stopping = true;
  const live = running.filter((s) => s.ended === undefined);
  if (live.length > 0) {
    console.log(`\nstart: ${reason}: draining ${live.map((s) => s.name).join(', ')} (Ctrl-C again to force)`);
  }
  for (const s of live) s.child.kill('SIGTERM');
  const progress = setInterval(() => {
    const still = running.filter((s) => s.ended === undefined).map((s) => s.name);
    if (still.length > 0 && !forced) console.log(`start: still draining: ${still.join(', ')}`);
  }, PROGRESS_EVERY_MS);
  progress.unref();
}

/** SIGKILLs every service still running. */
function force() {
  if (forced) return;
  forced = true;
  const still = running.filter((s) => s.ended === undefined);
  console.log(`start: forced: SIGKILL to ${still.map((s) => s.name).join(', ') || 'nothing (all stopped)'}`);
  for (const s of still) s.child.kill('SIGKILL');
}

let firstSigint = 0;
process.on('SIGINT', () => {
  if (!stopping) {
    firstSigint = Date.now();
    stop('SIGINT');
  } else if (firstSigint === 0 || Date.now() - firstSigint >= FORCE_AFTER_MS) {
    force();
  }
});
process.on('SIGTERM', () => stop('SIGTERM'));
// Whatever ends this script, no service outlives it holding its port.
process.on('exit', () => {
  for (const s of running) if (s.ended === undefined) s.child.kill('SIGKILL');
});
// Re-parented (npm or the shell was SIGKILLed): nobody is left to send the stop, so stop now.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) stop('parent process exited');
}, 1000).unref();

const user = credentials.uid === 65534 ? 'nobody' : (process.env.USER ?? `uid ${process.getuid?.()}`);
const started = await Promise.all(running.map((s) => s.ready));
if (!stopping) {
  console.log(`\nServices (running as ${user}; Ctrl-C stops them all):`);
  running.forEach((s, i) => {
    const r = started[i];
    if (r === undefined) console.log(`  ${s.name.padEnd(16)} FAILED to start (${s.ended ?? 'no ready line'})`);
    else console.log(`  ${s.name.padEnd(16)} ${s.proto} ${(r.endpoints ?? []).join(', ')}   admin ${r.admin ?? 'off'}`);
  });
  const echo = started[running.findIndex((s) => s.name === 'echo-tcp')]?.endpoints?.[0];
  if (echo) console.log(`\nTry: pnpm exec echo-tcp client ${echo} hello`);
}

await Promise.all(running.map((s) => s.exited));
if (forced) console.error('start: stopped by force; services did not finish their drain');
const unclean = running.filter((s) => !s.clean).map((s) => `${s.name} (${s.ended})`);
if (unclean.length > 0) console.error(`start: not stopped cleanly: ${unclean.join(', ')}`);
process.exitCode = failed || forced || unclean.length > 0 ? 1 : 0;
