import { defineProject, mergeConfig } from 'vitest/config';
import raw from './vitest.config.js';

// echo-tcp's suite on the fast path (`--io fast`: the raw echo's reads and writes on a net.Socket built around each
// accepted handle), where `auto` goes when raw handles are unavailable: every test that starts the service, as
// vitest.stream.config.ts (the in-process engine tests run each engine themselves).
export default mergeConfig(
  raw,
  defineProject({
    test: {
      name: 'echo-tcp-fast',
      env: { ECHO_TCP_IO: 'fast' },
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
