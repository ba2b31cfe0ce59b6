/**
 * A real dead peer for tests (docs/measurements.md §1.4): two network namespaces joined by a veth pair, 192.0.2.1 in `a` and
 * 192.0.2.2 in `b` (TEST-NET-1, RFC 5737: never routed, and private to these namespaces anyway). `blackhole()` makes
 * `b` a host that vanished: an nft table in `b` drops everything in and out, so probes get no answer and no RST.
 * Names carry this process's pid and a counter, so parallel runs never touch each other's namespaces.
 */
import { execFileSync } from 'node:child_process';

let counter = 0;

/** Two joined namespaces. */
export interface NetnsPair {
  /** Namespace (and veth) names. */
  a: string;
  b: string;
  ipA: string;
  ipB: string;
  /** Drops every packet in and out of `ns` (default `b`) with nft; returns when (ms since the epoch) it took effect. */
  blackhole(ns?: string): { start: number; end: number };
  /** Sets b's end of the veth down instead (the cable pulled). */
  linkDown(): { start: number; end: number };
  /** Runs a command inside a namespace and returns its stdout. */
  exec(ns: string, command: string, args: readonly string[]): string;
  /** Deletes both namespaces (their veth ends go with them). Safe to call twice. */
  destroy(): void;
}

function ip(args: readonly string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000 });
}

/** Creates the pair; on a failure half-way, removes what was created and rethrows. */
export function createNetnsPair(): NetnsPair {
  const id = `kp${process.pid}${String.fromCharCode(97 + (counter++ % 26))}`;
  const a = `${id}a`;
  const b = `${id}b`;
  const pair: NetnsPair = {
    a,
    b,
    ipA: '192.0.2.1',
    ipB: '192.0.2.2',
    blackhole(ns = b) {
      const start = Date.now();
      execFileSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], {
        input:
          'table inet kpdead { ' +
          'chain in { type filter hook input priority -300; policy drop; }; ' +
          'chain out { type filter hook output priority -300; policy drop; }; }\n',
        stdio: ['pipe', 'ignore', 'pipe'],
        timeout: 5000,
      });
      return { start, end: Date.now() };
    },
    linkDown() {
      const start = Date.now();
      ip(['-n', b, 'link', 'set', b, 'down']);
      return { start, end: Date.now() };
    },
    exec(ns, command, args) {
      return execFileSync('ip', ['netns', 'exec', ns, command, ...args], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 5000,
      });
    },
    destroy() {
      for (const ns of [a, b]) {
        try {
          ip(['netns', 'del', ns]);
        } catch {
          // Not created, or already deleted.
        }
      }
    },
  };
  try {
    ip(['netns', 'add', a]);
    ip(['netns', 'add', b]);
    ip(['link', 'add', a, 'netns', a, 'type', 'veth', 'peer', 'name', b, 'netns', b]);
    ip(['-n', a, 'addr', 'add', `${pair.ipA}/24`, 'dev', a]);
    ip(['-n', b, 'addr', 'add', `${pair.ipB}/24`, 'dev', b]);
    for (const ns of [a, b]) {
      ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      ip(['-n', ns, 'link', 'set', ns, 'up']);
    }
  } catch (err) {
    pair.destroy();
    throw err;
  }
  return pair;
}

/** A client that connects and then stays silent with keepalive off; prints `{"msg":"connected","port":N}`. */
export const IDLE_CLIENT = `
const s = require('node:net').connect(Number(process.argv[2]), process.argv[1]);
s.on('connect', () => console.log(JSON.stringify({ level: 30, time: new Date().toISOString(), msg: 'connected', port: s.localPort })));
s.on('error', (e) => { console.log(JSON.stringify({ level: 50, time: new Date().toISOString(), msg: 'client error ' + e.code })); });
s.on('close', () => process.exit(0));
`;
