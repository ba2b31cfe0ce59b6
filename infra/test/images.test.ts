/**
 * The four real images, built from infra/images/*.Containerfile by infra/build-images.sh with podman (no Docker
 * engine and no registry here: the script builds the local base image from npm packages first), then run: each
 * service answers its protocol on a published port and /healthz on its admin port 8080 as uid 1000, its HEALTHCHECK
 * passes inside the container, it carries its OCI labels and no development dependency, and `podman stop` ends it
 * through SIGTERM with the drain (Node is PID 1: it would ignore SIGTERM if the runtime did not handle it).
 *
 * Runs as root where podman is installed (.ci/run installs it); NET_TEST_IMAGES=0 skips it. The service images
 * are removed afterwards; the base images localhost/net-node:24{,-build} and podman's layer cache are kept, so a
 * second run builds in seconds.
 */
import { spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildImages,
  CTIME_LINE,
  connectTcp,
  daytimeLine,
  freePort,
  hasCommand,
  keepaliveWatchOnce,
  podman,
  pollUntil,
  readAll,
  repoRoot,
} from './support.js';

const enabled = process.env.NET_TEST_IMAGES !== '0' && hasCommand('podman') && process.getuid?.() === 0;
const reason = enabled ? '' : ' (skipped: needs root and podman; NET_TEST_IMAGES=0 also skips)';
const tag = `test-${process.pid}`;

/**
 * `podman run -d` of one service image, its service port and its admin port (8080) published on 127.0.0.1. Port 7 as
 * uid 1000: podman 4.3 does not lower the unprivileged port start the way Docker does, so the container gets the
 * sysctl compose sets.
 */
function runContainer(name: string, image: string, ports: { host: number; container: string }[]) {
  return podman([
    'run',
    '-d',
    '--name',
    name,
    '--sysctl',
    'net.ipv4.ip_unprivileged_port_start=0',
    ...ports.flatMap((p) => ['-p', `127.0.0.1:${p.host}:${p.container}`]),
    image,
  ]);
}

/** Resolves once the container's service has logged its ready line (at most 20 s). */
function containerReady(name: string): Promise<boolean> {
  return pollUntil(
    async () => (podman(['logs', name]).out.includes('"ready: listening on') ? true : undefined),
    20_000,
    100,
  );
}

/** GET http://127.0.0.1:port/path: status and body. */
async function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5000) });
  return { status: response.status, body: await response.text() };
}

interface ImageCase {
  service: 'echo-tcp' | 'udp-echo' | 'daytime-tcp' | 'keepalive-probe';
  port: string;
  /** The HEALTHCHECK's subcommand of the service's own CLI. */
  check: string;
  /** One real exchange of the service's protocol through the published port, with its assertions. */
  exchange(hostPort: number): Promise<void>;
}

const tcpEcho = async (hostPort: number): Promise<void> => {
  const payload = Buffer.from(`through the echo-tcp image ${process.pid}\n`);
  const socket = await connectTcp(hostPort);
  const received = readAll(socket, 10_000);
  socket.end(payload);
  expect((await received).equals(payload)).toBe(true);
};

const udpEcho = (hostPort: number): Promise<void> =>
  new Promise<Buffer>((resolve, reject) => {
    const payload = Buffer.from(`through the udp-echo image ${process.pid}\n`);
    const socket = createSocket('udp4');
    // Bounded retries: the first datagram can race the port forwarder's start.
    let tries = 0;
    const send = () => {
      tries += 1;
      if (tries > 20) {
        socket.close();
        reject(new Error('no UDP echo after 20 tries'));
        return;
      }
      socket.send(payload, hostPort, '127.0.0.1');
    };
    const timer = setInterval(send, 250);
    socket.on('message', (msg) => {
      clearInterval(timer);
      socket.close();
      resolve(msg);
    });
    send();
  }).then((msg) => {
    expect(msg.toString('utf8')).toBe(`through the udp-echo image ${process.pid}\n`);
  });

