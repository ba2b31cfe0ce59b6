/** Where the built bins of the services are; the suite runs them as users do, never their sources. */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export const SERVICES = ['echo-tcp', 'daytime-tcp', 'udp-echo', 'keepalive-probe'] as const;
export type ServiceName = (typeof SERVICES)[number];

/** Path of `services/<name>/dist/main.js`; throws a hint when it has not been built. */
export function binOf(name: ServiceName): string {
  const bin = join(REPO_ROOT, 'services', name, 'dist', 'main.js');
  if (!existsSync(bin)) {
    throw new Error(`${bin} is missing: build it first (cd services/${name} && pnpm exec tsc -b, or pnpm build)`);
  }
  return bin;
}
