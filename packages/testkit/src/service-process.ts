/**
 * Spawning a built service bin, reading its JSON log lines, waiting for its readiness line, and making sure it never
 * outlives the test: the one harness lives in @net/test-support (which @net/core's own tests use too, as core
 * cannot depend on this package, which depends on core); service tests import it from here with the rest of the kit.
 */
export * from '@net/test-support';
