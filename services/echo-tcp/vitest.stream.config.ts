import { defineProject, mergeConfig } from 'vitest/config';
import raw from './vitest.config.js';

// echo-tcp's suite on the stream path (`--io stream`: net.Socket 'data', write, pause/drain): every test that starts
// the service. Left out, as the variable changes nothing for them: the in-process tests of the echo engines
// (echo-engines.test.ts runs each case on both engines itself), the greeting and the rate-limited log.
export default mergeConfig(
  raw,
  defineProject({
    test: {
      name: 'echo-tcp-stream',
      env: { ECHO_TCP_IO: 'stream' },
      exclude: [
        'test/echo-engines.test.ts',
        'test/raw-echo.test.ts',
        'test/greeting.test.ts',
        'test/rate-limited-log.test.ts',
        '**/node_modules/**',
      ],
    },
  }),
);
