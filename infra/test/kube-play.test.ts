/**
 * The Kubernetes manifests of infra/k8s run for real with `podman kube play` (podman 4.3 here), one Deployment at a
 * time with one replica: the pod starts as uid 1000 on a read-only root, its liveness probe (an exec of node
 * fetching /healthz on the admin port) passes inside the container, the service answers its protocol on its
 * container port (its own client, run in the pod), and `podman kube down` removes it. What podman cannot run
 * (Service, HPA, PDB) is validated against the Kubernetes schemas by manifests.test.ts.
 *
 * Two adaptations, both what a user of podman does too: `replicas: 1` (podman runs every replica as a pod on this one
 * host, and podman before 4.7 publishes every containerPort on the host, so a second replica could not bind), and
 * the image set to the tag built here (as the kustomization's `images:` does). Runs as root where podman is
 * installed; NET_TEST_IMAGES=0 skips it.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseYamlDocuments } from '../scripts/validate-k8s.mjs';
import { buildImages, hasCommand, infraDir, podman, pollUntil } from './support.js';

const enabled = process.env.NET_TEST_IMAGES !== '0' && hasCommand('podman') && process.getuid?.() === 0;
const reason = enabled ? '' : ' (skipped: needs root and podman; NET_TEST_IMAGES=0 also skips)';
const tag = `kube-${process.pid}`;

interface KubeCase {
  service: 'echo-tcp' | 'udp-echo' | 'daytime-tcp' | 'keepalive-probe';
  /** The service's own client, run inside the pod against the container port the manifest sets. */
  exchange: string[];
}

const cases: KubeCase[] = [
  { service: 'echo-tcp', exchange: ['check', '--timeout', '3', '127.0.0.1:7007'] },
  { service: 'udp-echo', exchange: ['check', '127.0.0.1:7007'] },
  { service: 'daytime-tcp', exchange: ['client', '--timeout', '3', '127.0.0.1:1313'] },
  {
    service: 'keepalive-probe',
    exchange: ['watch', '--once', '--once-timeout', '3', '--admin-port', '0', '--log-level', 'warn', '127.0.0.1:15001'],
  },
];

/** True when nothing listens on TCP `port` on any address (podman 4.3 publishes containerPorts on 0.0.0.0). */
function tcpPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

describe.skipIf(!enabled)(`infra/k8s Deployments run with podman kube play${reason}`, () => {
  const work = mkdtempSync(join(tmpdir(), 'net-kube-'));

  beforeAll(() => {
    buildImages(
      cases.map((c) => c.service),
      tag,
      'infra kube',
    );
  });

  afterAll(() => {
    for (const c of cases) {
      podman(['kube', 'down', join(work, `${c.service}.json`)]);
      podman(['rmi', '-f', `localhost/net/${c.service}:${tag}`]);
    }
    rmSync(work, { recursive: true, force: true });
  });

  for (const c of cases) {
    it(`${c.service}: plays, is healthy by its own probe, answers its protocol, runs as uid 1000 read-only, goes down`, async () => {
      const docs = (await parseYamlDocuments(readFileSync(join(infraDir, 'k8s', `${c.service}.yaml`), 'utf8'))) as {
        kind: string;
        // biome-ignore lint/suspicious/noExplicitAny: a parsed Deployment
        spec: any;
      }[];
      const deployment = docs.find((d) => d.kind === 'Deployment');
      if (!deployment) throw new Error(`no Deployment in infra/k8s/${c.service}.yaml`);
      deployment.spec.replicas = 1;
      const container = deployment.spec.template.spec.containers[0];
      container.image = `localhost/net/${c.service}:${tag}`;
      const ports: number[] = container.ports
        .filter((p: { protocol?: string }) => p.protocol !== 'UDP')
        .map((p: { containerPort: number }) => p.containerPort);
      for (const port of ports)
        expect(
          await tcpPortFree(port),
          `port ${port} is taken on this host; podman < 4.7 publishes every containerPort`,
        ).toBe(true);
      const file = join(work, `${c.service}.json`);
      writeFileSync(file, JSON.stringify(deployment));

      const started = performance.now();
      const play = podman(['kube', 'play', file], 120_000);
      expect(play.status, play.out).toBe(0);
      try {
        // `podman kube play` prints "Pod:\n<id>\nContainer:\n<id>".
        const id = /Container:\s*\n([0-9a-f]{64})/.exec(play.out)?.[1];
        expect(id, play.out).toBeDefined();
        const ctr = String(id);
        await pollUntil(
          async () => (podman(['logs', ctr]).out.includes('"ready: listening on') ? true : undefined),
          20_000,
          100,
        );
        const inspect = JSON.parse(podman(['inspect', ctr]).out)[0];
        // podman 4.3 runs the exec probe as a shell command: [CMD-SHELL, node, /app/http-probe.mjs, URL, ||, exit, 1].
        expect(inspect.Config.Healthcheck.Test.slice(1, 4)).toEqual([
          'node',
          '/app/http-probe.mjs',
          'http://127.0.0.1:8080/healthz',
        ]);
        const health = podman(['healthcheck', 'run', ctr]);
        expect(health.status, health.out).toBe(0);
        const exchange = podman(['exec', ctr, 'node', '/app/dist/main.js', ...c.exchange]);
        expect(exchange.status, exchange.out).toBe(0);
        expect(podman(['exec', ctr, 'id', '-u']).out.trim()).toBe('1000');
        const write = podman(['exec', ctr, 'touch', '/app/written']);
        expect(write.status).not.toBe(0);
        expect(write.out).toMatch(/Read-only file system/);
        console.log(
          `infra kube: ${c.service} played and checked in ${((performance.now() - started) / 1000).toFixed(1)} s`,
        );
      } finally {
        const down = podman(['kube', 'down', file], 60_000);
        expect(down.status, down.out).toBe(0);
      }
      const left = podman([
        'ps',
        '-a',
        '--format',
        '{{.Names}}',
        '--filter',
        `label=app.kubernetes.io/name=${c.service}`,
      ]);
      expect(left.out.trim()).toBe('');
    });
  }
});
