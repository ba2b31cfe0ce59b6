/**
 * The whole compose stack (infra/compose/compose.yaml) run for real: Debian's docker-compose 1.29 against podman's
 * Docker-compatible API (`podman system service` on a unix socket in a temporary directory, DOCKER_HOST), one
 * compose project per run, every published port a free loopback port (the NET_*_PORT variables), the load balancers
 * built from Debian's packages (HAPROXY_IMAGE, NGINX_IMAGE) and the four service images built by the same helper as
 * the image tests (podman's layer cache makes a warm build take seconds).
 *
 * Everything is proved through the published ports, as a user would see it: TCP echo through HAProxy, UDP echo
 * through nginx, daytime, keepalive-probe, HAProxy's /stats, a replica killed, echo scaled 3 -> 5 -> 2 under client
 * load, and `down` leaving nothing behind.
 *
 * The backend network is a /26 of a TEST-NET range (RFC 5737) that no podman network uses yet (198.51.100.0/26 first,
 * HAProxy at its top address, .62) through NET_BACKEND_SUBNET and NET_HAPROXY_ADDR, so nothing is sent to the file's
 * default 172.30.7.0/24 and two runs on one machine do not collide. infra/test/fixtures/compose.podman.yaml
 * adds what podman 4.3 needs on these hosts (see its comments). Compose DNS (the name `echo` HAProxy resolves) needs
 * netavark and aardvark-dns, installed with podman by .ci/run. Runs as root where podman and docker-compose are
 * installed; NET_TEST_IMAGES=0 skips it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildImages,
  buildLoadBalancerImages,
  CTIME_LINE,
  connectTcp,
  daytimeLine,
  freePort,
  hasCommand,
  infraDir,
  keepaliveWatchOnce,
  type Managed,
  podman,
  podmanEnv,
  pollUntil,
  readAll,
  startProcess,
} from './support.js';

const enabled =
  process.env.NET_TEST_IMAGES !== '0' &&
  hasCommand('podman') &&
  hasCommand('docker-compose') &&
  existsSync('/usr/lib/podman/aardvark-dns') &&
  process.getuid?.() === 0;
const reason = enabled
  ? ''
  : ' (skipped: needs root, podman with netavark and aardvark-dns, and docker-compose; NET_TEST_IMAGES=0 also skips)';

const SERVICES = ['echo-tcp', 'udp-echo', 'daytime-tcp', 'keepalive-probe'];
const tag = `compose-${process.pid}`;
const project = `nettest${process.pid}`;

/** IPv4 text to a number. */
function ipv4(text: string): number {
  return text.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}

/** True when the two IPv4 CIDRs overlap. */
function overlaps(a: string, b: string): boolean {
  const [aNet = '', aBits = '32'] = a.split('/');
  const [bNet = '', bBits = '32'] = b.split('/');
  const bits = Math.min(Number(aBits), Number(bBits));
  const size = 2 ** (32 - bits);
  return Math.floor(ipv4(aNet) / size) === Math.floor(ipv4(bNet) / size);
}

/**
 * The first /26 of 198.51.100.0/24 and 203.0.113.0/24 (TEST-NET-2 and -3) that overlaps no existing podman network,
 * and HAProxy's address at its top (.62 of the block), as the compose file puts HAProxy at the top of its subnet.
 */
function freeTestNet(): { subnet: string; haproxy: string } {
  const networks = JSON.parse(podman(['network', 'ls', '--format', 'json']).out || '[]') as {
    subnets?: { subnet: string }[];
  }[];
  const used = networks.flatMap((n) => (n.subnets ?? []).map((s) => s.subnet)).filter((s) => !s.includes(':'));
  for (const base of ['198.51.100', '203.0.113']) {
    for (const start of [0, 64, 128, 192]) {
      const subnet = `${base}.${start}/26`;
      if (!used.some((u) => overlaps(u, subnet))) return { subnet, haproxy: `${base}.${start + 62}` };
    }
  }
  throw new Error(`every /26 of 198.51.100.0/24 and 203.0.113.0/24 is taken by a podman network: ${used.join(', ')}`);
}

/** How long each part took, printed at the end. */
const timings: [string, number][] = [];
async function timed<T>(label: string, fn: () => Promise<T> | T): Promise<T> {
  const started = performance.now();
  try {
    return await fn();
  } finally {
    timings.push([label, (performance.now() - started) / 1000]);
  }
}

