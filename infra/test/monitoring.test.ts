/**
 * The Prometheus scrape configuration the compose stack mounts (`--profile monitoring`), checked by Prometheus's own
 * promtool, and cross-checked against the compose file: every scraped host is a compose service or hostname.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hasCommand, infraDir } from './support.js';

const config = join(infraDir, 'prometheus', 'prometheus.yml');
const havePromtool = hasCommand('promtool');

describe('Prometheus scrape configuration', () => {
  it.skipIf(!havePromtool)('is accepted by promtool check config', () => {
    const r = spawnSync('promtool', ['check', 'config', config], { encoding: 'utf8', timeout: 30_000 });
    expect(r.stdout + r.stderr).toContain('SUCCESS');
    expect(r.status).toBe(0);
  });

  it.skipIf(!havePromtool)('fails promtool when broken, so the check above can fail', () => {
    const dir = mkdtempSync(join(tmpdir(), 'net-prom-'));
    try {
      copyFileSync(config, join(dir, 'ok.yml'));
      writeFileSync(
        join(dir, 'bad.yml'),
        readFileSync(config, 'utf8').replace('scrape_interval: 15s', 'scrape_interval: 15 s'),
      );
      const r = spawnSync('promtool', ['check', 'config', join(dir, 'bad.yml')], { encoding: 'utf8', timeout: 30_000 });
      expect(r.status).not.toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('scrapes port 8080 of hosts that the compose file defines', () => {
    const text = readFileSync(config, 'utf8');
    const compose = readFileSync(join(infraDir, 'compose', 'compose.yaml'), 'utf8');
    const hosts = [...text.matchAll(/["']([a-z0-9-]+):(\d+)["']/g)].map((m) => [m[1], m[2]]);
    for (const m of text.matchAll(/names: \[([a-z0-9-]+)\]/g)) hosts.push([m[1], '8080']);
    expect(hosts.length).toBeGreaterThanOrEqual(4);
    for (const [host, port] of hosts) {
      expect(port, host).toBe('8080');
      expect(compose, `${host} is not a compose service or hostname`).toMatch(
        new RegExp(`^  ${host}:$|hostname: ${host}$`, 'm'),
      );
    }
  });
});
