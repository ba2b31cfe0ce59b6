#!/usr/bin/env node
// Offline validation of the Kubernetes manifests in infra/k8s: `kubectl --dry-run=client` needs an API server,
// so this checks, without one, the structure of every object we ship (known apiVersion/kind, required fields,
// unknown keys where a typo would silently do nothing, e.g. `readinessProbes`) and the invariants that make the
// deployment behave: probes on a declared container port, Services and PDBs selecting real pods, a grace period
// longer than preStop + the service's drain, non-root with a read-only root filesystem, requests and limits.
//
// Usage: node infra/scripts/validate-k8s.mjs [dir]      prints one line per problem; exit 0 clean, 1 problems.
// YAML: the `yaml` npm package when it is installed, else python3 with PyYAML (Debian's python3-yaml, which
// docker-compose depends on).
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const KNOWN = new Set([
  'v1/Namespace',
  'v1/Service',
  'apps/v1/Deployment',
  'autoscaling/v2/HorizontalPodAutoscaler',
  'policy/v1/PodDisruptionBudget',
]);

// Keys Kubernetes accepts on the objects where a misspelled key is most likely and costs most (it would be
// dropped by the API server with at most a warning). Subsets of the API reference (v1.30).
const ALLOWED = {
  podSpec:
    'activeDeadlineSeconds affinity automountServiceAccountToken containers dnsConfig dnsPolicy enableServiceLinks ephemeralContainers hostAliases hostIPC hostNetwork hostPID hostUsers hostname imagePullSecrets initContainers nodeName nodeSelector os overhead preemptionPolicy priority priorityClassName readinessGates resourceClaims restartPolicy runtimeClassName schedulerName schedulingGates securityContext serviceAccountName setHostnameAsFQDN shareProcessNamespace subdomain terminationGracePeriodSeconds tolerations topologySpreadConstraints volumes',
  container:
    'args command env envFrom image imagePullPolicy lifecycle livenessProbe name ports readinessProbe resizePolicy resources restartPolicy securityContext startupProbe stdin stdinOnce terminationMessagePath terminationMessagePolicy tty volumeDevices volumeMounts workingDir',
  probe:
    'exec failureThreshold grpc httpGet initialDelaySeconds periodSeconds successThreshold tcpSocket terminationGracePeriodSeconds timeoutSeconds',
  containerSecurityContext:
    'allowPrivilegeEscalation appArmorProfile capabilities privileged procMount readOnlyRootFilesystem runAsGroup runAsNonRoot runAsUser seLinuxOptions seccompProfile windowsOptions',
  podSecurityContext:
    'appArmorProfile fsGroup fsGroupChangePolicy runAsGroup runAsNonRoot runAsUser seLinuxOptions seccompProfile supplementalGroups sysctls windowsOptions',
  deploymentSpec:
    'minReadySeconds paused progressDeadlineSeconds replicas revisionHistoryLimit selector strategy template',
  serviceSpec:
    'allocateLoadBalancerNodePorts clusterIP clusterIPs externalIPs externalName externalTrafficPolicy healthCheckNodePort internalTrafficPolicy ipFamilies ipFamilyPolicy loadBalancerClass loadBalancerIP loadBalancerSourceRanges ports publishNotReadyAddresses selector sessionAffinity sessionAffinityConfig trafficDistribution type',
  servicePort: 'appProtocol name nodePort port protocol targetPort',
  containerPort: 'containerPort hostIP hostPort name protocol',
};
const allowed = Object.fromEntries(Object.entries(ALLOWED).map(([k, v]) => [k, new Set(v.split(' '))]));

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
const DNS_1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const PORT_NAME = /^(?=.*[a-z])[a-z0-9]([-a-z0-9]*[a-z0-9])?$/; // IANA_SVC_NAME: at most 15 chars, a letter

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

