import { defineProject, mergeConfig } from 'vitest/config';
import fast from './vitest.config.js';

// echo-tcp's suite on the stream path (`--io stream`: net.Socket 'data', write, pause/drain): every test that starts
// the service. Left out, as the variable changes nothing for them: the in-process tests of the echo loop
// (server.test.ts runs each case on both paths itself), of the direct write, the greeting and the rate-limited log.
export default mergeConfig(
  fast,
  defineProject({
    test: {
      name: 'echo-tcp-stream',
      env: { ECHO_TCP_IO: 'stream' },
      exclude: [
        'test/server.test.ts',
        'test/direct-write.test.ts',
        'test/greeting.test.ts',
        'test/rate-limited-log.test.ts',
        '**/node_modules/**',
      ],
    },
  }),
);
