/**
 * Offline validation of what infra ships for orchestrators: the compose file through Debian's docker-compose
 * (`config -q`: schema, types, references), cross-checked against the HAProxy and nginx files it mounts, and the
 * Kubernetes manifests through infra/scripts/validate-k8s.mjs, which is itself shown to catch broken manifests.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseYamlDocuments, schemaErrors, validateDirectory, validateObjects } from '../scripts/validate-k8s.mjs';
import { hasCommand, infraDir } from './support.js';

const composeFile = join(infraDir, 'compose', 'compose.yaml');
const haveCompose = hasCommand('docker-compose');

// biome-ignore lint/suspicious/noExplicitAny: parsed YAML
type Doc = any;

function composeConfig(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('docker-compose', ['-f', composeFile, 'config', ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, ...env },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe.skipIf(!haveCompose)('infra/compose/compose.yaml (docker-compose config, offline)', () => {
  it('is a valid compose file: docker-compose config -q exits 0', () => {
    const r = composeConfig(['-q']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('scales one echo service behind HAProxy’s DNS-discovered server-template; PROXY headers trusted from HAProxy’s fixed address only', async () => {
    const [config] = (await parseYamlDocuments(composeConfig([]).stdout)) as Doc[];
    const services = config.services;
    const haproxyAddress = services.haproxy.networks.backend.ipv4_address;
    const subnet = config.networks.backend.ipam.config[0].subnet;
    expect(subnet).toBe('172.30.7.0/24');
    expect(haproxyAddress).toMatch(/^172\.30\.7\.\d+$/);
    const cfg = readFileSync(join(infraDir, 'haproxy', 'haproxy.cfg'), 'utf8');
    const template =
      /^\s*server-template echo "\$\{ECHO_SLOTS-(\d+)\}" "\$\{ECHO_SERVICE-([\w-]+):(\d+)\}" (.*)$/m.exec(cfg);
    expect(template, 'a server-template line').not.toBeNull();
    const [, slots, name, port, options] = template ?? [];
    expect([name, port]).toEqual(['echo', '7']);
    expect(options).toMatch(/\bresolvers dns\b/);
    expect(options).toMatch(/\binit-addr none\b/);
    expect(cfg).toMatch(/^\s*parse-resolv-conf$/m);
    const echo = services[name ?? ''];
    expect(echo, `service ${name}`).toBeDefined();
    expect(echo.deploy.replicas).toBe(3);
    expect(Number(slots)).toBeGreaterThanOrEqual(echo.deploy.replicas);
    expect(echo.ports, 'echo replicas publish nothing: only the backend network reaches them').toBeUndefined();
    expect(echo.environment.ECHO_TCP_PROXY_PROTOCOL).toBe('true');
    const trusted = String(echo.environment.ECHO_TCP_PROXY_TRUSTED).split(',');
    // HAProxy's address, plus the replica's own loopback for its in-container health check; nothing wider.
    expect(trusted).toEqual([`${haproxyAddress}/32`, '127.0.0.1/32']);
    expect(echo.healthcheck.test).toContain('--proxy');
    expect(echo.read_only).toBe(true);
    expect(services.haproxy.volumes.map((v: Doc) => v.target ?? String(v).split(':')[1])).toContain(
      '/usr/local/etc/haproxy/haproxy.cfg',
    );
  });

  it('moves the subnet, HAProxy’s address and the PROXY trust together with NET_BACKEND_SUBNET and NET_HAPROXY_ADDR', async () => {
    const [config] = (await parseYamlDocuments(
      composeConfig([], { NET_BACKEND_SUBNET: '198.51.100.0/24', NET_HAPROXY_ADDR: '198.51.100.250' }).stdout,
    )) as Doc[];
    expect(config.networks.backend.ipam.config[0].subnet).toBe('198.51.100.0/24');
    expect(config.services.haproxy.networks.backend.ipv4_address).toBe('198.51.100.250');
    expect(String(config.services.echo.environment.ECHO_TCP_PROXY_TRUSTED).split(',')).toEqual([
      '198.51.100.250/32',
      '127.0.0.1/32',
    ]);
  });

  it('gives echo replicas a stop grace period longer than their drain delay plus their drain period', async () => {
    const [config] = (await parseYamlDocuments(composeConfig([]).stdout)) as Doc[];
    const echo = config.services.echo;
    const delay = Number(echo.environment.ECHO_TCP_DRAIN_DELAY);
    // The image's drain period (ECHO_TCP_DRAIN_TIMEOUT=10) unless the file sets another.
    const drain = Number(echo.environment.ECHO_TCP_DRAIN_TIMEOUT ?? 10);
    const grace = /^(\d+)s$/.exec(String(echo.stop_grace_period));
    expect(grace, `stop_grace_period ${echo.stop_grace_period}`).not.toBeNull();
    // HAProxy takes a replica out after 2 failed /readyz checks, 1 s then 250 ms apart: the delay must cover that.
    expect(delay).toBeGreaterThanOrEqual(2);
    expect(Number(grace?.[1])).toBeGreaterThan(delay + drain);
  });

  it('defaults to the public load balancer images, and runs Prometheus only with the monitoring profile', async () => {
    const [config] = (await parseYamlDocuments(composeConfig([]).stdout)) as Doc[];
    expect(config.services.haproxy.image).toBe('haproxy:2.6');
    expect(config.services['nginx-udp'].image).toBe('nginx:1.27');
    expect(config.services.prometheus.profiles).toEqual(['monitoring']);
    expect(config.services.prometheus.image).toMatch(/^prom\/prometheus:v\d+\.\d+\.\d+$/);
    expect(config.services.prometheus.volumes.map((v: Doc) => v.target ?? String(v).split(':')[1])).toContain(
      '/etc/prometheus/prometheus.yml',
    );
  });

  it('wires nginx’s UDP upstream to the udp-echo replicas, with their per-source limits moved to nginx', async () => {
    const [config] = (await parseYamlDocuments(composeConfig([]).stdout)) as Doc[];
    const nginx = readFileSync(join(infraDir, 'nginx', 'nginx.conf'), 'utf8');
    const upstreams = [...nginx.matchAll(/^\s*server ([\w-]+):7 /gm)].map((m) => m[1]);
    expect(upstreams).toEqual(['udp-echo-1', 'udp-echo-2']);
    for (const name of upstreams) {
      expect(config.services[name ?? '']?.environment?.UDP_ECHO_RATE_LIMIT_PACKETS).toBe('0');
    }
    expect(nginx).toMatch(/listen 7 udp/);
    expect(nginx).toMatch(/proxy_responses 1;/);
    const published = config.services['nginx-udp'].ports.map((p: Doc) =>
      typeof p === 'string' ? p : `${p.target}/${p.protocol}`,
    );
    expect(published.some((p: string) => /(^|:)7\/udp$/.test(p))).toBe(true);
  });
});

describe('infra/k8s manifests (infra/scripts/validate-k8s.mjs, offline)', () => {
  const dir = join(infraDir, 'k8s');

  it('pass every structural check and invariant with no problem', async () => {
    const { objects, errors } = await validateDirectory(dir);
    expect(errors).toEqual([]);
    const kinds = objects.map((o) => `${o.doc.kind}/${o.doc.metadata.name}`).sort();
    expect(kinds).toEqual(
      [
        'Namespace/net',
        ...['daytime-tcp', 'echo-tcp', 'keepalive-probe', 'udp-echo'].flatMap((s) => [
          `Deployment/${s}`,
          `Service/${s}`,
        ]),
        'HorizontalPodAutoscaler/echo-tcp',
        'PodDisruptionBudget/echo-tcp',
      ].sort(),
    );
    const udp = objects.find((o) => o.doc.kind === 'Service' && o.doc.metadata.name === 'udp-echo');
    expect(udp?.doc.spec.ports.map((p: Doc) => p.protocol)).toEqual(['UDP']);
  });

  it('catch broken manifests: schema (type, enum, required), short grace period, probe off the admin port, writable root, low port, hostPort, orphan Service', async () => {
    const { objects } = await validateDirectory(dir);
    const broken = structuredClone(objects);
    const echo = broken.find((o) => o.doc.kind === 'Deployment' && o.doc.metadata.name === 'echo-tcp')?.doc;
    const pod = echo.spec.template.spec;
    const c = pod.containers[0];
    pod.terminationGracePeriodSeconds = 12; // preStop 5 s + drain 10 s do not fit
    c.readinessProbe.exec.command[2] = 'http://127.0.0.1:9100/readyz';
    c.securityContext.readOnlyRootFilesystem = false;
    c.ports[0].containerPort = 7;
    c.ports[1].hostPort = 8080;
    c.imagePullPolicy = 'Sometimes';
    const svc = broken.find((o) => o.doc.kind === 'Service' && o.doc.metadata.name === 'daytime-tcp')?.doc;
    svc.spec.selector = { 'app.kubernetes.io/name': 'daytime' };
    svc.spec.ports[0].port = 'thirteen';
    const hpa = broken.find((o) => o.doc.kind === 'HorizontalPodAutoscaler')?.doc;
    delete hpa.spec.maxReplicas;
    const errors = validateObjects(broken);
    const expected = [
      /echo-tcp: container echo-tcp: terminationGracePeriodSeconds 12 must exceed preStop 5 s \+ drain 10 s/,
      /echo-tcp: container echo-tcp: readinessProbe port 9100 is not the admin containerPort 8080/,
      /echo-tcp: container echo-tcp: readOnlyRootFilesystem must be true/,
      /echo-tcp: container echo-tcp: port 7 < 1024 needs a pod sysctl/,
      /echo-tcp: container echo-tcp: hostPort 8080/,
      /Deployment\/echo-tcp: schema: \/spec\/template\/spec\/containers\/0\/imagePullPolicy must be equal to one of the allowed values \(Always, IfNotPresent, Never\)/,
      /Service\/daytime-tcp: selector matches no Deployment/,
      /Service\/daytime-tcp: schema: \/spec\/ports\/0\/port must be integer/,
      /HorizontalPodAutoscaler\/echo-tcp: schema: \/spec must have required property maxReplicas/,
    ];
    for (const re of expected)
      expect(
        errors.some((e) => re.test(e)),
        `${re}\n${errors.join('\n')}`,
      ).toBe(true);
    expect(errors.length, errors.join('\n')).toBe(expected.length);
  });

  it('validate against the Kubernetes schemas, not a key list: a wrong kind or apiVersion is named with what is shipped', () => {
    expect(schemaErrors({ apiVersion: 'apps/v1beta1', kind: 'Deployment', metadata: { name: 'x' } })).toEqual([
      expect.stringMatching(
        /^unexpected apiVersion\/kind apps\/v1beta1\/Deployment \(shipped: v1\/Namespace, .*apps\/v1\/Deployment/,
      ),
    ]);
    expect(schemaErrors({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'net' } })).toEqual([]);
  });
});
