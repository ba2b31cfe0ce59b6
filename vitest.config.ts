import { defineConfig } from 'vitest/config';

// One project per package; each package owns its vitest.config.ts (turbo runs them one by one,
// `npm test` runs them all in one process). NET_TEST_SUITES=unit leaves out the long suites (benchmark checks,
// faults, infra), which .ci/run runs once, on the machine's Node, not again on Node 24.
const unitOnly = process.env.NET_TEST_SUITES === 'unit';

export default defineConfig({
  test: {
    projects: [
      'packages/*/vitest.config.ts',
      'services/*/vitest.config.ts',
      // echo-tcp's suite again on its other engines (--io fast, --io stream).
      'services/echo-tcp/vitest.fast.config.ts',
      'services/echo-tcp/vitest.stream.config.ts',
      ...(unitOnly ? [] : ['bench/vitest.config.ts', 'tests/*/vitest.config.ts', 'infra/vitest.config.ts']),
    ],
  },
});