/** RFC 867: the server sends one line and closes; the image's default format is ctime. */
const daytime = async (hostPort: number): Promise<void> => {
  expect(await daytimeLine(hostPort)).toMatch(CTIME_LINE);
};

/** The service's own client from the workspace: `watch --once` connects with the keepalive settings and exits 0. */
const keepaliveWatch = async (hostPort: number): Promise<void> => {
  const r = keepaliveWatchOnce(hostPort);
  expect(r.status, r.out).toBe(0);
};

const cases: ImageCase[] = [
  { service: 'echo-tcp', port: '7', check: 'check', exchange: tcpEcho },
  { service: 'udp-echo', port: '7/udp', check: 'check', exchange: udpEcho },
  { service: 'daytime-tcp', port: '13', check: 'client', exchange: daytime },
  { service: 'keepalive-probe', port: '15001', check: 'watch', exchange: keepaliveWatch },
];
const revision = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).stdout.trim();

describe.skipIf(!enabled)(`service images built and run with podman${reason}`, () => {
  beforeAll(() => {
    buildImages(
      cases.map((c) => c.service),
      tag,
      'infra images',
    );
  });

  afterAll(() => {
    // Also after a failed build: whatever was tagged goes (errors for images never built are ignored).
    for (const c of cases) podman(['rmi', '-f', `localhost/net/${c.service}:${tag}`]);
  });

  for (const c of cases) {
    describe(c.service, () => {
      const image = `localhost/net/${c.service}:${tag}`;
      const name = `net-infra-${c.service}-${process.pid}`;
      let hostPort = 0;
      let adminPort = 0;

      beforeAll(async () => {
        hostPort = await freePort();
        adminPort = await freePort();
        const run = runContainer(name, image, [
          { host: hostPort, container: c.port },
          { host: adminPort, container: '8080' },
        ]);
        if (run.status !== 0) throw new Error(`podman run failed: ${run.out}`);
        await containerReady(name);
      });

      afterAll(() => {
        podman(['rm', '-f', '-t', '0', name]);
      });

      it('is configured as shipped: uid 1000, exec-form node CMD, its ports exposed, a HEALTHCHECK with its own client, OCI labels', () => {
        const inspect = JSON.parse(podman(['image', 'inspect', image]).out)[0];
        const config = inspect.Config;
        expect(config.User).toBe('1000:1000');
        expect(config.Cmd).toEqual(['node', '/app/dist/main.js', 'serve']);
        expect(Object.keys(config.ExposedPorts).sort()).toEqual(
          [c.port.includes('/') ? c.port : `${c.port}/tcp`, '8080/tcp'].sort(),
        );
        expect((inspect.Healthcheck ?? config.Healthcheck).Test.slice(0, 4)).toEqual([
          'CMD',
          'node',
          '/app/dist/main.js',
          c.check,
        ]);
        const version = JSON.parse(readFileSync(join(repoRoot, 'services', c.service, 'package.json'), 'utf8')).version;
        expect(config.Labels).toMatchObject({
          'org.opencontainers.image.title': c.service,
          'org.opencontainers.image.version': version,
          'org.opencontainers.image.revision': revision,
        });
        expect(config.Labels['org.opencontainers.image.source']).toBeTruthy();
        console.log(`infra images: ${image} ${(inspect.Size / 1e6).toFixed(0)} MB`);
      });

      it('carries production dependencies only: no pino-pretty, no workspace development tools', () => {
        const found = podman([
          'exec',
          name,
          'find',
          '/app',
          '-name',
          'pino-pretty',
          '-o',
          '-name',
          'vitest',
          '-o',
          '-name',
          'typescript',
        ]);
        expect(found.status, found.out).toBe(0);
        expect(found.out.trim()).toBe('');
        // And pino itself is there (the check above would also pass on an empty /app).
        expect(podman(['exec', name, 'find', '/app', '-name', 'pino', '-type', 'd']).out).toMatch(/\/pino\n/);
      });

      it('answers its protocol on the published port and /healthz on the admin port 8080, as uid 1000', async () => {
        await c.exchange(hostPort);
        const health = await httpGet(adminPort, '/healthz');
        expect(health.status, health.body).toBe(200);
        expect((await httpGet(adminPort, '/readyz')).status).toBe(200);
        // The probe the Kubernetes manifests exec (infra/k8s): 0 on a 2xx, 1 on anything else.
        const probe = podman(['exec', name, 'node', '/app/http-probe.mjs', 'http://127.0.0.1:8080/healthz']);
        expect(probe.status, probe.out).toBe(0);
        const missing = podman(['exec', name, 'node', '/app/http-probe.mjs', 'http://127.0.0.1:8080/nothing-here']);
        expect(missing.status).toBe(1);
        expect(missing.out).toMatch(/HTTP 404/);
        expect(podman(['exec', name, 'id', '-u']).out.trim()).toBe('1000');
        expect(podman(['top', name, 'user', 'args']).out).toMatch(/\bnode\s+node \/app\/dist\/main\.js serve/);
      });

      it('passes its HEALTHCHECK (the service’s own check command) inside the container', () => {
        const r = podman(['healthcheck', 'run', name]);
        expect(r.status, r.out).toBe(0);
      });

      it('stops on SIGTERM through its drain: exit code 0, well within the 10 s drain period', () => {
        const started = performance.now();
        // -t 30: if SIGTERM were ignored (Node as PID 1 without a handler), podman would SIGKILL after 30 s (137).
        const r = podman(['stop', '-t', '30', name], 60_000);
        const seconds = (performance.now() - started) / 1000;
        expect(r.status, r.out).toBe(0);
        const exit = podman(['inspect', name, '--format', '{{.State.ExitCode}}']).out.trim();
        const logs = podman(['logs', name]).out;
        console.log(`infra images: podman stop ${c.service} took ${seconds.toFixed(2)} s, exit ${exit}`);
        expect(exit).toBe('0');
        expect(logs).toContain('"signal":"SIGTERM"');
        expect(logs).toContain('"msg":"stopped"');
        expect(seconds).toBeLessThan(10);
      });
    });
  }

  it('drains on SIGTERM: echoes what is owed, sends FIN, and exits 0 only after the client has closed', async () => {
    const image = `localhost/net/echo-tcp:${tag}`;
    const name = `net-infra-drain-${process.pid}`;
    const hostPort = await freePort();
    try {
      const run = runContainer(name, image, [{ host: hostPort, container: '7' }]);
      expect(run.status, run.out).toBe(0);
      await containerReady(name);
      const socket = await connectTcp(hostPort);
      const echoOnce = (text: string) =>
        new Promise<string>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('no echo within 5 s')), 5000);
          socket.once('data', (d: Buffer) => {
            clearTimeout(timer);
            resolve(d.toString('utf8'));
          });
          socket.write(text);
        });
      expect(await echoOnce('before\n')).toBe('before\n');
      // echo-tcp's drain (services/echo-tcp): stop accepting, echo what was read, half-close with a FIN, then wait
      // for the client's close up to the drain period.
      const fin = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no FIN within 10 s of SIGTERM')), 10_000);
        socket.once('end', () => {
          clearTimeout(timer);
          resolve();
        });
        socket.once('error', reject);
      });
      podman(['kill', '--signal', 'TERM', name]);
      await fin;
      expect(podman(['logs', name]).out).toContain('"open":1,"msg":"draining');
      // Still running: the drain waits for this client (for up to 10 s).
      expect(podman(['inspect', name, '--format', '{{.State.Status}}']).out.trim()).toBe('running');
      socket.end();
      const exit = await pollUntil(
        async () => {
          const state = podman(['inspect', name, '--format', '{{.State.Status}} {{.State.ExitCode}}']).out.trim();
          return state.startsWith('exited') ? state : undefined;
        },
        15_000,
        100,
      );
      expect(exit).toBe('exited 0');
    } finally {
      podman(['rm', '-f', '-t', '0', name]);
    }
  });
});
