// Finds a pnpm to run: the one on PATH when it is the pinned major, else npx fetches the pinned version.
// No corepack: it is not bundled from Node 25 on, and it cannot verify pnpm 12 on a registry without signatures.
import { spawnSync } from 'node:child_process';

export const PNPM_VERSION = '12.21.0';

/** Returns [command, ...prefixArgs] that runs pnpm. */
export function pnpmCommand() {
  const probe = spawnSync('pnpm', ['--version'], { encoding: 'utf8' });
  if (probe.status === 0 && probe.stdout.trim().split('.')[0] === PNPM_VERSION.split('.')[0]) return ['pnpm'];
  return ['npx', '--yes', `pnpm@${PNPM_VERSION}`];
}

/** Runs pnpm with args, inheriting stdio; exits the process on failure unless `allowFailure` is set. */
export function pnpm(args, { allowFailure = false, ...options } = {}) {
  const [cmd, ...prefix] = pnpmCommand();
  const env = { TURBO_TELEMETRY_DISABLED: '1', ...process.env, ...options.env };
  const r = spawnSync(cmd, [...prefix, ...args], { stdio: 'inherit', ...options, env });
  if (r.status !== 0 && !allowFailure) {
    console.error(`pnpm ${args.join(' ')} failed (exit ${r.status ?? r.signal})`);
    process.exit(r.status || 1);
  }
  return r;
}