/**
 * One echo slot of HAProxy's server-template in its CSV statistics. A slot keeps the replica (address) it got from
 * DNS until that address leaves the answer; the CSV does not show the address (its `addr` column stays empty in
 * HAProxy 2.6's HTTP statistics), so slots are followed by name.
 */
interface Slot {
  name: string;
  status: string;
  /** Sessions served so far. */
  stot: number;
}

describe.skipIf(!enabled)(`the compose stack with docker-compose against podman's API${reason}`, () => {
  const work = mkdtempSync(join(tmpdir(), 'net-compose-'));
  const socket = join(work, 'podman.sock');
  let service: Managed | undefined;
  const ports = { echo: 0, udpEcho: 0, daytime: 0, keepalive: 0, stats: 0 };
  let env: NodeJS.ProcessEnv = {};
  let net = { subnet: '', haproxy: '' };
  let downDone = false;

  /** Runs docker-compose with the project's files and environment, without blocking the event loop. */
  function compose(args: string[], timeoutMs = 120_000): Promise<{ status: number | null; out: string }> {
    const files = [
      '-f',
      join(infraDir, 'compose', 'compose.yaml'),
      '-f',
      join(infraDir, 'test', 'fixtures', 'compose.podman.yaml'),
    ];
    return new Promise((resolve) => {
      const child: ChildProcess = spawn('docker-compose', ['-p', project, ...files, ...args], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout?.on('data', (c: Buffer) => {
        out += c.toString('utf8');
      });
      child.stderr?.on('data', (c: Buffer) => {
        out += c.toString('utf8');
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.once('exit', (status) => {
        clearTimeout(timer);
        resolve({ status, out });
      });
    });
  }

  async function composeOk(args: string[], timeoutMs?: number): Promise<string> {
    const r = await compose(args, timeoutMs);
    if (r.status !== 0) throw new Error(`docker-compose ${args.join(' ')} exited ${r.status}:\n${r.out.slice(-3000)}`);
    return r.out;
  }

  /** The echo slots of HAProxy's backend, from /stats;csv on the published stats port. */
  async function slots(): Promise<Slot[]> {
    const res = await fetch(`http://127.0.0.1:${ports.stats}/stats;csv`, { signal: AbortSignal.timeout(3000) });
    const [header = '', ...rows] = (await res.text()).trim().split('\n');
    const cols = header.replace(/^# /, '').split(',');
    const at = (f: string[], name: string) => f[cols.indexOf(name)] ?? '';
    return rows
      .map((row) => row.split(','))
      .filter((f) => at(f, 'pxname') === 'be_echo' && at(f, 'svname') !== 'BACKEND')
      .map((f) => ({
        name: at(f, 'svname'),
        status: at(f, 'status'),
        stot: Number(at(f, 'stot')),
      }));
  }
  const upSlots = async () => (await slots()).filter((s) => s.status === 'UP');

  /** One echo exchange through HAProxy: connect, send, half-close, read to EOF; throws unless byte-exact. */
  async function echoExchange(payload: Buffer, timeoutMs = 10_000): Promise<void> {
    const s = await connectTcp(ports.echo, timeoutMs);
    const received = readAll(s, timeoutMs);
    s.end(payload);
    const echo = await received;
    s.destroy();
    if (!echo.equals(payload))
      throw new Error(`${echo.length} of ${payload.length} bytes echoed back, or different bytes`);
  }

  /** The address of a compose container on the backend network. */
  function containerAddress(name: string): string {
    return podman(['inspect', name, '--format', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}']).out.trim();
  }

  /**
   * Clients that run echo exchanges back to back until stopped (bounded: at most 20,000 exchanges each), each with
   * its own random payload; every failure is kept with what happened.
   */
  function startLoad(clients: number) {
    let stopped = false;
    const failures: string[] = [];
    let ok = 0;
    const loops = Array.from({ length: clients }, async (_, c) => {
      for (let n = 0; n < 20_000 && !stopped; n++) {
        try {
          await echoExchange(randomBytes(1 + ((n * 7919 + c) % 4096)));
          ok += 1;
        } catch (err) {
          failures.push(`client ${c} #${n} at ${new Date().toISOString()}: ${(err as Error).message}`);
        }
      }
    });
    return {
      get ok() {
        return ok;
      },
      failures,
      async stop() {
        stopped = true;
        await Promise.all(loops);
      },
    };
  }

  beforeAll(async () => {
    await timed('build the 4 service images', () => buildImages(SERVICES, tag, 'infra compose'));
    const lb = await timed('build the load balancer images', () => buildLoadBalancerImages('infra compose'));
    for (const key of Object.keys(ports) as (keyof typeof ports)[]) ports[key] = await freePort();
    net = freeTestNet();
    service = startProcess('podman', ['system', 'service', '--time', '0', `unix://${socket}`], podmanEnv);
    await pollUntil(() => ping(socket), 20_000, 100);
    env = {
      ...process.env,
      DOCKER_HOST: `unix://${socket}`,
      IMAGE_TAG: tag,
      HAPROXY_IMAGE: lb.haproxy,
      NGINX_IMAGE: lb.nginx,
      NET_BACKEND_SUBNET: net.subnet,
      NET_HAPROXY_ADDR: net.haproxy,
      NET_ECHO_PORT: String(ports.echo),
      NET_UDP_ECHO_PORT: String(ports.udpEcho),
      NET_DAYTIME_PORT: String(ports.daytime),
      NET_KEEPALIVE_PORT: String(ports.keepalive),
      NET_STATS_PORT: String(ports.stats),
    };
    await timed('docker-compose up -d', () => composeOk(['up', '-d', '--no-build']));
    await timed('3 replicas UP in HAProxy', () =>
      pollUntil(async () => ((await upSlots().catch(() => [])).length === 3 ? true : undefined), 60_000, 200),
    );
  });

  afterAll(async () => {
    if (!downDone && service) await compose(['down', '-v', '-t', '2']);
    // Whatever a failed run left: containers of the project, its network.
    const left = podman(['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`]).out.trim();
    if (left) podman(['rm', '-f', '-t', '0', ...left.split('\n')]);
    podman(['network', 'rm', '-f', `${project}_backend`]);
    await service?.stop('SIGTERM');
    for (const s of SERVICES) podman(['rmi', '-f', `localhost/net/${s}:${tag}`]);
    rmSync(work, { recursive: true, force: true });
    console.log(
      `infra compose: timings\n${timings.map(([l, s]) => `  ${s.toFixed(1).padStart(6)} s  ${l}`).join('\n')}`,
    );
  });

  it('echoes 1 MiB byte-exact through HAProxy to a replica and back, with the client half-close passed through', async () => {
    const payload = randomBytes(1 << 20);
    await timed('1 MiB echo', () => echoExchange(payload, 20_000));
  });

  it('echoes UDP datagrams byte-exact through nginx to the two udp-echo replicas', async () => {
    await timed('20 UDP echoes', async () => {
      for (let i = 0; i < 20; i++) {
        const payload = randomBytes(64 + i);
        const reply = await udpExchange(ports.udpEcho, payload);
        expect(reply.equals(payload), `datagram ${i}`).toBe(true);
      }
    });
  });

  it('answers daytime with one ctime line (RFC 867) on the published port', async () => {
    expect(await daytimeLine(ports.daytime)).toMatch(CTIME_LINE);
  });

  it('lets keepalive-probe’s own client watch a connection to the published port', () => {
    const r = keepaliveWatchOnce(ports.keepalive);
    expect(r.status, r.out).toBe(0);
  });

  it('shows every replica UP in /stats;csv and the spare slots waiting for DNS, all on the test network', async () => {
    const all = await slots();
    const up = all.filter((s) => s.status === 'UP');
    expect(up.length).toBe(3);
    // ECHO_SLOTS (10) slots; those without a replica are in maintenance until the name resolves to more addresses.
    expect(all.length).toBe(10);
    expect(all.filter((s) => s.status !== 'UP').every((s) => s.status === 'MAINT (resolution)')).toBe(true);
    // The network is the test's TEST-NET block (NET_BACKEND_SUBNET), HAProxy at NET_HAPROXY_ADDR.
    for (const i of [1, 2, 3]) {
      const address = containerAddress(`${project}_echo_${i}`);
      expect(overlaps(`${address}/32`, net.subnet), `${address} in ${net.subnet}`).toBe(true);
    }
    expect(containerAddress(`${project}_haproxy_1`)).toBe(net.haproxy);
    console.log(`infra compose: backend network ${net.subnet}, HAProxy at ${net.haproxy}`);
    console.log(`infra compose: ${all.length} slots, UP: ${up.map((s) => s.name).join(', ')}`);
  });

  it('takes a SIGKILLed replica out of rotation within the check interval, and no new exchange fails', async () => {
    const victim = `${project}_echo_2`;
    const before = new Set((await upSlots()).map((s) => s.name));
    const failures: string[] = [];
    let killedAt = 0;
    let outAt = 0;
    let out = '';
    let afterOut = 0;
    const started = Date.now();
    for (let n = 0; n < 3000 && Date.now() - started < 60_000; n++) {
      if (n === 30) {
        killedAt = performance.now();
        const r = podman(['kill', '--signal', 'KILL', victim]);
        expect(r.status, r.out).toBe(0);
      }
      if (killedAt && !outAt && n % 3 === 0) {
        // DOWN by its checks, or MAINT once the name no longer resolves to it: out of rotation either way ("UP 1/2"
        // is still in rotation: one check has failed, the second decides).
        const left = (await slots()).find((s) => before.has(s.name) && !s.status.startsWith('UP'));
        if (left) {
          outAt = performance.now();
          out = `${left.name} ${left.status}`;
        }
      }
      try {
        await echoExchange(Buffer.from(`failover ${n}\n`));
      } catch (err) {
        failures.push(`#${n}: ${(err as Error).message}`);
      }
      if (outAt && ++afterOut >= 100) break;
    }
    timings.push(['kill -> out of rotation', (outAt - killedAt) / 1000]);
    console.log(
      `infra compose: replica killed -> ${out} after ${((outAt - killedAt) / 1000).toFixed(2)} s; ${failures.length} failed exchanges`,
    );
    expect(outAt, 'the killed replica left the rotation').toBeGreaterThan(0);
    // inter 1s, fastinter 250ms, fall 2: about 1.5 s; 5 s leaves room for a loaded machine.
    expect(outAt - killedAt).toBeLessThan(5000);
    expect(failures).toEqual([]);
    expect(afterOut).toBe(100);
    // Back to three replicas for the scaling (the restart policy may have restarted it already).
    await timed('back to 3 replicas', async () => {
      await composeOk(['up', '-d', '--no-build', '--no-recreate', '--scale', 'echo=3']);
      await pollUntil(async () => ((await upSlots()).length === 3 ? true : undefined), 30_000, 200);
    });
  });

  it('scales echo 3 -> 5 -> 2 under client load: new replicas take traffic within seconds, removed ones leave through DOWN, no exchange fails', async () => {
    // HAProxy's view every 200 ms: each status every slot went through, and when it first served while UP.
    const history = new Map<string, { statuses: string[]; firstTrafficAt?: number; firstStot?: number }>();
    let polling = true;
    const poller = (async () => {
      for (let i = 0; i < 1500 && polling; i++) {
        for (const s of await slots().catch(() => [] as Slot[])) {
          const h = history.get(s.name) ?? { statuses: [] };
          history.set(s.name, h);
          if (h.statuses.at(-1) !== s.status) h.statuses.push(s.status);
          h.firstStot ??= s.stot;
          if (h.firstTrafficAt === undefined && s.status === 'UP' && s.stot > h.firstStot)
            h.firstTrafficAt = performance.now();
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    const three = new Set((await upSlots()).map((s) => s.name));
    const phases: string[] = [];
    const load = startLoad(4);
    try {
      await new Promise((r) => setTimeout(r, 2000));
      const scaledOutAt = await timed('--scale echo=5 (command)', async () => {
        phases.push(`--scale echo=5 from ${new Date().toISOString()}`);
        await composeOk(['up', '-d', '--no-build', '--no-recreate', '--scale', 'echo=5']);
        phases.push(`--scale echo=5 done ${new Date().toISOString()}`);
        return performance.now();
      });
      const added = () => [...history].filter(([name, h]) => !three.has(name) && h.firstTrafficAt !== undefined);
      await timed('the 2 new replicas UP and serving', () =>
        pollUntil(async () => (added().length >= 2 ? true : undefined), 30_000, 200),
      );
      const takeUp = added().map(
        ([name, h]) => `${name} ${(((h.firstTrafficAt ?? 0) - scaledOutAt) / 1000).toFixed(2)} s`,
      );
      console.log(
        `infra compose: first session on each new replica after --scale echo=5 returned: ${takeUp.join(', ')}`,
      );
      expect(added().length).toBe(2);
      for (const [, h] of added()) expect((h.firstTrafficAt ?? 0) - scaledOutAt).toBeLessThan(15_000);
      const five = new Set((await upSlots()).map((s) => s.name));
      expect(five.size).toBe(5);

      await timed('--scale echo=2 (command: 3 replicas stopped through their drain delay, removed)', async () => {
        phases.push(`--scale echo=2 from ${new Date().toISOString()}`);
        await composeOk(['up', '-d', '--no-build', '--no-recreate', '--scale', 'echo=2']);
        phases.push(`--scale echo=2 done ${new Date().toISOString()}`);
      });
      await pollUntil(async () => ((await upSlots()).length === 2 ? true : undefined), 30_000, 200);
      // A little more load on the two that remain.
      await new Promise((r) => setTimeout(r, 2000));
      await load.stop();
      polling = false;
      await poller;
      const remaining = new Set((await upSlots()).map((s) => s.name));
      const removed = [...five].filter((name) => !remaining.has(name));
      console.log(
        `infra compose: ${load.ok} exchanges by 4 clients, ${load.failures.length} failed; statuses by slot:\n${[
          ...history,
        ]
          .filter(([name]) => five.has(name))
          .map(([name, h]) => `  ${name}: ${h.statuses.join(' -> ')}`)
          .join('\n')}`,
      );
      if (load.failures.length > 0) {
        // HAProxy's own account of the failed sessions (option tcplog: termination state, server, timers).
        const unusual = podman(['logs', `${project}_haproxy_1`])
          .out.split('\n')
          .filter((l) => l.includes('fe_echo') && !/ -- /.test(l));
        console.log(
          `infra compose: ${phases.join('; ')}\nHAProxy sessions not ended normally:\n${unusual.slice(0, 40).join('\n')}`,
        );
      }
      expect(load.failures).toEqual([]);
      expect(load.ok).toBeGreaterThan(100);
      expect(remaining.size).toBe(2);
      expect(removed.length).toBe(3);
      // Each removed replica was taken out by its failing /readyz check (DOWN) while it still served, before its
      // address left the DNS answer (MAINT).
      for (const name of removed) {
        const statuses = history.get(name)?.statuses ?? [];
        const lastUp = statuses.lastIndexOf('UP');
        const downAfter = statuses.findIndex((s, i) => i > lastUp && s.startsWith('DOWN'));
        expect(lastUp >= 0 && downAfter > lastUp, `${name}: ${statuses.join(' -> ')}`).toBe(true);
      }
    } finally {
      polling = false;
      await load.stop();
      await poller;
    }
  });

  it('leaves no container, network, volume or pod behind after docker-compose down', async () => {
    await timed('docker-compose down -v', () => composeOk(['down', '-v']));
    downDone = true;
    expect(podman(['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`]).out.trim()).toBe('');
    expect(podman(['network', 'exists', `${project}_backend`]).status).toBe(1);
    expect(podman(['volume', 'ls', '-q', '--filter', `label=com.docker.compose.project=${project}`]).out.trim()).toBe(
      '',
    );
    expect(podman(['pod', 'ps', '-q', '--filter', `name=${project}`]).out.trim()).toBe('');
  });
});

/** True once the API answers GET /_ping on the unix socket. */
function ping(socketPath: string): Promise<true | undefined> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200 ? true : undefined);
    });
    req.once('error', () => resolve(undefined));
    req.once('timeout', () => {
      req.destroy();
      resolve(undefined);
    });
    req.end();
  });
}

/** One UDP request and its reply, resent every 250 ms up to 20 times (the first can race nginx's start). */
function udpExchange(port: number, payload: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    let tries = 0;
    const send = () => {
      if (++tries > 20) {
        clearInterval(timer);
        s.close();
        reject(new Error('no UDP echo after 20 tries'));
        return;
      }
      s.send(payload, port, '127.0.0.1');
    };
    const timer = setInterval(send, 250);
    s.on('message', (msg) => {
      clearInterval(timer);
      s.close();
      // nginx answers a zero-length datagram when its upstream failed: a failure, not an echo.
      if (msg.length === 0) reject(new Error('nginx answered an empty datagram (its upstream failed)'));
      else resolve(msg);
    });
    send();
  });
}
