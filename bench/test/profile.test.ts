import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BENCH_DIR } from '../src/build.mjs';
import { topSelfTime } from '../src/profile.mjs';

const outDir = mkdtempSync(join(tmpdir(), 'net-bench-profile-'));
afterAll(() => rmSync(outDir, { recursive: true, force: true }));

describe('bench:profile', () => {
  it('ranks functions by self time over the busy samples, leaving idle out', () => {
    const frame = (functionName: string, url = '') => ({ functionName, url, lineNumber: 9 });
    const profile = {
      nodes: [
        { id: 1, callFrame: frame('(root)') },
        { id: 2, callFrame: frame('(idle)') },
        { id: 3, callFrame: frame('echo', 'file:///srv/dist/server.js') },
        { id: 4, callFrame: frame('write') },
      ],
      samples: [2, 3, 3, 4, 2, 3],
      timeDeltas: [500, 10, 10, 20, 500, 20],
    };
    expect(topSelfTime(profile)).toEqual([
      { name: 'echo dist/server.js:10', percent: 66.66666666666667 },
      { name: 'write ', percent: 33.333333333333336 },
      { name: '(root) ', percent: 0 },
    ]);
  });

  it('profiles a built service under a scenario and names where its time went', async () => {
    const child = spawn(
      process.execPath,
      [
        join(BENCH_DIR, 'src', 'profile.mjs'),
        '--target',
        'echo-tcp',
        '--scenario',
        'tcp-pingpong-64x50',
        '--seconds',
        '1',
        '--out-dir',
        outDir,
        '--port',
        '21097',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], detached: true },
    );
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 60_000);
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    clearTimeout(timer);
    expect(code, out).toBe(0);
    expect(out).toMatch(/^echo-tcp under TCP ping-pong 64 B x50: \d+ \/s/m);
    const profile = /^profile: (.+\.cpuprofile)$/m.exec(out)?.[1];
    expect(profile && existsSync(profile)).toBe(true);
    // echo-tcp's own code is on every message's path, so its functions must have samples. Checked in the whole
    // profile, not in the printed top 25: on a loaded machine a one-second run's start-up (module loading) can
    // fill that list.
    const parsed = JSON.parse(readFileSync(profile as string, 'utf8')) as {
      nodes: { id: number; callFrame: { url: string } }[];
      samples: number[];
    };
    const echoNodes = new Set(
      parsed.nodes.filter((n) => n.callFrame.url.includes('/services/echo-tcp/dist/')).map((n) => n.id),
    );
    const echoSamples = parsed.samples.filter((id) => echoNodes.has(id)).length;
    expect(echoSamples, out).toBeGreaterThan(0);
  });
});
