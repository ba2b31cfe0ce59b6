/**
 * Test helpers: the built bin started through the one harness of @net/testkit (also inside a network namespace,
 * through `ip netns exec`), and what the wire and namespace tests need besides.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  type Finished,
  type Owner,
  runCommandToExit,
  type ServiceProcess,
  type SpawnOptions,
  startService,
} from '@net/testkit';

/** The built bin (tests run after `tsc -b`). */
export const BIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

/**
 * Runs a command to its exit within `timeoutMs` (default 15 s: the demo runs for seconds); `stdout` is exactly what
 * it wrote, final newline included.
 */
export async function run(command: string, args: readonly string[], options: SpawnOptions = {}): Promise<Finished> {
  const r = await runCommandToExit(command, args, { timeoutMs: 15_000, ...options });
  return { ...r, stdout: r.rawStdout };
}

/** Starts `node BIN serve ...` (optionally inside a namespace) and resolves once it logged its ready line. */
export function startServe(
  args: readonly string[],
  options: { netns?: string; env?: Record<string, string>; owner?: Owner } = {},
): Promise<ServiceProcess> {
  const { netns, ...spawnOptions } = options;
  return startService(BIN, ['serve', '--log-format', 'json', ...args], {
    ...spawnOptions,
    ...(netns === undefined ? {} : { wrapper: ['ip', 'netns', 'exec', netns] }),
  });
}

/** True when running as root (network namespaces, nft and packet capture need it). */
export const isRoot = process.getuid?.() === 0;

/** True when `command` is on the PATH. */
export function hasCommand(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Resolves after `ms`; only where no event can be awaited (a window in which something must NOT happen). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
