/**
 * The keepalive-probe service definition: `serve` (the default) holds incoming connections with exact TCP keepalive
 * and reports dead peers; `watch` holds outgoing connections to targets and reports them up or down; `demo` runs the
 * seed's example in one command.
 */
import { createRequire } from 'node:module';
import { defineCommand, defineService } from '@net/core';
import { DEFAULT_PORT, demoOptions, serveOptions, watchOptions } from './config.js';
import { runDemo } from './demo.js';
import { startProbeServer } from './server.js';
import { describeInteraction, detectionWindow } from './settings.js';
import { MAX_TARGETS, runWatch } from './watch.js';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };
const name = 'keepalive-probe';

export const service = defineService({
  name,
  version,
  description:
    'Holds TCP connections with exact keepalive settings (TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT, optionally ' +
    'TCP_USER_TIMEOUT, all read back from the kernel) and reports every peer the kernel finds dead.',
  envPrefix: 'KEEPALIVE_PROBE',
  defaultPort: DEFAULT_PORT,
  options: serveOptions(),
  async serve(ctx) {
    const { config, log } = ctx;
    const probe = await startProbeServer({
      endpoints: ctx.endpoints,
      settings: { idle: config.idle, interval: config.interval, count: config.count, userTimeout: config.userTimeout },
      mode: config.mode,
      maxConnections: config.maxConnections,
      log,
      metrics: ctx.metrics,
      connections: ctx.connections,
    });
    const { keepalive, userTimeoutMs } = probe.applied;
    log.info(
      { keepalive, userTimeoutMs, detectionSeconds: detectionWindow(probe.applied), mode: config.mode },
      `keepalive idle=${keepalive.idle}s interval=${keepalive.interval}s count=${keepalive.count} ` +
        `user-timeout=${userTimeoutMs}ms (read back from the listening socket; accepted connections get the same)`,
    );
    log.info({ userTimeoutMs }, describeInteraction(probe.applied));
    return {
      endpoints: probe.endpoints,
      stopAccepting: () => probe.stopAccepting(),
      close: () => {
        probe.flush();
        ctx.connections.destroyAll();
      },
    };
  },
  commands: {
    watch: defineCommand({
      description:
        'Hold a connection to each target with the same keepalive settings and report it up or down; reconnect ' +
        'with exponential backoff. Exit codes: 0 all up (--once) or stopped by a signal, 1 a target still down at ' +
        '--once-timeout, 2 bad usage, 3 keepalive settings or admin endpoint unavailable.',
      args: 'HOST:PORT...',
      maxPositionals: MAX_TARGETS,
      options: watchOptions(),
      run: ({ config, positionals }) => runWatch(config, positionals, { name, version }),
    }),
    demo: defineCommand({
      description:
        "The seed's example in one command: a loopback server enables keepalive on the connection of a sleeping " +
        'client process, prints the settings read back with getsockopt, and prints the probes as they happen. ' +
        'Exit codes: 0 done, 1 the demo failed, 2 bad usage, 3 keepalive or the chosen probe source unavailable.',
      options: demoOptions(),
      run: ({ config }) => runDemo(config),
    }),
  },
});
