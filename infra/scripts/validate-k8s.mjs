#!/usr/bin/env node
// Offline validation of the Kubernetes manifests in infra/k8s, in two parts:
//
// 1. Every object against the Kubernetes API's own OpenAPI schemas, as compiled by the npm package
//    kubernetes-models (pinned in infra/package.json): types, enums, required fields of Deployment, Service, HPA, PDB,
//    Namespace. `kubectl --dry-run=client` cannot do this without an API server. These schemas do not reject unknown
//    fields (the API's OpenAPI has no additionalProperties: false; the API server itself only warns about them unless
//    asked for fieldValidation=Strict); the pods are also run for real with `podman kube play` by infra/test.
// 2. The project's own invariants, which no schema knows: probes on the admin endpoint, a grace period longer than
//    preStop + the service's drain, non-root with a read-only root filesystem, no hostPort and no port below 1024
//    (it would depend on a pod sysctl that runtimes may ignore), Services, HPAs and PDBs that select real pods.
//
// Usage: node infra/scripts/validate-k8s.mjs [dir]      prints one line per problem; exit 0 clean, 1 problems.
// YAML: the `yaml` npm package when it is installed, else python3 with PyYAML (Debian's python3-yaml, which
// docker-compose depends on).
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Deployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { Namespace, Service } from 'kubernetes-models/v1';

/** The kinds shipped, by apiVersion/kind, with the kubernetes-models class that validates them. */
const MODELS = {
  'v1/Namespace': Namespace,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
};

