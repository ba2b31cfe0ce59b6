/**
 * The keepalive-probe service definition: `serve` (the default) holds incoming connections with exact TCP keepalive
 * and reports dead peers; `watch` holds outgoing connections to targets and reports them up or down; `demo` runs the
 * classic C keepalive example in one command.
 */
import { createRequire } from 'node:module';
import { defineCommand, defineService, EXIT } from '@net/core';
import { DEFAULT_PORT, demoOptions, serveOptions, watchOptions } from './config.js';
import { DEMO_EXIT, runDemo } from './demo.js';
import { startProbeServer } from './probe-server.js';
import { describeInteraction, detectionWindow } from './settings.js';
import { MAX_TARGETS, runWatch, WATCH_EXIT, watchLogDestination } from './watch.js';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

export const service = defineService({
  name: 'keepalive-probe',
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
      // --max-connections as lowered by the runtime to what the descriptor limit allows.
      maxConnections: ctx.limits.maxConnections,
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
        'with exponential backoff.',
      args: 'HOST:PORT...',
      maxPositionals: MAX_TARGETS,
      runtime: true,
      // With --once, stdout carries the result lines and the log goes to stderr.
      logDestination: watchLogDestination,
      startFailureExitCode: WATCH_EXIT.CANNOT_START,
      exitCodes: {
        [WATCH_EXIT.OK]: 'all up (--once) or stopped by a signal',
        [WATCH_EXIT.DOWN]: 'a target still down at --once-timeout',
        [EXIT.USAGE]: 'bad usage',
        [WATCH_EXIT.CANNOT_START]: 'keepalive settings or admin endpoint unavailable',
        [EXIT.SOFTWARE]: 'uncaught error',
        [EXIT.INTERRUPTED]: 'second signal',
      },
      options: watchOptions(),
      run: runWatch,
    }),
    demo: defineCommand({
      description:
        'The classic C keepalive example in one command: a loopback server enables keepalive on the connection of a sleeping ' +
        'client process, prints the settings read back with getsockopt, and prints the probes as they happen.',
      exitCodes: {
        [DEMO_EXIT.OK]: 'done',
        [DEMO_EXIT.FAILED]: 'the demo failed',
        [EXIT.USAGE]: 'bad usage',
        [DEMO_EXIT.CANNOT_START]: 'keepalive or the chosen probe source unavailable',
      },
      options: demoOptions(),
      run: ({ config }) => runDemo(config),
    }),
  },
});