/** Validates a list of `{ file, doc }`; returns one message per problem. */
export function validateObjects(objects) {
  const errors = [];
  const err = (o, msg) => errors.push(`${o.file}: ${o.doc?.kind ?? '?'}/${o.doc?.metadata?.name ?? '?'}: ${msg}`);
  const unknownKeys = (o, where, value, kind) => {
    if (!isObject(value)) return err(o, `${where} must be an object`);
    for (const k of Object.keys(value)) if (!allowed[kind].has(k)) err(o, `${where}: unknown field "${k}"`);
  };

  const deployments = [];
  for (const o of objects) {
    const { doc } = o;
    if (!isObject(doc)) {
      err(o, 'a document must be a mapping');
      continue;
    }
    if (!KNOWN.has(`${doc.apiVersion}/${doc.kind}`)) err(o, `unexpected apiVersion/kind ${doc.apiVersion}/${doc.kind}`);
    if (!isObject(doc.metadata) || typeof doc.metadata.name !== 'string') err(o, 'metadata.name is required');
    else if (!DNS_1123.test(doc.metadata.name)) err(o, `metadata.name "${doc.metadata.name}" is not a DNS-1123 label`);
    if (doc.kind !== 'Namespace' && !isObject(doc.spec)) err(o, 'spec is required');
    if (doc.kind === 'Deployment' && isObject(doc.spec)) deployments.push(o);
  }

  for (const o of deployments) checkDeployment(o, err, unknownKeys);

  const podsOf = (selector) => deployments.filter((d) => selects(selector, d.doc.spec.template?.metadata?.labels));

  for (const o of objects) {
    const { doc } = o;
    if (doc?.kind === 'Service' && isObject(doc.spec)) {
      unknownKeys(o, 'spec', doc.spec, 'serviceSpec');
      const targets = podsOf(doc.spec.selector);
      if (targets.length === 0) err(o, 'selector matches no Deployment in these manifests');
      if (!Array.isArray(doc.spec.ports) || doc.spec.ports.length === 0) err(o, 'spec.ports is empty');
      for (const p of doc.spec.ports ?? []) {
        unknownKeys(o, `port ${p.name}`, p, 'servicePort');
        const protocol = p.protocol ?? 'TCP';
        for (const t of targets) {
          const declared = (t.doc.spec.template.spec.containers ?? []).flatMap((c) => c.ports ?? []);
          const match = declared.find((cp) =>
            typeof p.targetPort === 'string' ? cp.name === p.targetPort : cp.containerPort === (p.targetPort ?? p.port),
          );
          if (!match)
            err(o, `port ${p.name}: targetPort ${p.targetPort} is not a containerPort of ${t.doc.metadata.name}`);
          else if ((match.protocol ?? 'TCP') !== protocol)
            err(
              o,
              `port ${p.name}: protocol ${protocol} but containerPort ${match.name} is ${match.protocol ?? 'TCP'}`,
            );
        }
      }
      if (doc.spec.externalTrafficPolicy && !['LoadBalancer', 'NodePort'].includes(doc.spec.type))
        err(o, 'externalTrafficPolicy needs type LoadBalancer or NodePort');
    }
    if (doc?.kind === 'HorizontalPodAutoscaler' && isObject(doc.spec)) {
      const ref = doc.spec.scaleTargetRef ?? {};
      const target = deployments.find((d) => ref.kind === 'Deployment' && d.doc.metadata.name === ref.name);
      if (!target) err(o, `scaleTargetRef ${ref.kind}/${ref.name} is not a Deployment in these manifests`);
      if (!(doc.spec.minReplicas >= 1 && doc.spec.maxReplicas >= doc.spec.minReplicas))
        err(o, 'needs 1 <= minReplicas <= maxReplicas');
      const usesCpu = (doc.spec.metrics ?? []).some(
        (m) => m.resource?.name === 'cpu' && m.resource?.target?.type === 'Utilization',
      );
      if (target && usesCpu) {
        for (const c of target.doc.spec.template.spec.containers ?? [])
          if (!c.resources?.requests?.cpu) err(o, `CPU utilization needs a cpu request on container ${c.name}`);
      }
      if (target && target.doc.spec.replicas < doc.spec.minReplicas)
        err(o, `Deployment replicas ${target.doc.spec.replicas} below minReplicas ${doc.spec.minReplicas}`);
    }
    if (doc?.kind === 'PodDisruptionBudget' && isObject(doc.spec)) {
      const targets = podsOf(doc.spec.selector?.matchLabels);
      if (targets.length === 0) err(o, 'selector matches no Deployment in these manifests');
      if ((doc.spec.minAvailable === undefined) === (doc.spec.maxUnavailable === undefined))
        err(o, 'set exactly one of minAvailable and maxUnavailable');
      for (const t of targets) {
        // A budget that allows no disruption blocks every node drain.
        if (typeof doc.spec.minAvailable === 'number' && doc.spec.minAvailable >= t.doc.spec.replicas)
          err(o, `minAvailable ${doc.spec.minAvailable} >= replicas ${t.doc.spec.replicas}: node drains would block`);
        if (doc.spec.maxUnavailable === 0) err(o, 'maxUnavailable 0: node drains would block');
      }
    }
  }
  return errors;
}