/** Parses every YAML document of `text` (empty documents dropped). */
export async function parseYamlDocuments(text) {
  try {
    const { parseAllDocuments } = await import('yaml');
    return parseAllDocuments(text)
      .map((d) => d.toJS())
      .filter((d) => d != null);
  } catch (err) {
    if (err?.code !== 'ERR_MODULE_NOT_FOUND') throw err;
  }
  const py = spawnSync(
    'python3',
    ['-c', 'import sys,json,yaml; json.dump([d for d in yaml.safe_load_all(sys.stdin) if d is not None], sys.stdout)'],
    { input: text, encoding: 'utf8' },
  );
  if (py.error || py.status !== 0) {
    throw new Error(
      `no YAML parser: install the npm package yaml, or python3 with PyYAML (${py.error?.message ?? py.stderr.trim()})`,
    );
  }
  return JSON.parse(py.stdout);
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Kubernetes quantity to a number (cpu in cores, memory in bytes). */
export function quantity(q) {
  const m = /^([0-9.]+)(m|k|Ki|M|Mi|G|Gi|T|Ti)?$/.exec(String(q));
  if (!m) return Number.NaN;
  const unit = { m: 1e-3, k: 1e3, Ki: 1024, M: 1e6, Mi: 1024 ** 2, G: 1e9, Gi: 1024 ** 3, T: 1e12, Ti: 1024 ** 4 };
  return Number(m[1]) * (m[2] ? unit[m[2]] : 1);
}

const selects = (selector, labels) =>
  isObject(selector) &&
  Object.keys(selector).length > 0 &&
  Object.entries(selector).every(([k, v]) => labels?.[k] === v);

/** Schema problems of one object, as "path: message" (empty when valid). */
export function schemaErrors(doc) {
  const Model = MODELS[`${doc?.apiVersion}/${doc?.kind}`];
  if (!Model)
    return [`unexpected apiVersion/kind ${doc?.apiVersion}/${doc?.kind} (shipped: ${Object.keys(MODELS).join(', ')})`];
  try {
    new Model(doc).validate();
    return [];
  } catch (e) {
    if (!Array.isArray(e?.errors)) throw e;
    return e.errors.map(
      (x) =>
        `${x.instancePath || '/'} ${x.message}${x.params?.allowedValues ? ` (${x.params.allowedValues.join(', ')})` : ''}`,
    );
  }
}

// A probe is node running the image's http-probe.mjs on http://127.0.0.1:<admin port><path>: the images carry node
// and nothing else (podman kube play maps httpGet to curl and tcpSocket to nc).
const PROBE_SCRIPT = '/app/http-probe.mjs';
const PROBE_URL = /^http:\/\/127\.0\.0\.1:(\d+)(\/[a-z]+)$/;

/** Validates a list of `{ file, doc }`; returns one message per problem. */
export function validateObjects(objects) {
  const errors = [];
  const err = (o, msg) => errors.push(`${o.file}: ${o.doc?.kind ?? '?'}/${o.doc?.metadata?.name ?? '?'}: ${msg}`);
  const deployments = [];
  for (const o of objects) {
    if (!isObject(o.doc)) {
      err(o, 'a document must be a mapping');
      continue;
    }
    for (const e of schemaErrors(o.doc)) err(o, `schema: ${e}`);
    if (o.doc.kind === 'Deployment' && isObject(o.doc.spec?.template?.spec)) deployments.push(o);
  }
  for (const o of deployments) checkDeployment(o, err);

  const podsOf = (selector) => deployments.filter((d) => selects(selector, d.doc.spec.template.metadata?.labels));
  for (const o of objects) {
    const { doc } = o;
    if (doc?.kind === 'Service') {
      const targets = podsOf(doc.spec?.selector);
      if (targets.length === 0) err(o, 'selector matches no Deployment in these manifests');
      for (const p of doc.spec?.ports ?? [])
        for (const t of targets) {
          const declared = t.doc.spec.template.spec.containers.flatMap((c) => c.ports ?? []);
          const match = declared.find((cp) =>
            typeof p.targetPort === 'string' ? cp.name === p.targetPort : cp.containerPort === (p.targetPort ?? p.port),
          );
          if (!match)
            err(o, `port ${p.name}: targetPort ${p.targetPort} is not a containerPort of ${t.doc.metadata.name}`);
          else if ((match.protocol ?? 'TCP') !== (p.protocol ?? 'TCP'))
            err(
              o,
              `port ${p.name}: protocol ${p.protocol ?? 'TCP'} but containerPort ${match.name} is ${match.protocol ?? 'TCP'}`,
            );
        }
    }
    if (doc?.kind === 'HorizontalPodAutoscaler') {
      const ref = doc.spec?.scaleTargetRef ?? {};
      const target = deployments.find((d) => ref.kind === 'Deployment' && d.doc.metadata.name === ref.name);
      if (!target) err(o, `scaleTargetRef ${ref.kind}/${ref.name} is not a Deployment in these manifests`);
      else if (target.doc.spec.replicas < doc.spec.minReplicas)
        err(o, `Deployment replicas ${target.doc.spec.replicas} below minReplicas ${doc.spec.minReplicas}`);
    }
    if (doc?.kind === 'PodDisruptionBudget') {
      if (podsOf(doc.spec?.selector?.matchLabels).length === 0)
        err(o, 'selector matches no Deployment in these manifests');
      // A budget that allows no disruption blocks every node drain.
      if (doc.spec?.maxUnavailable === 0) err(o, 'maxUnavailable 0: node drains would block');
    }
  }
  return errors;
}

function checkDeployment(o, err) {
  const { spec } = o.doc;
  const pod = spec.template.spec;
  if (!selects(spec.selector?.matchLabels, spec.template.metadata?.labels))
    err(o, 'spec.selector.matchLabels does not select the template labels');
  const podSc = pod.securityContext ?? {};
  for (const c of pod.containers ?? []) {
    const where = `container ${c.name}`;
    const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));
    const ports = c.ports ?? [];
    for (const p of ports) {
      if (p.hostPort !== undefined) err(o, `${where}: hostPort ${p.hostPort} (a pod must not claim a node's port)`);
      if (p.containerPort < 1024)
        err(
          o,
          `${where}: port ${p.containerPort} < 1024 needs a pod sysctl runtimes may ignore: listen high, map it in the Service`,
        );
    }

    // Probes: on the admin endpoint, which the container declares and sets explicitly (*_ADMIN_PORT).
    const admin = ports.find((p) => p.name === 'admin' && (p.protocol ?? 'TCP') === 'TCP');
    const adminEnv = Object.keys(env).find((k) => k.endsWith('_ADMIN_PORT'));
    if (!admin) err(o, `${where}: no TCP containerPort named admin`);
    else if (!adminEnv || Number(env[adminEnv]) !== admin.containerPort)
      err(o, `${where}: set *_ADMIN_PORT to the admin containerPort ${admin.containerPort}`);
    for (const [kind, path] of [
      ['readinessProbe', '/readyz'],
      ['livenessProbe', '/healthz'],
      ['startupProbe', '/readyz'],
    ]) {
      const probe = c[kind];
      if (!probe) {
        if (kind !== 'startupProbe') err(o, `${where}: ${kind} is required`);
        continue;
      }
      const [cmd, script, url, ...rest] = probe.exec?.command ?? [];
      const m = cmd === 'node' && script === PROBE_SCRIPT && rest.length === 0 ? PROBE_URL.exec(url ?? '') : null;
      if (!m) err(o, `${where}: ${kind} must be exec [node, ${PROBE_SCRIPT}, http://127.0.0.1:<admin port>${path}]`);
      else if (m[2] !== path) err(o, `${where}: ${kind} path ${m[2]}, expected ${path}`);
      else if (admin && Number(m[1]) !== admin.containerPort)
        err(o, `${where}: ${kind} port ${m[1]} is not the admin containerPort ${admin.containerPort}`);
    }

    // Termination: preStop sleep + the service's drain must end before the kubelet's SIGKILL.
    const drainKey = Object.keys(env).find((k) => k.endsWith('_DRAIN_TIMEOUT'));
    const drain = Number(drainKey ? env[drainKey] : 10);
    const preStop = c.lifecycle?.preStop;
    let preStopSeconds = 0;
    if (preStop?.sleep) preStopSeconds = Number(preStop.sleep.seconds);
    else if (preStop?.exec?.command?.[0] === 'sleep') preStopSeconds = Number(preStop.exec.command[1]);
    else if (preStop) err(o, `${where}: preStop must be a sleep (its length counts against the grace period)`);
    const grace = pod.terminationGracePeriodSeconds ?? 30;
    if (!drainKey) err(o, `${where}: set the *_DRAIN_TIMEOUT env explicitly (the grace period is sized against it)`);
    if (!(grace > preStopSeconds + drain))
      err(
        o,
        `${where}: terminationGracePeriodSeconds ${grace} must exceed preStop ${preStopSeconds} s + drain ${drain} s`,
      );

    // Non-root, read-only, no capabilities, requests within limits.
    const sc = c.securityContext ?? {};
    if (sc.readOnlyRootFilesystem !== true) err(o, `${where}: readOnlyRootFilesystem must be true`);
    if (sc.allowPrivilegeEscalation !== false) err(o, `${where}: allowPrivilegeEscalation must be false`);
    if (!sc.capabilities?.drop?.includes('ALL')) err(o, `${where}: capabilities.drop must include ALL`);
    if ((sc.runAsNonRoot ?? podSc.runAsNonRoot) !== true) err(o, `${where}: runAsNonRoot must be true`);
    if ((sc.runAsUser ?? podSc.runAsUser) === 0) err(o, `${where}: runAsUser 0`);
    for (const r of ['cpu', 'memory']) {
      const req = c.resources?.requests?.[r];
      const lim = c.resources?.limits?.[r];
      if (req === undefined || lim === undefined)
        err(o, `${where}: resources.requests.${r} and limits.${r} are required`);
      else if (!(quantity(req) <= quantity(lim))) err(o, `${where}: ${r} request ${req} exceeds limit ${lim}`);
    }
  }
}

/** Loads every manifest of `dir` (all *.yaml but kustomization.yaml) and validates them together. */
export async function validateDirectory(dir) {
  const files = readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort();
  const objects = [];
  const errors = [];
  let kustomization;
  for (const f of files) {
    const docs = await parseYamlDocuments(readFileSync(join(dir, f), 'utf8'));
    if (f === 'kustomization.yaml') kustomization = docs[0];
    else for (const doc of docs) objects.push({ file: f, doc });
  }
  if (kustomization) {
    const listed = new Set(kustomization.resources ?? []);
    for (const f of files)
      if (f !== 'kustomization.yaml' && !listed.has(f)) errors.push(`kustomization.yaml: ${f} is not in resources`);
    for (const r of listed) if (!files.includes(r)) errors.push(`kustomization.yaml: resource ${r} does not exist`);
  }
  errors.push(...validateObjects(objects));
  return { objects, errors };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dir = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'k8s'));
  const { objects, errors } = await validateDirectory(dir);
  for (const e of errors) console.log(e);
  console.log(`${basename(dir)}: ${objects.length} objects, ${errors.length} problems`);
  process.exit(errors.length === 0 ? 0 : 1);
}
