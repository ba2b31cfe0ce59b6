import { defineProject, mergeConfig } from 'vitest/config';
import raw from './vitest.config.js';

/**
 * echo-tcp's suite again under `ECHO_TCP_IO=io`: every test file that starts the service. Left out, as the variable
 * changes nothing for them: the in-process tests of the engines (echo-engines.test.ts runs the fast and stream
 * engines itself, raw-echo.test.ts the raw one), the slab, the greeting and the rate-limited log.
 */
export function suiteOnEngine(name: string, io: 'fast' | 'stream') {
  return mergeConfig(
    raw,
    defineProject({
      test: {
        name,
        env: { ECHO_TCP_IO: io },
        exclude: [
          'test/echo-engines.test.ts',
          'test/raw-echo.test.ts',
          'test/echo-slab.test.ts',
          'test/greeting.test.ts',
          'test/rate-limited-log.test.ts',
          '**/node_modules/**',
        ],
      },
    }),
  );
}