function checkDeployment(o, err, unknownKeys) {
  const { spec } = o.doc;
  unknownKeys(o, 'spec', spec, 'deploymentSpec');
  const labels = spec.template?.metadata?.labels;
  if (!selects(spec.selector?.matchLabels, labels))
    err(o, 'spec.selector.matchLabels does not select the template labels');
  if (!(Number.isInteger(spec.replicas) && spec.replicas >= 1)) err(o, 'spec.replicas must be an integer >= 1');
  const pod = spec.template?.spec;
  if (!isObject(pod)) return err(o, 'spec.template.spec is required');
  unknownKeys(o, 'pod spec', pod, 'podSpec');
  const podSc = pod.securityContext ?? {};
  if (pod.securityContext) unknownKeys(o, 'pod securityContext', pod.securityContext, 'podSecurityContext');
  const volumes = new Set((pod.volumes ?? []).map((v) => v.name));
  if (!Array.isArray(pod.containers) || pod.containers.length === 0) return err(o, 'no containers');
  const unprivilegedFrom = Number(
    (podSc.sysctls ?? []).find((s) => s.name === 'net.ipv4.ip_unprivileged_port_start')?.value ?? 1024,
  );

  for (const c of pod.containers) {
    const where = `container ${c.name}`;
    unknownKeys(o, where, c, 'container');
    if (!c.image) err(o, `${where}: image is required`);
    const ports = c.ports ?? [];
    const names = new Set();
    for (const p of ports) {
      unknownKeys(o, `${where} port ${p.name}`, p, 'containerPort');
      if (!(Number.isInteger(p.containerPort) && p.containerPort >= 1 && p.containerPort <= 65535))
        err(o, `${where}: containerPort ${p.containerPort} out of range`);
      if (p.name !== undefined && (!PORT_NAME.test(p.name) || p.name.length > 15))
        err(o, `${where}: port name "${p.name}" is not an IANA service name (<= 15 chars, a-z0-9-)`);
      if (names.has(p.name)) err(o, `${where}: duplicate port name ${p.name}`);
      names.add(p.name);
    }

    // Probes: on the admin endpoint, on a TCP port the container declares.
    const probes = { readinessProbe: '/readyz', livenessProbe: '/healthz', startupProbe: undefined };
    for (const [kind, path] of Object.entries(probes)) {
      const probe = c[kind];
      if (!probe) {
        if (path) err(o, `${where}: ${kind} is required`);
        continue;
      }
      unknownKeys(o, `${where} ${kind}`, probe, 'probe');
      const get = probe.httpGet;
      if (!get) {
        err(o, `${where}: ${kind} must be an httpGet on the admin endpoint`);
        continue;
      }
      if (path && get.path !== path) err(o, `${where}: ${kind} path ${get.path}, expected ${path}`);
      const target = ports.find((p) =>
        typeof get.port === 'string' ? p.name === get.port : p.containerPort === get.port,
      );
      if (!target) err(o, `${where}: ${kind} port ${get.port} is not a declared containerPort`);
      else if ((target.protocol ?? 'TCP') !== 'TCP') err(o, `${where}: ${kind} port ${get.port} is not TCP`);
    }

    // Termination: preStop sleep + the service's drain must end before the kubelet's SIGKILL.
    const drainEnv = (c.env ?? []).find((e) => e.name.endsWith('_DRAIN_TIMEOUT'));
    const drain = Number(drainEnv?.value ?? 10);
    const preStop = c.lifecycle?.preStop;
    let preStopSeconds = 0;
    if (preStop?.sleep) preStopSeconds = Number(preStop.sleep.seconds);
    else if (preStop?.exec?.command?.[0] === 'sleep') preStopSeconds = Number(preStop.exec.command[1]);
    else if (preStop) err(o, `${where}: preStop must be a sleep (its length counts against the grace period)`);
    const grace = pod.terminationGracePeriodSeconds ?? 30;
    if (!drainEnv) err(o, `${where}: set the *_DRAIN_TIMEOUT env explicitly (the grace period is sized against it)`);
    if (!(grace > preStopSeconds + drain))
      err(
        o,
        `${where}: terminationGracePeriodSeconds ${grace} must exceed preStop ${preStopSeconds} s + drain ${drain} s`,
      );

    // Non-root, read-only, no capabilities.
    const sc = c.securityContext;
    if (!sc) err(o, `${where}: securityContext is required`);
    else {
      unknownKeys(o, `${where} securityContext`, sc, 'containerSecurityContext');
      if (sc.readOnlyRootFilesystem !== true) err(o, `${where}: readOnlyRootFilesystem must be true`);
      if (sc.allowPrivilegeEscalation !== false) err(o, `${where}: allowPrivilegeEscalation must be false`);
      if (!sc.capabilities?.drop?.includes('ALL')) err(o, `${where}: capabilities.drop must include ALL`);
      if (sc.privileged) err(o, `${where}: privileged`);
    }
    const runAsNonRoot = sc?.runAsNonRoot ?? podSc.runAsNonRoot;
    const runAsUser = sc?.runAsUser ?? podSc.runAsUser;
    if (runAsNonRoot !== true) err(o, `${where}: runAsNonRoot must be true`);
    if (runAsUser === 0) err(o, `${where}: runAsUser 0`);
    const canBindLow = sc?.capabilities?.add?.includes('NET_BIND_SERVICE');
    for (const p of ports)
      if (p.containerPort < unprivilegedFrom && !canBindLow)
        err(
          o,
          `${where}: port ${p.containerPort} < ${unprivilegedFrom} needs net.ipv4.ip_unprivileged_port_start <= it or NET_BIND_SERVICE`,
        );

    // Requests and limits for CPU and memory, requests within limits.
    for (const r of ['cpu', 'memory']) {
      const req = c.resources?.requests?.[r];
      const lim = c.resources?.limits?.[r];
      if (req === undefined || lim === undefined)
        err(o, `${where}: resources.requests.${r} and limits.${r} are required`);
      else if (!(quantity(req) <= quantity(lim))) err(o, `${where}: ${r} request ${req} exceeds limit ${lim}`);
    }
    for (const m of c.volumeMounts ?? [])
      if (!volumes.has(m.name)) err(o, `${where}: volumeMount ${m.name} has no volume`);
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
